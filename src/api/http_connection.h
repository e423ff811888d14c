// One client connection of the epoll transport (http_transport.h has the
// behaviour users see): reads requests, routes them, writes the answers.
//
// A connection is a state machine stepped by its loop on socket events and
// when its answer arrives:
//   kHead -> (kBody | kUpload) -> kRouting -> kWriting -> kHead ...
//   any error answer: kWriting -> kLinger (write side shut, input drained
//   until EOF or 2 s, so the client reads the answer and not a reset)
//   -> kClosed.
// Reads are edge-triggered: a read shorter than the room offered means the
// socket was drained, and the next edge says when more arrived.
//
// Ownership: owns its socket, any staged upload file and any file being sent.
// Thread-safety: everything runs on the owning loop's thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "api/http.h"
#include "api/host_allowlist.h"
#include "api/http_parser.h"
#include "api/router.h"
#include "api/server.h"

namespace orrery {

// What a connection needs from the loop that owns it.
class ConnectionLoop {
 public:
  virtual ~ConnectionLoop() = default;
  virtual int64_t now_ms() const = 0;  // steady clock, read once per wake-up
  // Brackets Router::HandleAsync: an answer given inside, on this thread,
  // reaches Connection::OnAnswer before HandleAsync returns.
  virtual void BeginRouting(uint64_t id) = 0;
  virtual void EndRouting() = 0;
  // Delivers its answer to connection `id`'s OnAnswer on the loop's thread.
  virtual Router::Responder MakeResponder(uint64_t id, uint64_t sequence) = 0;
  // True when the loop takes connection `id`'s answer to write after the
  // events at hand (it then calls WriteDeferred); false: write it now.
  virtual bool DeferWrite(uint64_t id) = 0;
};

struct ConnectionContext {
  const Router* router = nullptr;
  const ServerOptions* options = nullptr;
  std::filesystem::path temp_root;  // upload bodies are staged here
  // Set when the server begins to stop: requests whose head arrives later
  // are refused with 503 (but liveness and readiness).
  const std::atomic<bool>* stopping = nullptr;
  // The names requests may carry in Host (null: any).
  const HostAllowList* hosts = nullptr;
};

// Unread input: [begin, end) of a heap block that grows on demand.
class InputBuffer {
 public:
  std::string_view View() const { return {data_.get() + begin_, end_ - begin_}; }
  size_t size() const { return end_ - begin_; }
  void Consume(size_t n);
  void Clear() { begin_ = end_ = 0; }
  // Room for at least `want` bytes after the unread ones (compacts or grows).
  char* Reserve(size_t want);
  size_t room() const { return capacity_ - end_; }
  void Commit(size_t n) { end_ += n; }
  // Frees a block grown for a large body once it is empty.
  void ShrinkIfIdle(size_t keep);

 private:
  std::unique_ptr<char[]> data_;
  size_t capacity_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
};

class Connection {
 public:
  Connection(ConnectionLoop& loop, const ConnectionContext& context, uint64_t id, int fd);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // epoll reported `events` (EPOLLIN, EPOLLOUT, ...) on the socket.
  void OnEvents(uint32_t events);
  // The router's answer to request `sequence`; ignored unless it is the one
  // being waited for (a late answer to an abandoned request is dropped).
  void OnAnswer(uint64_t sequence, HttpResponse response);
  // Writes an answer whose write was deferred (ConnectionLoop::DeferWrite).
  void WriteDeferred();
  // Closes the connection if its current step is past its deadline.
  void CheckDeadline(int64_t now_ms);
  bool closed() const { return state_ == State::kClosed; }
  // A request admitted on this connection is being read, routed or
  // answered (an error answer, after which the connection closes, is not
  // waited for).
  bool busy() const {
    return state_ == State::kBody || state_ == State::kUpload || state_ == State::kRouting ||
           (state_ == State::kWriting && !close_after_write_);
  }

 private:
  enum class State { kHead, kBody, kUpload, kRouting, kWriting, kLinger, kClosed };

  void Drive();
  bool Step();  // one step; false when it must wait for an event
  bool ReadHead();
  bool HeadMayBeComplete(size_t scan_from) const;
  bool StartRequest();
  void StartUpload();
  bool FinishUpload();
  bool ReadBody();
  bool ReadUpload();
  bool Dispatch();
  bool Fill(size_t chunk);
  bool Flush();
  bool AfterWrite();
  bool Discard();
  bool Reject(HttpResponse response);
  bool Reject(const Status& status) { return Reject(HttpResponse::Error(status)); }
  void PrepareAnswer(HttpResponse response);
  void SendContinueIfAsked();
  void SetDeadline(int64_t from_now_ms);
  void RemoveUpload();
  void CloseFile();
  void Close();

  ConnectionLoop& loop_;
  const ConnectionContext& context_;
  const uint64_t id_;
  int fd_;
  State state_ = State::kHead;
  bool in_drive_ = false;
  bool write_now_ = false;      // inside WriteDeferred
  bool may_read_ = true;        // the socket may have unread bytes
  bool peer_shut_write_ = false;  // EPOLLRDHUP seen: reads end in EOF
  size_t head_scanned_ = 0;     // bytes of an incomplete head already looked at
  int64_t deadline_ms_ = 0;     // 0: none
  uint64_t sequence_ = 0;       // requests routed on this connection

  InputBuffer in_;
  RequestHead head_;
  HttpRequest request_;
  bool keep_alive_ = true;
  bool head_method_ = false;    // HEAD: the answer has no body
  bool answer_gzip_ = false;    // the request accepts a gzip answer (Accept-Encoding)
  bool close_after_write_ = false;

  // The body being read.
  bool chunked_ = false;
  uint64_t body_left_ = 0;      // Content-Length bytes still to come
  uint64_t body_limit_ = 0;
  ChunkedDecoder decoder_;
  std::string scratch_;         // decoded chunk data on its way to the upload file
  int upload_fd_ = -1;
  uint64_t upload_bytes_ = 0;
  std::filesystem::path upload_path_;

  // The answer being written: out_head_, then out_body_, then the file.
  std::string out_head_;
  std::string out_body_;
  size_t out_sent_ = 0;         // bytes of head + body written
  int file_fd_ = -1;
  uint64_t file_left_ = 0;
};

}  // namespace orrery
