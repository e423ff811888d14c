#include "api/grpc/grpc_service.h"

#include <google/protobuf/util/json_util.h>

#include "api/grpc/grpc_tensors.h"

namespace orrery {
namespace {

using Done = GrpcInferenceService::Done;

// The InferenceService's JSON answer (REST's body) as the RPC's message:
// the proto's field names are the protocol's, so the same object fills it;
// fields the proto does not carry are left out.
Status FromJson(const nlohmann::json& json, google::protobuf::Message* message) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto parsed = google::protobuf::util::JsonStringToMessage(json.dump(), message, options);
  if (!parsed.ok()) return Internal("cannot encode the answer: " + std::string(parsed.message()));
  return Status::Ok();
}

}  // namespace

std::optional<Deadline> GrpcDeadline(const grpc::ServerContextBase& context) {
  auto deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return std::nullopt;
  auto left = deadline - std::chrono::system_clock::now();
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(left);
}

grpc::StatusCode GrpcCode(Code code) {
  switch (code) {
    case Code::kOk: return grpc::StatusCode::OK;
    case Code::kInvalidArgument:
    case Code::kUnsupportedMediaType: return grpc::StatusCode::INVALID_ARGUMENT;
    case Code::kUnauthenticated: return grpc::StatusCode::UNAUTHENTICATED;
    case Code::kPermissionDenied: return grpc::StatusCode::PERMISSION_DENIED;
    case Code::kNotFound: return grpc::StatusCode::NOT_FOUND;
    case Code::kConflict: return grpc::StatusCode::ALREADY_EXISTS;
    case Code::kGone:
    case Code::kUnprocessable: return grpc::StatusCode::FAILED_PRECONDITION;
    case Code::kTooLarge:
    case Code::kInsufficientStorage: return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case Code::kUnavailable: return grpc::StatusCode::UNAVAILABLE;
    case Code::kInternal: return grpc::StatusCode::INTERNAL;
    case Code::kDataLoss: return grpc::StatusCode::DATA_LOSS;
  }
  return grpc::StatusCode::UNKNOWN;
}

grpc::Status ToGrpc(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(GrpcCode(status.code()), status.message());
}

GrpcInferenceService::GrpcInferenceService(const Router& router)
    : router_(router), inference_(router.hub().inference) {}

template <typename Request, typename Response>
void GrpcInferenceService::Add(
    typename UnaryCall<Request, Response>::Requester request,
    void (GrpcInferenceService::*handler)(grpc::ServerContext&, const Request&, Response*, Done)
        const) {
  using Call = UnaryCall<Request, Response>;
  auto rpc = std::make_shared<typename Call::Rpc>();
  rpc->request = std::move(request);
  rpc->handle = [this, handler](grpc::ServerContext& context, const Request& in, Response* out,
                                Done done) { (this->*handler)(context, in, out, std::move(done)); };
  listeners_.push_back([rpc](GrpcQueue queue) { Call::Listen(rpc, queue); });
}

// Each Request... method of the generated AsyncService, called with the
// queue as both the new call's queue and the one that announces it.
#define ORRERY_GRPC_REQUESTER(method)                                                 \
  [&async](grpc::ServerContext* context, auto* request, auto* writer,                \
           grpc::ServerCompletionQueue* cq, void* tag) {                             \
    async.Request##method(context, request, writer, cq, cq, tag);                    \
  }

void GrpcInferenceService::Bind(AsyncService& async) {
  using namespace inference;
  async_ = &async;
  Add<ServerLiveRequest, ServerLiveResponse>(ORRERY_GRPC_REQUESTER(ServerLive),
                                             &GrpcInferenceService::ServerLive);
  Add<ServerReadyRequest, ServerReadyResponse>(ORRERY_GRPC_REQUESTER(ServerReady),
                                               &GrpcInferenceService::ServerReady);
  Add<ModelReadyRequest, ModelReadyResponse>(ORRERY_GRPC_REQUESTER(ModelReady),
                                             &GrpcInferenceService::ModelReady);
  Add<ServerMetadataRequest, ServerMetadataResponse>(ORRERY_GRPC_REQUESTER(ServerMetadata),
                                                     &GrpcInferenceService::ServerMetadata);
  Add<ModelMetadataRequest, ModelMetadataResponse>(ORRERY_GRPC_REQUESTER(ModelMetadata),
                                                   &GrpcInferenceService::ModelMetadata);
  Add<ModelInferRequest, ModelInferResponse>(ORRERY_GRPC_REQUESTER(ModelInfer),
                                             &GrpcInferenceService::ModelInfer);
  Add<ModelConfigRequest, ModelConfigResponse>(ORRERY_GRPC_REQUESTER(ModelConfig),
                                               &GrpcInferenceService::ModelConfig);
  Add<ModelStatisticsRequest, ModelStatisticsResponse>(ORRERY_GRPC_REQUESTER(ModelStatistics),
                                                       &GrpcInferenceService::ModelStatistics);
  Add<RepositoryIndexRequest, RepositoryIndexResponse>(ORRERY_GRPC_REQUESTER(RepositoryIndex),
                                                       &GrpcInferenceService::RepositoryIndex);
  Add<RepositoryModelLoadRequest, RepositoryModelLoadResponse>(
      ORRERY_GRPC_REQUESTER(RepositoryModelLoad), &GrpcInferenceService::RepositoryModelLoad);
  Add<RepositoryModelUnloadRequest, RepositoryModelUnloadResponse>(
      ORRERY_GRPC_REQUESTER(RepositoryModelUnload), &GrpcInferenceService::RepositoryModelUnload);
}

void GrpcInferenceService::Listen(GrpcQueue queue) const {
  for (const auto& listen : listeners_) listen(queue);
  ListenForStreams(*this, *async_, queue);
}

Result<Caller> GrpcInferenceService::Admit(const grpc::ServerContextBase& context,
                                           const GrpcRpc& rpc) const {
  const Route* route = FindRoute(rpc.method, rpc.pattern);
  if (route == nullptr) return Internal("no route for " + std::string(rpc.name));
  if (router_.hub().stopping.load() && !AnswersWhileStopping(route)) {
    return Unavailable("the server is stopping");
  }
  auto [first, end] = context.client_metadata().equal_range("authorization");
  std::string_view authorization;
  if (first != end) {
    if (std::next(first) != end) {
      return InvalidArgument("authorization metadata sent more than once");
    }
    authorization = std::string_view(first->second.data(), first->second.size());
  }
  return router_.CallerFor(route, authorization);
}

void GrpcInferenceService::ServerLive(grpc::ServerContext& context,
                                      const inference::ServerLiveRequest&,
                                      inference::ServerLiveResponse* response, Done done) const {
  Result<Caller> caller = Admit(context, kServerLiveRpc);
  if (!caller.ok()) return done(ToGrpc(caller.status()));
  response->set_live(true);
  done(grpc::Status::OK);
}

void GrpcInferenceService::ServerReady(grpc::ServerContext& context,
                                       const inference::ServerReadyRequest&,
                                       inference::ServerReadyResponse* response, Done done) const {
  Result<Caller> caller = Admit(context, kServerReadyRpc);
  if (!caller.ok()) return done(ToGrpc(caller.status()));
  response->set_ready(!router_.hub().stopping.load());
  done(grpc::Status::OK);
}

void GrpcInferenceService::ModelReady(grpc::ServerContext& context,
                                      const inference::ModelReadyRequest& request,
                                      inference::ModelReadyResponse* response, Done done) const {
  Result<Caller> caller = Admit(context, kModelReadyRpc);
  if (!caller.ok()) return done(ToGrpc(caller.status()));
  Result<Readiness> readiness =
      inference_.ModelReady(*caller, ModelTarget{request.name(), request.version()});
  if (!readiness.ok()) return done(ToGrpc(readiness.status()));
  response->set_ready(readiness->ready);
  done(grpc::Status::OK);
}

void GrpcInferenceService::ServerMetadata(grpc::ServerContext& context,
                                          const inference::ServerMetadataRequest&,
                                          inference::ServerMetadataResponse* response,
                                          Done done) const {
  Result<Caller> caller = Admit(context, kServerMetadataRpc);
  if (!caller.ok()) return done(ToGrpc(caller.status()));
  done(ToGrpc(FromJson(InferenceService::ServerMetadata(), response)));
}

void GrpcInferenceService::ModelMetadata(grpc::ServerContext& context,
                                         const inference::ModelMetadataRequest& request,
                                         inference::ModelMetadataResponse* response,
                                         Done done) const {
  Result<Caller> caller = Admit(context, kModelMetadataRpc);
  if (!caller.ok()) return done(ToGrpc(caller.status()));
  Result<nlohmann::json> metadata =
      inference_.ModelMetadata(*caller, ModelTarget{request.name(), request.version()});
  if (!metadata.ok()) return done(ToGrpc(metadata.status()));
  done(ToGrpc(FromJson(*metadata, response)));
}

void GrpcInferenceService::Infer(
    const Caller& caller, const inference::ModelInferRequest& request,
    std::optional<Deadline> deadline,
    std::function<void(Status, inference::ModelInferResponse*)> done) const {
  RequestDecoder decode = [&request](const Manifest&) { return DecodeGrpcRequest(request); };
  InferOptions options;
  options.deadline = deadline;
  options.transport = Transport::kGrpc;
  inference_.Infer(caller, ModelTarget{request.model_name(), request.model_version()},
                   std::move(decode), options, [done = std::move(done)](InferAnswer answer) {
                     if (!answer.status.ok()) return done(answer.status, nullptr);
                     inference::ModelInferResponse response;
                     EncodeGrpcResponse(answer.response, &response);
                     done(Status::Ok(), &response);
                   });
}

void GrpcInferenceService::ModelInfer(grpc::ServerContext& context,
                                      const inference::ModelInferRequest& request,
                                      inference::ModelInferResponse* response, Done done) const {
  Result<Caller> caller = Admit(context, kModelInferRpc);
  if (!caller.ok()) return done(ToGrpc(caller.status()));
  Infer(*caller, request, GrpcDeadline(context),
        [response, done = std::move(done)](Status status, inference::ModelInferResponse* answer) {
          if (answer != nullptr) response->Swap(answer);
          done(ToGrpc(status));
        });
}

void GrpcInferenceService::ModelConfig(grpc::ServerContext& context,
                                       const inference::ModelConfigRequest& request,
                                       inference::ModelConfigResponse* response, Done done) const {
  Result<Caller> caller = Admit(context, kModelConfigRpc);
  if (!caller.ok()) return done(ToGrpc(caller.status()));
  Result<nlohmann::json> config =
      inference_.ModelConfig(*caller, ModelTarget{request.name(), request.version()});
  if (!config.ok()) return done(ToGrpc(config.status()));
  done(ToGrpc(FromJson(*config, response->mutable_config())));
}

void GrpcInferenceService::ModelStatistics(grpc::ServerContext& context,
                                           const inference::ModelStatisticsRequest& request,
                                           inference::ModelStatisticsResponse* response,
                                           Done done) const {
  bool all = request.name().empty();
  Result<Caller> caller = Admit(context, all ? kAllStatisticsRpc : kModelStatisticsRpc);
  if (!caller.ok()) return done(ToGrpc(caller.status()));
  std::optional<ModelTarget> target;
  if (!all) target = ModelTarget{request.name(), request.version()};
  Result<nlohmann::json> stats = inference_.ModelStats(*caller, target);
  if (!stats.ok()) return done(ToGrpc(stats.status()));
  done(ToGrpc(FromJson(*stats, response)));
}

void GrpcInferenceService::RepositoryIndex(grpc::ServerContext& context,
                                           const inference::RepositoryIndexRequest& request,
                                           inference::RepositoryIndexResponse* response,
                                           Done done) const {
  Result<Caller> caller = Admit(context, kRepositoryIndexRpc);
  if (!caller.ok()) return done(ToGrpc(caller.status()));
  Result<nlohmann::json> index = inference_.RepositoryIndex(*caller, request.ready());
  if (!index.ok()) return done(ToGrpc(index.status()));
  done(ToGrpc(FromJson({{"models", *index}}, response)));
}

void GrpcInferenceService::RepositoryModelLoad(grpc::ServerContext& context,
                                               const inference::RepositoryModelLoadRequest& request,
                                               inference::RepositoryModelLoadResponse*,
                                               Done done) const {
  Result<Caller> caller = Admit(context, kRepositoryModelLoadRpc);
  if (!caller.ok()) return done(ToGrpc(caller.status()));
  inference_.Load(*caller, ModelTarget{request.model_name(), ""},
                  [done = std::move(done)](Result<nlohmann::json> loaded, bool) {
                    done(ToGrpc(loaded.status()));
                  });
}

void GrpcInferenceService::RepositoryModelUnload(
    grpc::ServerContext& context, const inference::RepositoryModelUnloadRequest& request,
    inference::RepositoryModelUnloadResponse*, Done done) const {
  Result<Caller> caller = Admit(context, kRepositoryModelUnloadRpc);
  if (!caller.ok()) return done(ToGrpc(caller.status()));
  Result<int> unloaded = inference_.Unload(*caller, ModelTarget{request.model_name(), ""});
  done(ToGrpc(unloaded.status()));
}

void GrpcHealthService::Bind(grpc::health::v1::Health::AsyncService& async) {
  using Call = UnaryCall<grpc::health::v1::HealthCheckRequest, grpc::health::v1::HealthCheckResponse>;
  auto rpc = std::make_shared<Call::Rpc>();
  rpc->request = ORRERY_GRPC_REQUESTER(Check);
  rpc->handle = [this](grpc::ServerContext& context, const auto& request, auto* response,
                       Done done) { Check(context, request, response, std::move(done)); };
  listen_ = [rpc](GrpcQueue queue) { Call::Listen(rpc, queue); };
}

void GrpcHealthService::Listen(GrpcQueue queue) const { listen_(queue); }

void GrpcHealthService::Check(grpc::ServerContext&,
                              const grpc::health::v1::HealthCheckRequest& request,
                              grpc::health::v1::HealthCheckResponse* response,
                              std::function<void(grpc::Status)> done) const {
  const std::string& service = request.service();
  if (!service.empty() && service != "inference.GRPCInferenceService") {
    return done(grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service '" + service + "'"));
  }
  response->set_status(stopping_.load() ? grpc::health::v1::HealthCheckResponse::NOT_SERVING
                                        : grpc::health::v1::HealthCheckResponse::SERVING);
  done(grpc::Status::OK);
}

}  // namespace orrery
