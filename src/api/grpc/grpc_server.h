// The gRPC listener of `orrery serve` (docs/grpc.md): the Open Inference
// Protocol's service and the standard health check on one port, beside the
// HTTP transport, over the same Router and InferenceService.
//
// Ownership: borrows the Router (must outlive the server); owns the
// grpc::Server, the services, the completion queues and their threads.
// Thread-safety: Shutdown from one thread.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "api/router.h"
#include "core/status.h"

namespace orrery {

class GrpcServer {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    int port = 7071;                          // 0 picks a free port
    uint64_t max_message_bytes = 64ull << 20;  // a larger request is RESOURCE_EXHAUSTED
    // Completion queues, each with one thread that polls the connections
    // given to it and runs their handlers (as many as the HTTP event loops).
    int threads = 1;
  };
  // Listening when it returns; kUnavailable when the address cannot be bound.
  static Result<std::unique_ptr<GrpcServer>> Start(const Router& router, const Options& options);
  ~GrpcServer();  // Shutdown(0) if not shut down

  int port() const { return port_; }
  // Stops accepting calls, lets those in flight finish for up to `grace`,
  // then cancels the rest; returns once every call has ended.
  void Shutdown(std::chrono::seconds grace);

  struct Services;

 private:
  GrpcServer() = default;
  std::unique_ptr<Services> services_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace orrery
