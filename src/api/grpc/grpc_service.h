// The Open Inference Protocol's gRPC service (proto/inference.proto,
// docs/grpc.md) and the standard health check (proto/health.proto), on
// gRPC's callback API: no thread per call; a handler decodes, calls the
// InferenceService and answers when it is done.
//
// Every RPC is decided as its REST route is (route_table.h): it is admitted
// by the same Router::CallerFor (the token from the `authorization`
// metadata, "Bearer <token>"; liveness open; public read where the operator
// allows it), then calls the same InferenceService operation, so tenants,
// not-found for invisible objects, deadlines, priorities, the cache,
// batching and pipelines are the same. A repeated `authorization` is
// INVALID_ARGUMENT; while the server stops every RPC but liveness and
// readiness is UNAVAILABLE. Errors are the REST message with the gRPC code
// of its HTTP status (GrpcCode).
//
// Ownership: borrows the Router, which must outlive the service.
// Thread-safety: handlers run concurrently on gRPC's threads.
#pragma once

#include <atomic>

#include <grpcpp/grpcpp.h>

#include "api/grpc_rpcs.h"
#include "api/router.h"
#include "core/status.h"
#include "health.grpc.pb.h"
#include "inference.grpc.pb.h"

namespace orrery {

// The gRPC status code for one of ours (kNotFound: NOT_FOUND, kTooLarge:
// RESOURCE_EXHAUSTED, kUnprocessable: FAILED_PRECONDITION, ...).
grpc::StatusCode GrpcCode(Code code);
grpc::Status ToGrpc(const Status& status);
// The call's gRPC deadline on the steady clock; nullopt when it has none.
std::optional<Deadline> GrpcDeadline(const grpc::ServerContextBase& context);

class GrpcInferenceService final : public inference::GRPCInferenceService::CallbackService {
 public:
  explicit GrpcInferenceService(const Router& router);

  using Context = grpc::CallbackServerContext;
  using Reactor = grpc::ServerUnaryReactor;

  Reactor* ServerLive(Context*, const inference::ServerLiveRequest*,
                      inference::ServerLiveResponse*) override;
  Reactor* ServerReady(Context*, const inference::ServerReadyRequest*,
                       inference::ServerReadyResponse*) override;
  Reactor* ModelReady(Context*, const inference::ModelReadyRequest*,
                      inference::ModelReadyResponse*) override;
  Reactor* ServerMetadata(Context*, const inference::ServerMetadataRequest*,
                          inference::ServerMetadataResponse*) override;
  Reactor* ModelMetadata(Context*, const inference::ModelMetadataRequest*,
                         inference::ModelMetadataResponse*) override;
  Reactor* ModelInfer(Context*, const inference::ModelInferRequest*,
                      inference::ModelInferResponse*) override;
  grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>*
  ModelStreamInfer(Context*) override;  // grpc_stream.cc
  Reactor* ModelConfig(Context*, const inference::ModelConfigRequest*,
                       inference::ModelConfigResponse*) override;
  Reactor* ModelStatistics(Context*, const inference::ModelStatisticsRequest*,
                           inference::ModelStatisticsResponse*) override;
  Reactor* RepositoryIndex(Context*, const inference::RepositoryIndexRequest*,
                           inference::RepositoryIndexResponse*) override;
  Reactor* RepositoryModelLoad(Context*, const inference::RepositoryModelLoadRequest*,
                               inference::RepositoryModelLoadResponse*) override;
  Reactor* RepositoryModelUnload(Context*, const inference::RepositoryModelUnloadRequest*,
                                 inference::RepositoryModelUnloadResponse*) override;

  // The caller of `rpc`, admitted as the REST route it stands for, from the
  // call's metadata; or why it may not call.
  Result<Caller> Admit(const grpc::ServerContextBase& context, const GrpcRpc& rpc) const;
  // One inference request (ModelInfer and each of a stream's): `done` gets
  // the answer, or the refusal as a Status.
  void Infer(const Caller& caller, const inference::ModelInferRequest& request,
             std::optional<Deadline> deadline,
             std::function<void(Status, inference::ModelInferResponse*)> done) const;

 private:
  const Router& router_;
  InferenceService& inference_;
};

// grpc.health.v1.Health/Check: SERVING for "" and the inference service
// while the server is ready, NOT_SERVING once it stops; NOT_FOUND for any
// other service name. No token, like REST liveness: probes hold no secrets.
class GrpcHealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  explicit GrpcHealthService(const std::atomic<bool>& stopping) : stopping_(stopping) {}
  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::health::v1::HealthCheckResponse* response) override;

 private:
  const std::atomic<bool>& stopping_;
};

}  // namespace orrery
