// The wire protocol between the server and a worker process (python/
// orrery_worker.py, the orrery-native-worker executable), over a channel the
// server makes with MakeFrameChannel() and hands to the worker as
// descriptors 3, 4 and 5 (kWorkerChannel): frames go one way over one pipe
// and come back over another, and the memfds of shared-memory frames travel
// over a Unix socket. Pipes, because a request / answer round trip between
// two processes on one core costs ~7 us over pipes and ~13 us over a Unix
// stream socket in our VMs (both waited for with a persistent epoll
// registration; bench/ipc_roundtrip.cc), on every request of a worker-backed
// servable; pipes cannot carry descriptors, hence the socket beside them.
//
// Every message is a frame: a uint32 LE payload length, then the payload:
//   byte 0      FrameType
//   bytes 1..4  uint32 LE length H of a UTF-8 JSON header
//   H bytes     the JSON header
//   the rest    tensor bytes, concatenated in header order (inline mode)
// The JSON header of kInfer / kResult is
//   {"tensors": [{"name": s, "datatype": "FP32", "shape": [..], "size": bytes}, ...],
//    "shm": total_bytes}            <- only in shared-memory mode
// In shared-memory mode (total tensor bytes >= kShmThreshold) the payload
// ends after the header and the tensor bytes live in a memfd, sent just
// before the frame as SCM_RIGHTS ancillary data of one byte on the
// descriptor socket (so it is there once the frame is); the receiver maps
// it read-only and closes it. kReady's header is {"pid": n}; kLoadError's and kError's are
// {"error": "message"}; kError's may add "code": one of "InvalidArgument",
// "Unprocessable", "TooLarge", "Internal" (CodeName), the Status code the
// server returns for it (default Unprocessable: the servable failed on this
// input).
//
// Shared memory, in detail: the sender seals a memfd it will not write again
// (F_SEAL_SHRINK | F_SEAL_GROW), and the receiver maps only sealed memfds: a
// peer could otherwise truncate the file under the mapping and crash the
// receiver with SIGBUS. Unsealed memfds (a ShmBuffer's, below) are read with
// pread(). Receivers copy the tensors out and close the descriptor before
// they answer. Tensor bytes in one shared-memory frame: at most 4 GiB.
//
// Sequence: the worker loads the servable, then sends kReady or
// kLoadError. After kReady the server sends kInfer frames one at a time
// and the worker answers each with kResult or kError (the servable raised).
// The worker exits when its request pipe closes.
//
// Thread-safety: functions; one reader and one writer per channel at a time.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/backend.h"
#include "core/files.h"
#include "tensor/tensor.h"

namespace orrery {

// One side of a channel: frames are read from `in` and written to `out`;
// `fds` carries memfds both ways. The descriptors may be blocking or not;
// deadlines hold on non-blocking ones (the server's side).
struct FrameChannel {
  int in = -1;
  int out = -1;
  int fds = -1;
};

// Where a worker process finds its side.
constexpr FrameChannel kWorkerChannel{3, 4, 5};

// Owns the descriptors of one side.
struct FrameChannelEnds {
  UniqueFd in, out, fds;
  FrameChannel get() const { return {in.get(), out.get(), fds.get()}; }
};

// A new channel: the server's side (non-blocking descriptors, so that an
// event loop never blocks on them) and the worker's (blocking), all
// close-on-exec. Also sets SIGPIPE to be ignored in this process, once: a
// write to a worker that is gone must fail with EPIPE, not kill the server.
Result<std::pair<FrameChannelEnds, FrameChannelEnds>> MakeFrameChannel();

enum class FrameType : uint8_t {
  kInfer = 1,
  kReady = 2,
  kLoadError = 3,
  kResult = 4,
  kError = 5,
};

constexpr uint64_t kShmThreshold = 1u << 20;     // tensor bytes at which a memfd is used
constexpr uint64_t kMaxFramePayload = 1u << 30;  // a larger length is a protocol error

struct Frame {
  FrameType type = FrameType::kError;
  nlohmann::json header = nlohmann::json::object();
  std::vector<Tensor> tensors;  // kInfer / kResult, decoded from header + bytes
};

// Writes one frame (choosing inline or shared-memory mode). kUnavailable
// when the peer is gone or the deadline passes (possibly after part of the
// frame went out); any other code means nothing was sent (kInvalidArgument:
// the frame is too large; kInternal: no memfd could be made).
Status WriteFrame(FrameChannel channel, FrameType type, const nlohmann::json& header,
                  const std::vector<Tensor>& tensors, Deadline deadline);

// A memfd that WriteFrame may rewrite for every shared-memory frame instead
// of creating one per frame: fresh shared-memory pages are costly (8 MiB
// take ~10 ms to allocate in a VM, ~2 ms to rewrite). Only for a request /
// response exchange, where the peer has read the previous frame before the
// next one is written (the server's side of a worker channel). The memfd is
// not sealed (its size follows each frame), so receivers pread() it.
// Not thread-safe: one writer.
class ShmBuffer {
 public:
  ShmBuffer() = default;
  ~ShmBuffer();
  ShmBuffer(const ShmBuffer&) = delete;
  ShmBuffer& operator=(const ShmBuffer&) = delete;

 private:
  friend Status WriteFrame(FrameChannel, FrameType, const nlohmann::json&,
                           const std::vector<Tensor>&, Deadline, ShmBuffer&);
  int fd_ = -1;        // the memfd, once a frame needed one
  uint64_t size_ = 0;  // its current size
};
Status WriteFrame(FrameChannel channel, FrameType type, const nlohmann::json& header,
                  const std::vector<Tensor>& tensors, Deadline deadline, ShmBuffer& reuse);

// Passes `fd` over the channel's socket (one byte carrying it), as
// WriteFrame passes a shared-memory frame's memfd before the frame; for
// tests that forge frames. kUnavailable when the peer is gone.
Status SendFrameFd(FrameChannel channel, int fd, Deadline deadline);

// Reads one frame. kUnavailable when the peer closed the channel or the
// deadline passed (the message says which: "worker closed the channel",
// "timed out"); kInternal for a malformed frame (bad length, bad JSON,
// sizes that disagree, a tensor that fails ValidateTensor, a shared-memory
// frame whose descriptor did not come first).
Result<Frame> ReadFrame(FrameChannel channel, Deadline deadline);

}  // namespace orrery
