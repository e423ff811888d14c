#include "api/grpc/grpc_server.h"

#include <grpcpp/grpcpp.h>

#include "api/grpc/grpc_service.h"

namespace orrery {

struct GrpcServer::Services {
  explicit Services(const Router& router)
      : inference(router), health(router.hub().stopping) {}
  GrpcInferenceService inference;
  GrpcHealthService health;
  std::unique_ptr<grpc::Server> server;  // destroyed before the services
};

Result<std::unique_ptr<GrpcServer>> GrpcServer::Start(const Router& router,
                                                      const Options& options) {
  std::unique_ptr<GrpcServer> server(new GrpcServer());
  server->services_ = std::make_unique<Services>(router);
  bool ipv6 = options.host.find(':') != std::string::npos;
  std::string address = (ipv6 ? "[" + options.host + "]" : options.host) + ":" +
                        std::to_string(options.port);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &server->port_);
  builder.RegisterService(&server->services_->inference);
  builder.RegisterService(&server->services_->health);
  int limit = static_cast<int>(std::min<uint64_t>(options.max_message_bytes, INT32_MAX));
  builder.SetMaxReceiveMessageSize(limit);
  server->services_->server = builder.BuildAndStart();
  if (!server->services_->server || server->port_ == 0) {
    return Unavailable("cannot listen for gRPC on " + address);
  }
  return server;
}

void GrpcServer::Shutdown(std::chrono::seconds grace) {
  if (shut_down_) return;
  shut_down_ = true;
  services_->server->Shutdown(std::chrono::system_clock::now() + grace);
  services_->server->Wait();
}

GrpcServer::~GrpcServer() {
  if (services_ && services_->server) Shutdown(std::chrono::seconds(0));
}

}  // namespace orrery
