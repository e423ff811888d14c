// The HTTP/1.1 transport of `orrery serve`: a few event-loop threads on
// Linux epoll that read requests, hand them to the Router, and write the
// answers. Routes never see sockets (see http.h).
//
// Why not Boost.Beast: on one core Beast's Asio machinery (a composed
// operation, an executor hop and a handler allocation per step) cost as much
// CPU per request as the whole request path of nginx; the inference path
// has to be within about 2x of nginx, so the transport is a plain
// edge-triggered epoll loop: one read and one write system call per
// request when the client keeps up, no per-request timers.
//
// Behaviour (tests/e2e/test_http_transport.py):
// - keep-alive and pipelining (answers in request order; the next request
//   is parsed only after the previous one's answer is written);
// - request heads parsed strictly (http_parser.h): 400, 431 or 505 and the
//   connection is closed;
// - bodies by Content-Length or chunked, bounded before they are read:
//   package uploads stream into a file under the data directory's tmp/ and
//   are authenticated from the head before a body byte is read; other
//   bodies are held in memory under max_infer_bytes (inference) or
//   max_json_bytes (413 beyond); "Expect: 100-continue" is answered;
// - after an error answer the connection stops reading requests and closes
//   (lingering briefly so the client reads the answer, not a reset);
// - a head must arrive within 60 s (also the keep-alive idle time), a body
//   or the writing of an answer within 15 minutes; checked once a second;
// - Drain() begins a graceful stop: requests already admitted (their head
//   had been read; a request pipelined behind another is read only after
//   that one's answer) finish, those read later get 503 (liveness and
//   readiness are still answered; readiness says not ready), every answer
//   closes its connection, and Run() returns once no admitted request is
//   left or options.shutdown_timeout_s passed.
//
// Ownership: borrows the Router, the ServerOptions and the stopping flag
// (they outlive Run).
// Thread-safety: Run() once, from one thread; Drain() and Stop() from any
// thread or a signal handler (they only set flags and write to eventfds).
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "api/host_allowlist.h"
#include "api/router.h"
#include "api/server.h"
#include "core/status.h"

namespace orrery {

class EventLoop;

class HttpTransport {
 public:
  // Binds options.host:options.port (0 = a free port) and prepares
  // options.threads loops; nothing runs until Run(). Drain() sets `stopping`
  // (the router's readiness reads it too).
  static Result<std::unique_ptr<HttpTransport>> Create(const Router& router,
                                                       const ServerOptions& options,
                                                       std::filesystem::path temp_root,
                                                       std::atomic<bool>& stopping);
  ~HttpTransport();

  uint16_t port() const { return port_; }
  // The Host names requests may carry ("any", or a list), for the log.
  std::string AllowedHosts() const { return hosts_->Describe(); }

  // Serves on options.threads threads (this one included) until Stop(), or
  // until a Drain() is over. Returns how many admitted requests were cut off
  // unanswered (by Stop() or the shutdown timeout).
  size_t Run();
  // Async-signal-safe: begins the graceful stop (see above).
  void Drain();
  // Async-signal-safe: asks every loop to stop now; Run() returns once they have.
  void Stop();

 private:
  HttpTransport() = default;

  void NudgeLoops();  // async-signal-safe

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool>* stopping_ = nullptr;
  std::unique_ptr<HostAllowList> hosts_;  // the loops' connections point at it
  std::unique_ptr<std::atomic<int>> busy_loops_;  // while stopping: loops not yet drained
  std::vector<std::shared_ptr<EventLoop>> loops_;
};

}  // namespace orrery
