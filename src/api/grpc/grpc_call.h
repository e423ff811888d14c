// The calls of the gRPC listener on gRPC's asynchronous API (grpc_server.h).
//
// Why not the callback API: on it gRPC polls with two threads of its own
// whatever the server's core count, and on one core they hand every call to
// each other (about two context switches per call, and half the throughput
// of the HTTP transport); here each completion queue has exactly one thread
// of ours, which polls the sockets and runs the handler of what arrives, as
// the HTTP transport's event loops do.
//
// A GrpcTag is what a completion queue hands back when an operation ends;
// its Proceed runs on that queue's thread. A UnaryCall is one unary RPC:
// requested from the queue, handled when it arrives (the next one is
// requested at once), answered when the handler's `done` runs (on any
// thread), deleted when the answer has gone out.
//
// CallCount tracks the calls a handler holds (arrived, not yet answered)
// so that shutdown waits for their answers before the queues close.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>

#include <grpcpp/grpcpp.h>

namespace orrery {

class GrpcTag {
 public:
  virtual ~GrpcTag() = default;
  // `ok`: the operation succeeded (false: cancelled, or the server stops).
  virtual void Proceed(bool ok) = 0;
};

// Calls between their arrival and their answer having gone out.
class CallCount {
 public:
  void Add() {
    std::lock_guard lock(mutex_);
    ++calls_;
  }
  void Done() {
    std::lock_guard lock(mutex_);
    if (--calls_ == 0) idle_.notify_all();
  }
  void WaitIdle() {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [&] { return calls_ == 0; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable idle_;
  int calls_ = 0;  // GUARDED_BY(mutex_)
};

// What a completion queue serves: its queue and the server's call count.
struct GrpcQueue {
  grpc::ServerCompletionQueue* cq;
  CallCount* calls;
};

template <typename Request, typename Response>
class UnaryCall final : public GrpcTag {
 public:
  using Writer = grpc::ServerAsyncResponseWriter<Response>;
  // Asks the service for the next call of this RPC (its Request... method).
  using Requester = std::function<void(grpc::ServerContext*, Request*, Writer*,
                                       grpc::ServerCompletionQueue*, void* tag)>;
  // Fills the response and calls `done` exactly once, on any thread.
  using Handler = std::function<void(grpc::ServerContext& context, const Request& request,
                                     Response* response, std::function<void(grpc::Status)> done)>;
  struct Rpc {
    Requester request;
    Handler handle;
  };

  // Requests the next call of `rpc` on `queue`.
  static void Listen(std::shared_ptr<const Rpc> rpc, GrpcQueue queue) {
    auto* call = new UnaryCall(std::move(rpc), queue);
    call->rpc_->request(&call->context_, &call->request_, &call->writer_, queue.cq, call);
  }

  void Proceed(bool ok) override {
    if (answered_ || !ok) {  // the answer went out, or the server stops
      if (answered_) queue_.calls->Done();
      delete this;
      return;
    }
    queue_.calls->Add();
    Listen(rpc_, queue_);
    rpc_->handle(context_, request_, &response_, [this](grpc::Status status) {
      answered_ = true;
      if (status.ok()) {
        writer_.Finish(response_, status, this);
      } else {
        writer_.FinishWithError(status, this);
      }
    });
  }

 private:
  UnaryCall(std::shared_ptr<const Rpc> rpc, GrpcQueue queue)
      : rpc_(std::move(rpc)), queue_(queue), writer_(&context_) {}

  const std::shared_ptr<const Rpc> rpc_;
  const GrpcQueue queue_;
  grpc::ServerContext context_;
  Request request_;
  Response response_;
  Writer writer_;
  bool answered_ = false;  // Finish was called: the next Proceed is its end
};

}  // namespace orrery
