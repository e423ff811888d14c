// The Open Inference Protocol's gRPC service (proto/inference.proto,
// docs/grpc.md) and the standard health check (proto/health.proto), on
// gRPC's asynchronous API (grpc_call.h): no thread per call; a handler
// decodes, calls the InferenceService and answers when it is done.
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
// Thread-safety: handlers run concurrently on the completion queues' threads.
#pragma once

#include <atomic>

#include <grpcpp/grpcpp.h>

#include "api/grpc/grpc_call.h"
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

class GrpcInferenceService final {
 public:
  using AsyncService = inference::GRPCInferenceService::AsyncService;
  using Done = std::function<void(grpc::Status)>;

  explicit GrpcInferenceService(const Router& router);

  // Registers every RPC's handler with `async`; once, before the server starts.
  void Bind(AsyncService& async);
  // Waits for the first call of every RPC on `queue`; once per queue.
  void Listen(GrpcQueue queue) const;

  // The unary RPCs: each fills the response and calls `done` once.
  void ServerLive(grpc::ServerContext&, const inference::ServerLiveRequest&,
                  inference::ServerLiveResponse*, Done) const;
  void ServerReady(grpc::ServerContext&, const inference::ServerReadyRequest&,
                   inference::ServerReadyResponse*, Done) const;
  void ModelReady(grpc::ServerContext&, const inference::ModelReadyRequest&,
                  inference::ModelReadyResponse*, Done) const;
  void ServerMetadata(grpc::ServerContext&, const inference::ServerMetadataRequest&,
                      inference::ServerMetadataResponse*, Done) const;
  void ModelMetadata(grpc::ServerContext&, const inference::ModelMetadataRequest&,
                     inference::ModelMetadataResponse*, Done) const;
  void ModelInfer(grpc::ServerContext&, const inference::ModelInferRequest&,
                  inference::ModelInferResponse*, Done) const;
  void ModelConfig(grpc::ServerContext&, const inference::ModelConfigRequest&,
                   inference::ModelConfigResponse*, Done) const;
  void ModelStatistics(grpc::ServerContext&, const inference::ModelStatisticsRequest&,
                       inference::ModelStatisticsResponse*, Done) const;
  void RepositoryIndex(grpc::ServerContext&, const inference::RepositoryIndexRequest&,
                       inference::RepositoryIndexResponse*, Done) const;
  void RepositoryModelLoad(grpc::ServerContext&, const inference::RepositoryModelLoadRequest&,
                           inference::RepositoryModelLoadResponse*, Done) const;
  void RepositoryModelUnload(grpc::ServerContext&, const inference::RepositoryModelUnloadRequest&,
                             inference::RepositoryModelUnloadResponse*, Done) const;

  // The caller of `rpc`, admitted as the REST route it stands for, from the
  // call's metadata; or why it may not call.
  Result<Caller> Admit(const grpc::ServerContextBase& context, const GrpcRpc& rpc) const;
  // One inference request (ModelInfer and each of a stream's): `done` gets
  // the answer, or the refusal as a Status.
  void Infer(const Caller& caller, const inference::ModelInferRequest& request,
             std::optional<Deadline> deadline,
             std::function<void(Status, inference::ModelInferResponse*)> done) const;

 private:
  // Registers one unary RPC: `request` is the AsyncService's Request...
  // method for it, `handler` one of the methods above.
  template <typename Request, typename Response>
  void Add(typename UnaryCall<Request, Response>::Requester request,
           void (GrpcInferenceService::*handler)(grpc::ServerContext&, const Request&, Response*,
                                                 Done) const);

  const Router& router_;
  InferenceService& inference_;
  std::vector<std::function<void(GrpcQueue)>> listeners_;  // one per unary RPC, set by Bind
  AsyncService* async_ = nullptr;                           // set by Bind (streams)
};

// ModelStreamInfer (grpc_stream.cc): waits for the next stream on `queue`.
void ListenForStreams(const GrpcInferenceService& service,
                      GrpcInferenceService::AsyncService& async, GrpcQueue queue);

// grpc.health.v1.Health/Check: SERVING for "" and the inference service
// while the server is ready, NOT_SERVING once it stops; NOT_FOUND for any
// other service name. No token, like REST liveness: probes hold no secrets.
class GrpcHealthService final {
 public:
  explicit GrpcHealthService(const std::atomic<bool>& stopping) : stopping_(stopping) {}
  // As GrpcInferenceService's.
  void Bind(grpc::health::v1::Health::AsyncService& async);
  void Listen(GrpcQueue queue) const;

  void Check(grpc::ServerContext&, const grpc::health::v1::HealthCheckRequest& request,
             grpc::health::v1::HealthCheckResponse* response,
             std::function<void(grpc::Status)> done) const;

 private:
  const std::atomic<bool>& stopping_;
  std::function<void(GrpcQueue)> listen_;  // set by Bind
};

}  // namespace orrery
