#include "api/grpc/grpc_service.h"

#include <google/protobuf/util/json_util.h>

#include "api/grpc/grpc_tensors.h"

namespace orrery {
namespace {

using Context = grpc::CallbackServerContext;
using Reactor = grpc::ServerUnaryReactor;

Reactor* Answer(Context* context, const grpc::Status& status) {
  Reactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

Reactor* Answer(Context* context, const Status& status) { return Answer(context, ToGrpc(status)); }

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

grpc::ServerUnaryReactor* GrpcInferenceService::ServerLive(Context* context, const inference::ServerLiveRequest*,
                                          inference::ServerLiveResponse* response) {
  Result<Caller> caller = Admit(*context, kServerLiveRpc);
  if (!caller.ok()) return Answer(context, caller.status());
  response->set_live(true);
  return Answer(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* GrpcInferenceService::ServerReady(Context* context, const inference::ServerReadyRequest*,
                                           inference::ServerReadyResponse* response) {
  Result<Caller> caller = Admit(*context, kServerReadyRpc);
  if (!caller.ok()) return Answer(context, caller.status());
  response->set_ready(!router_.hub().stopping.load());
  return Answer(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* GrpcInferenceService::ModelReady(Context* context,
                                          const inference::ModelReadyRequest* request,
                                          inference::ModelReadyResponse* response) {
  Result<Caller> caller = Admit(*context, kModelReadyRpc);
  if (!caller.ok()) return Answer(context, caller.status());
  Result<Readiness> readiness =
      inference_.ModelReady(*caller, ModelTarget{request->name(), request->version()});
  if (!readiness.ok()) return Answer(context, readiness.status());
  response->set_ready(readiness->ready);
  return Answer(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* GrpcInferenceService::ServerMetadata(Context* context,
                                              const inference::ServerMetadataRequest*,
                                              inference::ServerMetadataResponse* response) {
  Result<Caller> caller = Admit(*context, kServerMetadataRpc);
  if (!caller.ok()) return Answer(context, caller.status());
  return Answer(context, FromJson(InferenceService::ServerMetadata(), response));
}

grpc::ServerUnaryReactor* GrpcInferenceService::ModelMetadata(Context* context,
                                             const inference::ModelMetadataRequest* request,
                                             inference::ModelMetadataResponse* response) {
  Result<Caller> caller = Admit(*context, kModelMetadataRpc);
  if (!caller.ok()) return Answer(context, caller.status());
  Result<nlohmann::json> metadata =
      inference_.ModelMetadata(*caller, ModelTarget{request->name(), request->version()});
  if (!metadata.ok()) return Answer(context, metadata.status());
  return Answer(context, FromJson(*metadata, response));
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

grpc::ServerUnaryReactor* GrpcInferenceService::ModelInfer(Context* context,
                                          const inference::ModelInferRequest* request,
                                          inference::ModelInferResponse* response) {
  Result<Caller> caller = Admit(*context, kModelInferRpc);
  if (!caller.ok()) return Answer(context, caller.status());
  Reactor* reactor = context->DefaultReactor();
  Infer(*caller, *request, GrpcDeadline(*context),
        [reactor, response](Status status, inference::ModelInferResponse* answer) {
          if (answer != nullptr) response->Swap(answer);
          reactor->Finish(ToGrpc(status));
        });
  return reactor;
}

grpc::ServerUnaryReactor* GrpcInferenceService::ModelConfig(Context* context,
                                           const inference::ModelConfigRequest* request,
                                           inference::ModelConfigResponse* response) {
  Result<Caller> caller = Admit(*context, kModelConfigRpc);
  if (!caller.ok()) return Answer(context, caller.status());
  Result<nlohmann::json> config =
      inference_.ModelConfig(*caller, ModelTarget{request->name(), request->version()});
  if (!config.ok()) return Answer(context, config.status());
  return Answer(context, FromJson(*config, response->mutable_config()));
}

grpc::ServerUnaryReactor* GrpcInferenceService::ModelStatistics(Context* context,
                                               const inference::ModelStatisticsRequest* request,
                                               inference::ModelStatisticsResponse* response) {
  bool all = request->name().empty();
  Result<Caller> caller =
      Admit(*context, all ? kAllStatisticsRpc : kModelStatisticsRpc);
  if (!caller.ok()) return Answer(context, caller.status());
  std::optional<ModelTarget> target;
  if (!all) target = ModelTarget{request->name(), request->version()};
  Result<nlohmann::json> stats = inference_.ModelStats(*caller, target);
  if (!stats.ok()) return Answer(context, stats.status());
  return Answer(context, FromJson(*stats, response));
}

grpc::ServerUnaryReactor* GrpcInferenceService::RepositoryIndex(Context* context,
                                               const inference::RepositoryIndexRequest* request,
                                               inference::RepositoryIndexResponse* response) {
  Result<Caller> caller = Admit(*context, kRepositoryIndexRpc);
  if (!caller.ok()) return Answer(context, caller.status());
  Result<nlohmann::json> index = inference_.RepositoryIndex(*caller, request->ready());
  if (!index.ok()) return Answer(context, index.status());
  return Answer(context, FromJson({{"models", *index}}, response));
}

grpc::ServerUnaryReactor* GrpcInferenceService::RepositoryModelLoad(
    Context* context, const inference::RepositoryModelLoadRequest* request,
    inference::RepositoryModelLoadResponse*) {
  Result<Caller> caller = Admit(*context, kRepositoryModelLoadRpc);
  if (!caller.ok()) return Answer(context, caller.status());
  Reactor* reactor = context->DefaultReactor();
  inference_.Load(*caller, ModelTarget{request->model_name(), ""},
                  [reactor](Result<nlohmann::json> loaded, bool) {
                    reactor->Finish(ToGrpc(loaded.status()));
                  });
  return reactor;
}

grpc::ServerUnaryReactor* GrpcInferenceService::RepositoryModelUnload(
    Context* context, const inference::RepositoryModelUnloadRequest* request,
    inference::RepositoryModelUnloadResponse*) {
  Result<Caller> caller = Admit(*context, kRepositoryModelUnloadRpc);
  if (!caller.ok()) return Answer(context, caller.status());
  Result<int> unloaded = inference_.Unload(*caller, ModelTarget{request->model_name(), ""});
  return Answer(context, unloaded.status());
}

grpc::ServerUnaryReactor* GrpcHealthService::Check(
    grpc::CallbackServerContext* context, const grpc::health::v1::HealthCheckRequest* request,
    grpc::health::v1::HealthCheckResponse* response) {
  const std::string& service = request->service();
  if (!service.empty() && service != "inference.GRPCInferenceService") {
    return Answer(context, grpc::Status(grpc::StatusCode::NOT_FOUND,
                                        "unknown service '" + service + "'"));
  }
  response->set_status(stopping_.load() ? grpc::health::v1::HealthCheckResponse::NOT_SERVING
                                        : grpc::health::v1::HealthCheckResponse::SERVING);
  return Answer(context, grpc::Status::OK);
}

}  // namespace orrery
