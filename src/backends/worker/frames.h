// The wire protocol between the server and a worker process (python/
// orrery_worker.py, the orrery-native-worker executable), over one
// SOCK_STREAM Unix socket the server creates with socketpair() and hands to
// the worker as file descriptor 3.
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
// ends after the header and the tensor bytes live in a memfd sent with the
// frame as SCM_RIGHTS ancillary data; the receiver maps it read-only and
// closes it. kReady's header is {"pid": n}; kLoadError's and kError's are
// {"error": "message"}.
//
// Sequence: the worker loads the servable, then sends kReady or
// kLoadError. After kReady the server sends kInfer frames one at a time
// and the worker answers each with kResult or kError (the servable raised).
// The worker exits when the socket closes.
//
// Thread-safety: functions; one reader and one writer per socket at a time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/backend.h"
#include "tensor/tensor.h"

namespace orrery {

enum class FrameType : uint8_t {
  kInfer = 1,
  kReady = 2,
  kLoadError = 3,
  kResult = 4,
  kError = 5,
};

constexpr uint64_t kShmThreshold = 1u << 20;    // tensor bytes at which a memfd is used
constexpr uint64_t kMaxFramePayload = 1u << 30;  // a larger length is a protocol error

struct Frame {
  FrameType type = FrameType::kError;
  nlohmann::json header = nlohmann::json::object();
  std::vector<Tensor> tensors;  // kInfer / kResult, decoded from header + bytes
};

// Writes one frame (choosing inline or shared-memory mode). kUnavailable
// when the peer is gone or the deadline passes.
Status WriteFrame(int fd, FrameType type, const nlohmann::json& header,
                  const std::vector<Tensor>& tensors, Deadline deadline);
// Reads one frame. kUnavailable when the peer closed the socket or the
// deadline passed (the message says which: "worker closed the socket",
// "timed out"); kInternal for a malformed frame (bad length, bad JSON,
// sizes that disagree, a tensor that fails ValidateTensor).
Result<Frame> ReadFrame(int fd, Deadline deadline);

}  // namespace orrery
