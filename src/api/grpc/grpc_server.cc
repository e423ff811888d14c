#include "api/grpc/grpc_server.h"

#include <thread>
#include <vector>

#include <absl/synchronization/mutex.h>
#include <grpcpp/grpcpp.h>

#include "api/grpc/grpc_service.h"

namespace orrery {

struct GrpcServer::Services {
  explicit Services(const Router& router)
      : inference(router), health(router.hub().stopping) {}
  GrpcInferenceService inference;
  GrpcHealthService health;
  GrpcInferenceService::AsyncService inference_async;
  grpc::health::v1::Health::AsyncService health_async;
  CallCount calls;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues;
  std::vector<std::thread> threads;      // one per queue
  std::unique_ptr<grpc::Server> server;  // destroyed before the services
};

namespace {

// A queue's thread: runs each completed operation's tag until the queue
// has shut down and is empty.
void Serve(grpc::ServerCompletionQueue* queue) {
  void* tag = nullptr;
  bool ok = false;
  while (queue->Next(&tag, &ok)) static_cast<GrpcTag*>(tag)->Proceed(ok);
}

}  // namespace

Result<std::unique_ptr<GrpcServer>> GrpcServer::Start(const Router& router,
                                                      const Options& options) {
  std::unique_ptr<GrpcServer> server(new GrpcServer());
  Services& services = *(server->services_ = std::make_unique<Services>(router));
  bool ipv6 = options.host.find(':') != std::string::npos;
  std::string address = (ipv6 ? "[" + options.host + "]" : options.host) + ":" +
                        std::to_string(options.port);
  // gRPC's locks are absl's, which in Debian's build track every lock
  // order to report deadlocks: a few per cent of each call's time.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &server->port_);
  builder.RegisterService(&services.inference_async);
  builder.RegisterService(&services.health_async);
  int limit = static_cast<int>(std::min<uint64_t>(options.max_message_bytes, INT32_MAX));
  builder.SetMaxReceiveMessageSize(limit);
  for (int i = 0; i < std::max(1, options.threads); ++i) {
    services.queues.push_back(builder.AddCompletionQueue());
  }
  services.inference.Bind(services.inference_async);
  services.health.Bind(services.health_async);
  services.server = builder.BuildAndStart();
  if (!services.server || server->port_ == 0) {
    if (services.server) services.server->Shutdown();
    for (auto& queue : services.queues) {
      queue->Shutdown();
      Serve(queue.get());  // drains it: a queue is destroyed empty
    }
    services.server.reset();
    return Unavailable("cannot listen for gRPC on " + address);
  }
  for (auto& queue : services.queues) {
    GrpcQueue serving{queue.get(), &services.calls};
    services.inference.Listen(serving);
    services.health.Listen(serving);
    services.threads.emplace_back(Serve, queue.get());
  }
  return server;
}

// The order matters: the server stops taking calls and cancels those left
// at the deadline; the calls a handler still holds are answered (their
// Finish needs the queues); then the queues close and their threads drain
// them.
void GrpcServer::Shutdown(std::chrono::seconds grace) {
  if (shut_down_) return;
  shut_down_ = true;
  services_->server->Shutdown(std::chrono::system_clock::now() + grace);
  services_->calls.WaitIdle();
  for (auto& queue : services_->queues) queue->Shutdown();
  for (std::thread& thread : services_->threads) thread.join();
}

GrpcServer::~GrpcServer() {
  if (services_ && services_->server) Shutdown(std::chrono::seconds(0));
}

}  // namespace orrery
