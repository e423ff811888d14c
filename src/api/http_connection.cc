#include "api/http_connection.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "api/content_coding.h"
#include "core/files.h"
#include "core/log.h"
#include "core/random.h"
#include "core/text.h"

namespace orrery {
namespace {

constexpr size_t kHeaderLimit = 64 * 1024;
constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kBodyReadChunk = 256 * 1024;
// An idle keep-alive connection, or a client that stalls in its head, is
// closed after kHeaderTimeoutMs; a body or an answer must pass within
// kBodyTimeoutMs; an error answer's connection lingers at most kLingerMs.
constexpr int64_t kHeaderTimeoutMs = 60'000;
constexpr int64_t kBodyTimeoutMs = 15 * 60'000;
constexpr int64_t kLingerMs = 2'000;
constexpr size_t kMinGzipBytes = 1024;  // smaller answers gain little from compression
// Larger answers go out as they are: compressing runs on the event loop's
// thread (at ~100 MB/s, 4 MiB holds the loop about 40 ms at most).
constexpr size_t kMaxGzipBytes = 4 << 20;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 507: return "Insufficient Storage";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
  }
}

void AppendNumber(std::string& out, uint64_t value) {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  out.append(digits, end);
}

// A route's header values never split the head: CR and LF become spaces.
void AppendField(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ");
  size_t start = out.size();
  out.append(value);
  for (size_t i = start; i < out.size(); ++i) {
    if (out[i] == '\r' || out[i] == '\n') out[i] = ' ';
  }
  out.append("\r\n");
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

Status ParseTarget(std::string_view target, HttpRequest& request) {
  size_t question = target.find('?');
  ASSIGN_OR_RETURN(request.segments, SplitPath(target.substr(0, question)));
  if (question != std::string_view::npos) {
    ASSIGN_OR_RETURN(request.query, ParseQuery(target.substr(question + 1)));
  }
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------- InputBuffer

void InputBuffer::Consume(size_t n) {
  begin_ += n;
  if (begin_ == end_) begin_ = end_ = 0;
}

char* InputBuffer::Reserve(size_t want) {
  if (capacity_ - end_ >= want) return data_.get() + end_;
  size_t unread = end_ - begin_;
  if (begin_ > 0 && capacity_ - unread >= want) {
    std::memmove(data_.get(), data_.get() + begin_, unread);
  } else {
    size_t capacity = std::max(capacity_ * 2, unread + want);
    auto grown = std::make_unique<char[]>(capacity);  // value-initialised once per growth
    if (unread > 0) std::memcpy(grown.get(), data_.get() + begin_, unread);
    data_ = std::move(grown);
    capacity_ = capacity;
  }
  begin_ = 0;
  end_ = unread;
  return data_.get() + end_;
}

void InputBuffer::ShrinkIfIdle(size_t keep) {
  if (begin_ == end_ && capacity_ > keep) {
    data_.reset();
    capacity_ = begin_ = end_ = 0;
  }
}

// ----------------------------------------------------------------- Connection

Connection::Connection(ConnectionLoop& loop, const ConnectionContext& context, uint64_t id, int fd)
    : loop_(loop), context_(context), id_(id), fd_(fd) {
  SetDeadline(kHeaderTimeoutMs);
}

Connection::~Connection() { Close(); }

void Connection::OnEvents(uint32_t events) {
  if (events & (EPOLLERR | EPOLLHUP)) return Close();
  if (events & EPOLLRDHUP) peer_shut_write_ = true;
  if (events & (EPOLLIN | EPOLLRDHUP)) may_read_ = true;
  Drive();
}

void Connection::OnAnswer(uint64_t sequence, HttpResponse response) {
  if (state_ != State::kRouting || sequence != sequence_) return;
  RemoveUpload();
  PrepareAnswer(std::move(response));
  if (!in_drive_) Drive();
}

void Connection::WriteDeferred() {
  write_now_ = true;
  Drive();
  write_now_ = false;
}

void Connection::CheckDeadline(int64_t now_ms) {
  if (deadline_ms_ != 0 && now_ms >= deadline_ms_) Close();
}

void Connection::Drive() {
  in_drive_ = true;
  while (Step()) {
  }
  in_drive_ = false;
}

bool Connection::Step() {
  switch (state_) {
    case State::kHead: return ReadHead();
    case State::kBody: return ReadBody();
    case State::kUpload: return ReadUpload();
    case State::kRouting: return false;  // until OnAnswer
    case State::kWriting: return write_now_ || !loop_.DeferWrite(id_) ? Flush() : false;
    case State::kLinger: return Discard();
    case State::kClosed: return false;
  }
  return false;
}

// ------------------------------------------------------------------ reading

// Reads what the socket has into in_; true when bytes arrived.
bool Connection::Fill(size_t chunk) {
  if (!may_read_) return false;
  char* at = in_.Reserve(chunk);
  size_t room = in_.room();
  ssize_t n = ::recv(fd_, at, room, 0);
  if (n > 0) {
    in_.Commit(static_cast<size_t>(n));
    // A short read drained the socket: the next edge says when more came.
    // Not so once the peer shut its side: its FIN raised no edge of its own,
    // and only the read that returns 0 tells this connection is over.
    if (static_cast<size_t>(n) < room && !peer_shut_write_) may_read_ = false;
    return true;
  }
  if (n < 0 && errno == EINTR) return true;
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    may_read_ = false;
    return false;
  }
  Close();  // EOF or a socket error
  return false;
}

// Parsing an incomplete head again only when a line ending arrived keeps a
// head sent a byte at a time from costing quadratic time.
bool Connection::HeadMayBeComplete(size_t scan_from) const {
  std::string_view view = in_.View();
  for (size_t i = scan_from; i < view.size(); ++i) {
    const void* found = std::memchr(view.data() + i, '\n', view.size() - i);
    if (found == nullptr) return false;
    i = static_cast<const char*>(found) - view.data();
    // A bare LF is an error the parser reports; CRLF CRLF ends a head.
    if (i == 0 || view[i - 1] != '\r') return true;
    if (i >= 3 && view[i - 2] == '\n' && view[i - 3] == '\r') return true;
  }
  return false;
}

bool Connection::ReadHead() {
  size_t size = in_.size();
  if (size > 0 && (size > kHeaderLimit || HeadMayBeComplete(head_scanned_))) {
    ParseResult parsed = ParseRequestHead(in_.View(), kHeaderLimit, head_);
    switch (parsed.outcome) {
      case ParseOutcome::kDone: return StartRequest();
      case ParseOutcome::kBad:
        return Reject(HttpResponse::Json(400, {{"error", "bad request: " + parsed.error}}));
      case ParseOutcome::kHeadTooLarge:
        return Reject(HttpResponse::Json(431, {{"error", parsed.error}}));
      case ParseOutcome::kBadVersion:
        return Reject(HttpResponse::Json(505, {{"error", parsed.error}}));
      case ParseOutcome::kIncomplete: break;
    }
  }
  head_scanned_ = size >= 3 ? size - 3 : 0;
  return Fill(kReadChunk);
}

bool Connection::StartRequest() {
  head_scanned_ = 0;
  request_ = HttpRequest();
  request_.method.assign(head_.method);
  head_method_ = request_.method == "HEAD";
  keep_alive_ = head_.keep_alive;
  Status target = ParseTarget(head_.target, request_);
  request_.headers.reserve(head_.fields.size());
  for (const auto& [name, value] : head_.fields) {
    std::string lower(name);
    for (char& c : lower) c = AsciiLower(c);
    request_.headers.emplace_back(std::move(lower), std::string(value));
  }
  answer_gzip_ = AcceptsGzip(request_.Header("accept-encoding"));
  chunked_ = head_.chunked;
  body_left_ = head_.content_length.value_or(0);
  bool has_body = head_.HasBody();
  bool expect_continue = head_.expect_continue && head_.minor_version == 1;
  in_.Consume(head_.head_bytes);  // head_'s views are not used past here
  if (!target.ok()) return Reject(target);
  std::string_view host = request_.Header("host");
  if (context_.hosts != nullptr && !context_.hosts->Allows(host)) {
    return Reject(InvalidArgument("Host '" + PrintableText(host.substr(0, 100)) +
                                  "' is not a name of this hub (the operator adds names with "
                                  "orrery serve --allowed-host NAME)"));
  }
  request_.route = MatchRoute(request_.method, request_.segments, &request_.params);
  if (context_.stopping->load(std::memory_order_relaxed) &&
      !AnswersWhileStopping(request_.route)) {
    HttpResponse refused = HttpResponse::Error(Unavailable("the server is stopping"));
    refused.headers.emplace_back("Retry-After", "1");
    return Reject(std::move(refused));
  }
  BodyPolicy body = request_.route ? request_.route->body : BodyPolicy::kJson;
  if (has_body && request_.route != nullptr) {
    Status type = CheckContentType(body, request_.Header("content-type"));
    if (!type.ok()) return Reject(type);
    std::string_view coding = request_.Header("content-encoding");
    if (body == BodyPolicy::kUpload && !coding.empty() && !EqualsIgnoreCase(coding, "identity")) {
      return Reject(UnsupportedMediaType(
          "a package upload takes no Content-Encoding (send a zstd-compressed tar as "
          "application/zstd)"));
    }
  }
  if (body == BodyPolicy::kUpload) {
    StartUpload();
    return state_ == State::kUpload && !has_body ? FinishUpload() : true;
  }
  // Inference bodies carry tensors and get their own, larger limit.
  const ServerOptions& options = *context_.options;
  body_limit_ = body == BodyPolicy::kInference ? options.max_infer_bytes : options.max_json_bytes;
  if (!chunked_ && body_left_ > body_limit_) {
    return Reject(TooLarge("request body is over the " + std::to_string(body_limit_) +
                           "-byte limit"));
  }
  if (!has_body) return Dispatch();
  if (!chunked_) request_.body.reserve(body_left_);
  decoder_ = ChunkedDecoder();
  SetDeadline(kBodyTimeoutMs);
  state_ = State::kBody;
  if (expect_continue) SendContinueIfAsked();
  return true;
}

// Authenticated from the head, before a byte of the package is read. Ends
// in kUpload, or in kWriting with an error answer.
void Connection::StartUpload() {
  Result<Caller> caller = context_.router->Authenticate(request_.Header("authorization"));
  if (!caller.ok()) {
    Reject(caller.status());
    return;
  }
  uint64_t limit = context_.options->max_upload_bytes;
  if (!chunked_ && body_left_ > limit) {
    Reject(TooLarge("package is over the " + std::to_string(limit) + "-byte upload limit"));
    return;
  }
  Status room = context_.router->CheckUploadRoom(chunked_ ? 0 : body_left_);
  if (!room.ok()) {
    Reject(room);
    return;
  }
  upload_path_ = context_.temp_root / ("upload-" + RandomHex(8));
  upload_fd_ = ::open(upload_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (upload_fd_ < 0) {
    Status failed = ErrnoStatus("stage upload " + upload_path_.string());
    upload_path_.clear();  // not ours: Reject must not remove it
    Reject(failed);
    return;
  }
  upload_bytes_ = 0;
  decoder_ = ChunkedDecoder();
  SetDeadline(kBodyTimeoutMs);
  state_ = State::kUpload;
  if (head_.expect_continue && head_.minor_version == 1) SendContinueIfAsked();
}

// curl and others wait for "100 Continue" before sending a large body. Sent
// only when none of the body is here yet; the socket has no answer pending
// (answers are written before the next head is read), so the write fits.
void Connection::SendContinueIfAsked() {
  if (in_.size() > 0) return;
  if (::send(fd_, kContinue.data(), kContinue.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(kContinue.size())) {
    Close();
  }
}

bool Connection::ReadBody() {
  if (in_.size() == 0) return Fill(body_left_ > kReadChunk ? kBodyReadChunk : kReadChunk);
  std::string_view available = in_.View();
  if (!chunked_) {
    size_t take = static_cast<size_t>(std::min<uint64_t>(available.size(), body_left_));
    request_.body.append(available.data(), take);
    in_.Consume(take);
    body_left_ -= take;
    return body_left_ == 0 ? Dispatch() : true;
  }
  size_t consumed = 0;
  ChunkedDecoder::State state = decoder_.Feed(available, request_.body, consumed);
  in_.Consume(consumed);
  if (request_.body.size() > body_limit_) {
    return Reject(TooLarge("request body is over the " + std::to_string(body_limit_) +
                           "-byte limit"));
  }
  if (state == ChunkedDecoder::State::kBad) {
    return Reject(InvalidArgument("bad chunked body: " + decoder_.error()));
  }
  return state == ChunkedDecoder::State::kDone ? Dispatch() : true;
}

bool Connection::ReadUpload() {
  if (in_.size() == 0) return Fill(kBodyReadChunk);
  std::string_view available = in_.View();
  std::string_view data;
  size_t consumed = 0;
  bool done = false;
  if (!chunked_) {
    consumed = static_cast<size_t>(std::min<uint64_t>(available.size(), body_left_));
    data = available.substr(0, consumed);
    body_left_ -= consumed;
    done = body_left_ == 0;
  } else {
    scratch_.clear();
    ChunkedDecoder::State state = decoder_.Feed(available, scratch_, consumed);
    if (state == ChunkedDecoder::State::kBad) {
      return Reject(InvalidArgument("bad chunked body: " + decoder_.error()));
    }
    data = scratch_;
    done = state == ChunkedDecoder::State::kDone;
  }
  upload_bytes_ += data.size();
  uint64_t limit = context_.options->max_upload_bytes;
  if (upload_bytes_ > limit) {
    return Reject(TooLarge("package is over the " + std::to_string(limit) + "-byte upload limit"));
  }
  if (!WriteAll(upload_fd_, data)) {
    return Reject(ErrnoStatus("stage upload " + upload_path_.string()));
  }
  in_.Consume(consumed);
  return done ? FinishUpload() : true;
}

bool Connection::FinishUpload() {
  ::close(upload_fd_);
  upload_fd_ = -1;
  request_.body_file = upload_path_;
  return Dispatch();
}

// ------------------------------------------------------------------ routing

bool Connection::Dispatch() {
  if (!request_.body.empty() && !request_.Header("content-encoding").empty()) {
    Result<std::string> decoded =
        DecodeBody(request_.Header("content-encoding"), std::move(request_.body), body_limit_);
    if (!decoded.ok()) return Reject(decoded.status());
    request_.body = std::move(*decoded);
  }
  state_ = State::kRouting;
  deadline_ms_ = 0;  // the route's own work is not a client stall
  uint64_t sequence = ++sequence_;
  loop_.BeginRouting(id_);
  try {
    context_.router->HandleAsync(std::move(request_), loop_.MakeResponder(id_, sequence));
  } catch (const nlohmann::json::exception& error) {
    // A JSON field of the wrong type read by a route (e.g. a number as a string).
    OnAnswer(sequence,
             HttpResponse::Error(InvalidArgument(std::string("bad JSON field: ") + error.what())));
  } catch (const std::exception& error) {
    LogError(std::string("request failed: ") + error.what());
    OnAnswer(sequence, HttpResponse::Error(Internal("internal error")));
  }
  loop_.EndRouting();
  return true;
}

// ------------------------------------------------------------------ writing

void Connection::PrepareAnswer(HttpResponse response) {
  uint64_t length = response.body.size();
  if (!response.file.empty()) {
    file_fd_ = ::open(response.file.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat info {};
    bool opened = file_fd_ >= 0 && ::fstat(file_fd_, &info) == 0;
    std::string error = opened ? "" : std::strerror(errno);
    std::error_code ignored;
    std::filesystem::remove(response.file, ignored);  // the open descriptor keeps the data
    if (!opened) {
      CloseFile();
      return PrepareAnswer(HttpResponse::Error(Internal("cannot open export: " + error)));
    }
    file_left_ = length = static_cast<uint64_t>(info.st_size);
  }
  // Compressed for a client that asks, when it is worth it (not files:
  // package archives, already compressed or not, go out as stored).
  if (answer_gzip_ && response.file.empty() && !head_method_ &&
      response.body.size() >= kMinGzipBytes && response.body.size() <= kMaxGzipBytes) {
    response.body = Gzip(response.body);
    length = response.body.size();
    response.headers.emplace_back("Content-Encoding", "gzip");
    response.headers.emplace_back("Vary", "Accept-Encoding");
  }
  // While the server stops, every answer closes its connection: the client
  // reconnects (to another replica) instead of meeting a refusal here.
  if (context_.stopping->load(std::memory_order_relaxed)) keep_alive_ = false;
  out_head_.clear();
  out_head_.append("HTTP/1.1 ");
  AppendNumber(out_head_, static_cast<uint64_t>(response.status));
  out_head_.append(" ").append(Reason(response.status)).append("\r\nServer: orrery\r\n");
  AppendField(out_head_, "Content-Type", response.content_type);
  out_head_.append("Content-Length: ");
  AppendNumber(out_head_, length);
  out_head_.append("\r\n");
  for (const auto& [name, value] : response.headers) AppendField(out_head_, name, value);
  if (!keep_alive_) {
    out_head_.append("Connection: close\r\n");
  } else if (head_.minor_version == 0) {
    out_head_.append("Connection: keep-alive\r\n");
  }
  out_head_.append("\r\n");
  out_body_ = std::move(response.body);
  if (head_method_) {
    out_body_.clear();
    CloseFile();
  }
  out_sent_ = 0;
  state_ = State::kWriting;
  SetDeadline(kBodyTimeoutMs);  // a reader that stalls is dropped
}

// Writes the head and body in one system call, then the file if any; false
// when the socket is full (the next EPOLLOUT edge resumes).
bool Connection::Flush() {
  size_t total = out_head_.size() + out_body_.size();
  while (out_sent_ < total) {
    iovec parts[2];
    int count = 0;
    if (out_sent_ < out_head_.size()) {
      parts[count++] = {out_head_.data() + out_sent_, out_head_.size() - out_sent_};
    }
    size_t body_sent = out_sent_ > out_head_.size() ? out_sent_ - out_head_.size() : 0;
    if (body_sent < out_body_.size()) {
      parts[count++] = {out_body_.data() + body_sent, out_body_.size() - body_sent};
    }
    msghdr message{};
    message.msg_iov = parts;
    message.msg_iovlen = static_cast<size_t>(count);
    ssize_t n = ::sendmsg(fd_, &message, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    if (n < 0) {
      Close();
      return false;
    }
    out_sent_ += static_cast<size_t>(n);
  }
  while (file_left_ > 0) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(file_left_, 1 << 20));
    ssize_t n = ::sendfile(fd_, file_fd_, nullptr, chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    if (n <= 0) {  // an error, or the file shrank: the promised length cannot be kept
      Close();
      return false;
    }
    file_left_ -= static_cast<uint64_t>(n);
  }
  return AfterWrite();
}

bool Connection::AfterWrite() {
  CloseFile();
  out_head_.clear();
  if (out_body_.capacity() > kReadChunk) std::string().swap(out_body_);
  out_body_.clear();
  head_method_ = false;
  if (close_after_write_ || !keep_alive_) {
    // Unread input may remain (the rest of a refused body, pipelined
    // requests): shut our side and drain theirs, or closing with unread
    // input would reset the connection and could destroy the answer before
    // the client read it.
    ::shutdown(fd_, SHUT_WR);
    in_.Clear();
    state_ = State::kLinger;
    deadline_ms_ = loop_.now_ms() + kLingerMs;
    return true;
  }
  in_.ShrinkIfIdle(kReadChunk * 4);
  state_ = State::kHead;
  SetDeadline(kHeaderTimeoutMs);
  return true;
}

bool Connection::Discard() {
  if (!may_read_) return false;
  in_.Clear();
  if (!Fill(kReadChunk)) return false;
  in_.Clear();
  return state_ != State::kClosed;
}

// Answers with an error and closes: the rest of the request stays unread.
bool Connection::Reject(HttpResponse response) {
  keep_alive_ = false;
  close_after_write_ = true;
  RemoveUpload();
  PrepareAnswer(std::move(response));
  return true;
}

// ------------------------------------------------------------------ helpers

void Connection::SetDeadline(int64_t from_now_ms) { deadline_ms_ = loop_.now_ms() + from_now_ms; }

void Connection::RemoveUpload() {
  if (upload_fd_ >= 0) {
    ::close(upload_fd_);
    upload_fd_ = -1;
  }
  if (upload_path_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove(upload_path_, ignored);
  upload_path_.clear();
}

void Connection::CloseFile() {
  if (file_fd_ >= 0) ::close(file_fd_);
  file_fd_ = -1;
  file_left_ = 0;
}

void Connection::Close() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  ::close(fd_);
  fd_ = -1;
  RemoveUpload();
  CloseFile();
}

}  // namespace orrery
