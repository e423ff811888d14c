// The worker frame protocol (frames.h).
//
// Costs on the request path: a frame goes out with one writev() gathering
// the prefix, the JSON header and the tensors' own buffers (no copy into a
// frame buffer), and a small frame comes in with one read(), plus a poll()
// whenever the peer has not answered yet. The server's descriptors are
// non-blocking and the worker's blocking: both work here, the deadline being
// enforced by poll() when a call would block.
//
// Shared-memory mode: the sender writes the tensors into a memfd, seals it
// against shrinking and growing, and passes it with SCM_RIGHTS over the
// channel's socket before the frame. The receiver maps it only when it
// carries F_SEAL_SHRINK: the peer is untrusted, and a mapping of a file that
// the peer truncates afterwards would raise SIGBUS in the server. An
// unsealed memfd is read with pread() instead.
#include "backends/worker/frames.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <mutex>
#include <system_error>

#include "core/files.h"

namespace orrery {
namespace {

using nlohmann::json;
constexpr size_t kPrefixSize = 9;  // u32 payload length, type, u32 header length
constexpr int kMaxFdsPerFrame = 4;
constexpr size_t kSmallFrame = 4096;  // read whole by ReadFrame's first read()
// Pipe capacity asked for (Linux's default is 64 KiB): inline frames go up
// to kShmThreshold, and every time a pipe fills the writer waits for the
// reader's turn on the core. Best effort: once a server not running as root
// holds more than /proc/sys/fs/pipe-user-pages-soft (64 MiB of pipe buffers
// per user by default, ~128 workers at this size), Linux gives its new pipes
// 2 pages and refuses to grow them: large inline frames take more turns,
// nothing fails.
constexpr int kPipeBytes = 256 << 10;

int TimeoutMs(Deadline deadline) {
  if (deadline == Deadline::max()) return -1;
  auto left = deadline - std::chrono::steady_clock::now();
  if (left <= left.zero()) return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

Status ChannelError(const char* what) {
  if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN) {
    return Unavailable("worker closed the channel");
  }
  return Unavailable(std::string(what) + ": " + std::generic_category().message(errno));
}

// Waits until `fd` is ready for `events` (or has an error or hang-up, which
// the next system call reports).
Status WaitFd(int fd, short events, Deadline deadline) {
  while (true) {
    int timeout = TimeoutMs(deadline);
    if (timeout == 0) return Unavailable("timed out");
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, timeout);
    if (n > 0) return Status::Ok();
    // kUnavailable like every failure once sending began (the stream is broken).
    if (n < 0 && errno != EINTR) return ChannelError("poll");
  }
}

// Writes every byte of `iov` to `fd`.
Status WriteAllOf(int fd, std::vector<iovec>& iov, Deadline deadline) {
  size_t index = 0;
  while (index < iov.size() && iov[index].iov_len == 0) ++index;
  while (index < iov.size()) {
    int count = static_cast<int>(std::min<size_t>(iov.size() - index, IOV_MAX));
    ssize_t n = ::writev(fd, &iov[index], count);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        RETURN_IF_ERROR(WaitFd(fd, POLLOUT, deadline));
        continue;
      }
      return ChannelError("write");
    }
    auto sent = static_cast<size_t>(n);
    while (index < iov.size() && sent >= iov[index].iov_len) sent -= iov[index++].iov_len;
    if (sent > 0) {
      iov[index].iov_base = static_cast<char*>(iov[index].iov_base) + sent;
      iov[index].iov_len -= sent;
    }
    while (index < iov.size() && iov[index].iov_len == 0) ++index;
  }
  return Status::Ok();
}

// Reads at least one byte (at most `size`) into `data`.
Result<size_t> ReadSome(int fd, char* data, size_t size, Deadline deadline) {
  while (true) {
    ssize_t n = ::read(fd, data, size);
    if (n > 0) return static_cast<size_t>(n);
    if (n == 0) return Unavailable("worker closed the channel");
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return ChannelError("read");
    RETURN_IF_ERROR(WaitFd(fd, POLLIN, deadline));
  }
}

// Reads exactly `size` bytes.
Status ReadExact(int fd, char* data, size_t size, Deadline deadline) {
  size_t got = 0;
  while (got < size) {
    ASSIGN_OR_RETURN(size_t n, ReadSome(fd, data + got, size - got, deadline));
    got += n;
  }
  return Status::Ok();
}

Status Malformed(const std::string& why) {
  return Internal("malformed frame: " + why);
}

// The memfd of a shared-memory frame that has arrived: sent before the
// frame, so it is queued on the socket by now, or was never sent.
Result<UniqueFd> ReceiveFd(int socket) {
  char byte;
  iovec v{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerFrame)];
  msghdr msg{};
  msg.msg_iov = &v;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(socket, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    return Malformed("shared-memory frame without a descriptor sent before it");
  }
  if (n < 0) return ChannelError("recvmsg");
  if (n == 0) return Unavailable("worker closed the channel");
  std::vector<UniqueFd> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int received;
      std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds.emplace_back(received);
    }
  }
  if ((msg.msg_flags & MSG_CTRUNC) || fds.size() != 1) {
    return Malformed("shared-memory frame without exactly one descriptor");
  }
  return std::move(fds[0]);
}

// Decodes the "tensors" list of a header into tensors without data; sets
// *total to the sum of their sizes.
Status DecodeTensorList(const json& header, std::vector<Tensor>& tensors,
                        std::vector<uint64_t>& sizes, uint64_t* total) {
  *total = 0;
  auto it = header.find("tensors");
  if (it == header.end()) return Status::Ok();
  if (!it->is_array()) return Malformed("'tensors' is not a list");
  for (const json& entry : *it) {
    if (!entry.is_object()) return Malformed("a tensor entry is not an object");
    auto name = entry.find("name"), datatype = entry.find("datatype");
    auto shape = entry.find("shape"), size = entry.find("size");
    if (name == entry.end() || !name->is_string() || datatype == entry.end() ||
        !datatype->is_string() || shape == entry.end() || !shape->is_array() ||
        size == entry.end() || !size->is_number_unsigned()) {
      return Malformed("a tensor entry lacks name, datatype, shape or size");
    }
    Tensor tensor;
    tensor.name = name->get<std::string>();
    std::optional<DataType> type = ParseDataType(datatype->get<std::string>());
    if (!type) return Malformed("tensor '" + tensor.name + "': unknown datatype");
    tensor.datatype = *type;
    for (const json& dim : *shape) {
      if (!dim.is_number_integer()) return Malformed("tensor '" + tensor.name + "': bad shape");
      tensor.shape.push_back(dim.get<int64_t>());
    }
    uint64_t bytes = size->get<uint64_t>();
    if (bytes > kMaxFramePayload * 4ull || *total + bytes > kMaxFramePayload * 4ull) {
      return Malformed("tensor '" + tensor.name + "' too large");
    }
    *total += bytes;
    sizes.push_back(bytes);
    tensors.push_back(std::move(tensor));
  }
  return Status::Ok();
}

// Fills the tensors' data from a received memfd holding `total` bytes.
Status FillFromMemfd(int fd, uint64_t total, std::vector<Tensor>& tensors,
                     const std::vector<uint64_t>& sizes) {
  struct stat info;
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode) ||
      static_cast<uint64_t>(info.st_size) < total) {
    return Malformed("shared-memory descriptor is not a file of " + std::to_string(total) +
                     " bytes");
  }
  int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals >= 0 && (seals & F_SEAL_SHRINK) && total > 0) {
    void* map = ::mmap(nullptr, total, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (map == MAP_FAILED) return ErrnoStatus("mmap shared tensors");
    const char* data = static_cast<const char*>(map);
    for (size_t i = 0; i < tensors.size(); ++i) {
      tensors[i].data.assign(data, sizes[i]);
      data += sizes[i];
    }
    ::munmap(map, total);
    return Status::Ok();
  }
  off_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    tensors[i].data.resize(sizes[i]);
    size_t done = 0;
    while (done < sizes[i]) {
      ssize_t n = ::pread(fd, tensors[i].data.data() + done, sizes[i] - done, offset);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Malformed("shared-memory descriptor shrank");
      done += static_cast<size_t>(n);
      offset += n;
    }
  }
  return Status::Ok();
}

// Writes the tensors' bytes at the start of `fd`.
Status WriteTensors(int fd, const std::vector<Tensor>& tensors) {
  off_t offset = 0;
  for (const Tensor& tensor : tensors) {
    size_t done = 0;
    while (done < tensor.data.size()) {
      ssize_t n = ::pwrite(fd, tensor.data.data() + done, tensor.data.size() - done, offset);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return ErrnoStatus("write tensor memfd");
      done += static_cast<size_t>(n);
      offset += n;
    }
  }
  return Status::Ok();
}

// A fresh memfd holding the tensors, sealed against resizing.
Result<UniqueFd> WriteMemfd(const std::vector<Tensor>& tensors) {
  UniqueFd fd(::memfd_create("orrery-tensors", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) return ErrnoStatus("memfd_create");
  RETURN_IF_ERROR(WriteTensors(fd.get(), tensors));
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return ErrnoStatus("seal tensor memfd");
  }
  return fd;
}

// The last few headers this thread decoded. A worker answers requests of
// one shape with the same header every time, and parsing it was the largest
// cost of ReadFrame for small tensors.
struct ParsedHeader {
  std::string text;
  json header;
  std::vector<Tensor> tensors;  // without data
  std::vector<uint64_t> sizes;
  uint64_t total = 0;
};
constexpr size_t kParsedHeaders = 4;
constexpr size_t kMaxCachedHeader = 4096;
thread_local std::array<ParsedHeader, kParsedHeaders> parsed_headers;
thread_local size_t next_parsed_header = 0;

const ParsedHeader* FindParsedHeader(std::string_view text) {
  for (const ParsedHeader& entry : parsed_headers) {
    if (!entry.text.empty() && entry.text == text) return &entry;
  }
  return nullptr;
}

void RememberParsedHeader(std::string_view text, const Frame& frame,
                          const std::vector<uint64_t>& sizes, uint64_t total) {
  if (text.size() > kMaxCachedHeader) return;
  ParsedHeader& entry = parsed_headers[next_parsed_header++ % kParsedHeaders];
  entry.text = text;
  entry.header = frame.header;
  entry.tensors = frame.tensors;
  entry.sizes = sizes;
  entry.total = total;
}

// `socket`: where a shared-memory frame's descriptor waits.
Result<Frame> DecodePayload(const std::string& payload, int socket) {
  auto type = static_cast<uint8_t>(payload[0]);
  if (type < static_cast<uint8_t>(FrameType::kInfer) ||
      type > static_cast<uint8_t>(FrameType::kError)) {
    return Malformed("unknown type " + std::to_string(type));
  }
  uint32_t header_size;
  std::memcpy(&header_size, payload.data() + 1, 4);
  if (header_size > payload.size() - 5) return Malformed("header length past the payload");
  Frame frame;
  frame.type = static_cast<FrameType>(type);
  std::vector<uint64_t> sizes;
  uint64_t total = 0;
  std::string_view text(payload.data() + 5, header_size);
  if (const ParsedHeader* cached = FindParsedHeader(text)) {
    frame.header = cached->header;
    frame.tensors = cached->tensors;
    sizes = cached->sizes;
    total = cached->total;
  } else {
    frame.header = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (!frame.header.is_object()) return Malformed("the header is not a JSON object");
    RETURN_IF_ERROR(DecodeTensorList(frame.header, frame.tensors, sizes, &total));
    RememberParsedHeader(text, frame, sizes, total);
  }
  size_t inline_size = payload.size() - 5 - header_size;
  auto shm = frame.header.find("shm");
  if (shm != frame.header.end()) {
    if (!shm->is_number_unsigned() || shm->get<uint64_t>() != total || inline_size != 0) {
      return Malformed("shared-memory frame whose 'shm' is not its tensors' size");
    }
    ASSIGN_OR_RETURN(UniqueFd memfd, ReceiveFd(socket));
    RETURN_IF_ERROR(FillFromMemfd(memfd.get(), total, frame.tensors, sizes));
  } else {
    if (total != inline_size) {
      return Malformed("tensor sizes add up to " + std::to_string(total) + " bytes, frame has " +
                       std::to_string(inline_size));
    }
    const char* data = payload.data() + 5 + header_size;
    for (size_t i = 0; i < frame.tensors.size(); ++i) {
      frame.tensors[i].data.assign(data, sizes[i]);
      data += sizes[i];
    }
  }
  for (const Tensor& tensor : frame.tensors) {
    Status valid = ValidateTensor(tensor);
    if (!valid.ok()) return Malformed(valid.message());
  }
  return frame;
}

void AppendJsonString(std::string_view text, std::string* out) {
  bool plain = true;
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    plain = plain && u >= 0x20 && u < 0x80 && c != '"' && c != '\\';
  }
  if (plain) {
    *out += '"';
    *out += text;
    *out += '"';
  } else {
    *out += json(std::string(text)).dump(-1, ' ', false, json::error_handler_t::replace);
  }
}

// The JSON header: `header`'s fields, then "tensors" (when `tensors` is not
// null) and "shm" (when `shm` > 0). Written by hand: building an nlohmann
// tree for the per-request tensor list cost as much as a socket round trip.
Status EncodeHeader(const json& header, const std::vector<Tensor>* tensors, uint64_t shm,
                    std::string* out) {
  if (header.is_object() && !header.empty()) {
    try {
      json fields = header;
      fields.erase("tensors");
      fields.erase("shm");
      *out = fields.dump(-1, ' ', false, json::error_handler_t::replace);
    } catch (const json::exception& e) {
      return Internal(std::string("cannot encode frame header: ") + e.what());
    }
    out->pop_back();  // the closing brace
  } else {
    *out = "{";
  }
  if (tensors != nullptr) {
    *out += out->size() > 1 ? ",\"tensors\":[" : "\"tensors\":[";
    for (size_t i = 0; i < tensors->size(); ++i) {
      const Tensor& tensor = (*tensors)[i];
      *out += i == 0 ? "{\"name\":" : ",{\"name\":";
      AppendJsonString(tensor.name, out);
      *out += ",\"datatype\":\"";
      *out += DataTypeName(tensor.datatype);
      *out += "\",\"shape\":[";
      for (size_t d = 0; d < tensor.shape.size(); ++d) {
        if (d > 0) *out += ',';
        *out += std::to_string(tensor.shape[d]);
      }
      *out += "],\"size\":";
      *out += std::to_string(tensor.data.size());
      *out += '}';
    }
    *out += ']';
  }
  if (shm > 0) {
    *out += out->size() > 1 ? ",\"shm\":" : "\"shm\":";
    *out += std::to_string(shm);
  }
  *out += '}';
  return Status::Ok();
}

// Both WriteFrame overloads; `reuse` may be null.
Status WriteFrameImpl(FrameChannel channel, FrameType type, const json& header,
                      const std::vector<Tensor>& tensors, Deadline deadline, int reuse_fd) {
  uint64_t total = 0;
  for (const Tensor& tensor : tensors) total += tensor.data.size();
  bool shm = total >= kShmThreshold;
  bool with_tensors = !tensors.empty() || type == FrameType::kInfer || type == FrameType::kResult;
  std::string header_text;
  RETURN_IF_ERROR(
      EncodeHeader(header, with_tensors ? &tensors : nullptr, shm ? total : 0, &header_text));
  uint64_t payload = 5 + header_text.size() + (shm ? 0 : total);
  if (payload > kMaxFramePayload) {
    return InvalidArgument("frame of " + std::to_string(payload) + " bytes is too large");
  }
  char prefix[kPrefixSize];
  auto length = static_cast<uint32_t>(payload);
  auto header_size = static_cast<uint32_t>(header_text.size());
  std::memcpy(prefix, &length, 4);
  prefix[4] = static_cast<char>(type);
  std::memcpy(prefix + 5, &header_size, 4);

  std::vector<iovec> iov;
  iov.reserve(2 + tensors.size());
  iov.push_back({prefix, kPrefixSize});
  iov.push_back({header_text.data(), header_text.size()});
  UniqueFd memfd;
  if (shm && reuse_fd >= 0) {
    RETURN_IF_ERROR(WriteTensors(reuse_fd, tensors));
  } else if (shm) {
    ASSIGN_OR_RETURN(memfd, WriteMemfd(tensors));
  } else {
    for (const Tensor& tensor : tensors) {
      iov.push_back({const_cast<char*>(tensor.data.data()), tensor.data.size()});
    }
  }
  if (shm) RETURN_IF_ERROR(SendFrameFd(channel, reuse_fd >= 0 ? reuse_fd : memfd.get(), deadline));
  return WriteAllOf(channel.out, iov, deadline);
}

}  // namespace

Status SendFrameFd(FrameChannel channel, int pass_fd, Deadline deadline) {
  int socket = channel.fds;
  char byte = 0;
  iovec v{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &v;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cmsg), &pass_fd, sizeof(int));
  while (true) {
    ssize_t n = ::sendmsg(socket, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n == 1) return Status::Ok();
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      RETURN_IF_ERROR(WaitFd(socket, POLLOUT, deadline));
      continue;
    }
    return ChannelError("sendmsg");
  }
}

ShmBuffer::~ShmBuffer() {
  if (fd_ >= 0) ::close(fd_);
}

Status WriteFrame(FrameChannel channel, FrameType type, const json& header,
                  const std::vector<Tensor>& tensors, Deadline deadline) {
  return WriteFrameImpl(channel, type, header, tensors, deadline, -1);
}

Status WriteFrame(FrameChannel channel, FrameType type, const json& header,
                  const std::vector<Tensor>& tensors, Deadline deadline, ShmBuffer& reuse) {
  uint64_t total = 0;
  for (const Tensor& tensor : tensors) total += tensor.data.size();
  if (total >= kShmThreshold) {
    if (reuse.fd_ < 0) {
      reuse.fd_ = ::memfd_create("orrery-tensors", MFD_CLOEXEC);
      if (reuse.fd_ < 0) return ErrnoStatus("memfd_create");
      reuse.size_ = 0;
    }
    // Exactly the frame's size: pages past it are given back.
    if (reuse.size_ != total) {
      if (::ftruncate(reuse.fd_, static_cast<off_t>(total)) != 0) return ErrnoStatus("ftruncate");
      reuse.size_ = total;
    }
  }
  return WriteFrameImpl(channel, type, header, tensors, deadline, reuse.fd_);
}

Result<Frame> ReadFrame(FrameChannel channel, Deadline deadline) {
  // A small frame comes whole with the first read(). Reading past the
  // frame is a protocol error: a peer sends one frame, then waits.
  char first[kSmallFrame];
  size_t got = 0;
  while (got < 4) {
    ASSIGN_OR_RETURN(size_t n, ReadSome(channel.in, first + got, sizeof(first) - got, deadline));
    got += n;
  }
  uint32_t length = 0;
  std::memcpy(&length, first, 4);
  if (length < 5 || length > kMaxFramePayload) {
    return Malformed("payload length " + std::to_string(length));
  }
  if (got - 4 > length) return Malformed("more than one frame at a time");
  std::string payload(length, '\0');
  std::memcpy(payload.data(), first + 4, got - 4);
  RETURN_IF_ERROR(ReadExact(channel.in, payload.data() + (got - 4), length - (got - 4), deadline));
  return DecodePayload(payload, channel.fds);
}

Result<std::pair<FrameChannelEnds, FrameChannelEnds>> MakeFrameChannel() {
  static std::once_flag ignore_sigpipe;
  std::call_once(ignore_sigpipe, [] { std::signal(SIGPIPE, SIG_IGN); });
  int requests[2], answers[2], sockets[2];
  if (::pipe2(requests, O_CLOEXEC) != 0) return ErrnoStatus("pipe2");
  UniqueFd request_read(requests[0]), request_write(requests[1]);
  if (::pipe2(answers, O_CLOEXEC) != 0) return ErrnoStatus("pipe2");
  UniqueFd answer_read(answers[0]), answer_write(answers[1]);
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets) != 0) {
    return ErrnoStatus("socketpair");
  }
  FrameChannelEnds server{std::move(answer_read), std::move(request_write), UniqueFd(sockets[0])};
  FrameChannelEnds worker{std::move(request_read), std::move(answer_write), UniqueFd(sockets[1])};
  for (int fd : {server.in.get(), server.out.get(), server.fds.get()}) {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return ErrnoStatus("fcntl");
  }
  (void)::fcntl(server.in.get(), F_SETPIPE_SZ, kPipeBytes);
  (void)::fcntl(server.out.get(), F_SETPIPE_SZ, kPipeBytes);
  return std::make_pair(std::move(server), std::move(worker));
}

}  // namespace orrery
