// The Open Inference Protocol routes other than inference itself: server
// and model metadata, readiness, statistics, the model-repository
// extension, worker logs and /metrics. Inference and verify are in
// routes_infer.cc and routes_verify.cc; the work is the InferenceService's.
#include "api/route_handlers.h"
#include "api/route_util.h"

namespace orrery {

HttpResponse ServerMetadata(const RouteCall&) {
  return HttpResponse::Json(200, InferenceService::ServerMetadata());
}

HttpResponse ServerReady(const RouteCall& call) {
  if (call.hub.stopping.load()) {
    return HttpResponse::Json(503,
                              {{"ready", false}, {"error", "not ready: the server is stopping"}});
  }
  return HttpResponse::Json(200, {{"ready", true}});
}

HttpResponse ModelMetadata(const RouteCall& call) {
  return Respond(call.hub.inference.ModelMetadata(call.caller, TargetFrom(call)));
}

HttpResponse ModelReady(const RouteCall& call) {
  ASSIGN_OR_ANSWER(Readiness readiness, call.hub.inference.ModelReady(call.caller, TargetFrom(call)));
  if (readiness.ready) return HttpResponse::Json(200, {{"name", readiness.key}, {"ready", true}});
  return HttpResponse::Json(503, {{"name", readiness.key},
                                  {"ready", false},
                                  {"error", "not ready: " + readiness.reason}});
}

HttpResponse ModelStats(const RouteCall& call) {
  std::optional<ModelTarget> target;
  if (call.request.params.Has("model")) target = TargetFrom(call);
  return Respond(call.hub.inference.ModelStats(call.caller, target));
}

// GET /v2/models/{model}[/versions/{v}]/config: Triton's model
// configuration as JSON, which Triton's clients and tools parse.
HttpResponse ModelConfig(const RouteCall& call) {
  return Respond(call.hub.inference.ModelConfig(call.caller, TargetFrom(call)));
}

HttpResponse RepositoryIndex(const RouteCall& call) {
  bool ready_only = false;
  if (!call.request.body.empty()) {
    ASSIGN_OR_ANSWER(nlohmann::json body, ParseJsonObject(call.request));
    auto ready = body.find("ready");
    if (ready != body.end()) {
      if (!ready->is_boolean()) return HttpResponse::Error(InvalidArgument("ready must be a bool"));
      ready_only = ready->get<bool>();
    }
  }
  return Respond(call.hub.inference.RepositoryIndex(call.caller, ready_only));
}

HttpResponse RepositoryUnload(const RouteCall& call) {
  ASSIGN_OR_ANSWER(int unloaded, call.hub.inference.Unload(call.caller, TargetFrom(call)));
  return HttpResponse::Json(200, {{"unloaded", unloaded}});
}

HttpResponse Metrics(const RouteCall& call) {
  HttpResponse response;
  response.content_type = "text/plain; version=0.0.4";
  std::string tenant = call.caller.IsHubAdmin() ? "" : call.caller.tenant;
  response.body = call.hub.models.RenderMetrics(tenant) + call.hub.jobs.RenderMetrics(tenant);
  if (call.caller.IsHubAdmin()) response.body += call.hub.inference.RenderMetrics();
  return response;
}

// GET /api/v1/servables/{tenant}/{name}[/versions/{version}]/logs?tail=N:
// the owner's view of its workers' recent output. Like unload: only the
// owner's publishers and admins; what the caller cannot see is absent.
HttpResponse WorkerLogs(const RouteCall& call) {
  ASSIGN_OR_ANSWER(ObjectRef object, ObjectFrom(call));
  const Caller& caller = call.caller;
  ASSIGN_OR_ANSWER(auto servable, call.hub.models.Resolve(caller, object.name, object.version));
  if (caller.tenant != object.name.tenant || caller.role == Role::kReader) {
    return HttpResponse::Error(
        PermissionDenied("worker output is for the publishers and admins "
                         "of " +
                         object.name.tenant));
  }
  int64_t tail = 100;
  std::string text = call.request.Query("tail");
  if (!text.empty()) {
    bool digits = text.size() <= 5 && text.find_first_not_of("0123456789") == std::string::npos;
    tail = digits ? std::stoll(text) : 0;
    if (tail < 1 || tail > 1000) {
      return HttpResponse::Error(InvalidArgument("tail must be 1..1000, not '" + text + "'"));
    }
  }
  nlohmann::json lines = nlohmann::json::array();
  uint64_t dropped = 0;
  if (std::shared_ptr<const OutputRing> ring = call.hub.models.Output(servable->key)) {
    for (const OutputRing::Line& line : ring->Tail(static_cast<size_t>(tail))) {
      lines.push_back({{"at", FormatUnixSeconds(line.at_ms / 1000)}, {"line", line.text}});
    }
    dropped = ring->dropped();
  }
  return HttpResponse::Json(200,
                            {{"servable", servable->key}, {"lines", lines}, {"dropped", dropped}});
}

}  // namespace orrery
