// The Open Inference Protocol routes other than inference itself: server
// and model metadata, readiness, statistics, the model-repository
// extension and /metrics. Inference and verify are in routes_infer.cc.
#include <algorithm>
#include <map>

#include "api/route_handlers.h"
#include "api/route_util.h"

namespace orrery {
namespace {

// What GET /v2 advertises: only what is implemented.
const char* const kExtensions[] = {"binary_tensor_data", "model_repository", "schedule_policy",
                                   "statistics"};

nlohmann::json TensorSpecs(const std::vector<TensorSpec>& specs) {
  nlohmann::json out = nlohmann::json::array();
  for (const TensorSpec& spec : specs) {
    out.push_back({{"name", spec.name}, {"datatype", spec.datatype}, {"shape", spec.shape}});
  }
  return out;
}

nlohmann::json Duration(uint64_t count, uint64_t ns) { return {{"count", count}, {"ns", ns}}; }

nlohmann::json Duration(const DurationStat& stat) {
  return Duration(stat.count.load(), stat.ns.load());
}

// Triton's statistics extension format. Every finished request counts once
// in success or fail (time from arrival to the answer); inference_count
// counts rows of batched requests (one per request otherwise, cache hits
// excluded), execution_count backend calls, as Triton's do; queue and compute_*
// count the requests that reached an instance, a batch's time counting for
// each of its requests. compute_input / compute_output are the joining and
// splitting of batches (batched servables only); execution_count and
// batch_stats (one entry per batch size seen) count backend calls.
nlohmann::json ModelStatsJson(const Model& model) {
  const ServingMetrics& m = model.metrics();
  uint64_t failures = m.failures.load(), failure_ns = m.failure_ns.load();
  uint64_t finished = m.total.Count(), total_ns = m.total.SumNanos();
  uint64_t successes = finished > failures ? finished - failures : 0;
  uint64_t success_ns = total_ns > failure_ns ? total_ns - failure_ns : 0;
  bool batched = model.servable().manifest.batching.enabled();
  nlohmann::json batches = nlohmann::json::array();
  for (const BatchStats::Entry& entry : m.batch_stats.Snapshot()) {
    batches.push_back(
        {{"batch_size", entry.batch_size}, {"compute_infer", Duration(entry.count, entry.ns)}});
  }
  return {{"name", model.servable().info.name.ToString()},
          {"version", std::to_string(model.servable().info.version)},
          {"state", ModelStateName(model.state())},
          {"last_inference", m.last_inference_ms.load()},
          {"inference_count", m.inferences.load()},
          {"execution_count", batched ? m.batch_sizes.Count() : m.compute.Count()},
          {"inference_stats",
           {{"success", Duration(successes, success_ns)},
            {"fail", Duration(failures, failure_ns)},
            {"queue", Duration(m.queue.Count(), m.queue.SumNanos())},
            {"compute_input", Duration(m.compute_input)},
            {"compute_infer", Duration(m.compute.Count(), m.compute.SumNanos())},
            {"compute_output", Duration(m.compute_output)},
            {"cache_hit", Duration(m.cache_hits.load(), m.cache_hit_ns.load())},
            {"cache_miss", Duration(m.cache_misses.load(), m.cache_miss_ns.load())}}},
          {"batch_stats", std::move(batches)}};
}

}  // namespace

std::string PlatformOf(const std::string& backend) {
  if (backend == "torchscript") return "pytorch_torchscript";
  if (backend == "onnx") return "onnx_onnxv1";
  return backend;  // xgboost, python, native, pipeline
}

HttpResponse ServerMetadata(const RouteCall&) {
  nlohmann::json extensions = nlohmann::json::array();
  for (const char* extension : kExtensions) extensions.push_back(extension);
  return HttpResponse::Json(200,
                            {{"name", "orrery"}, {"version", "0.1.0"}, {"extensions", extensions}});
}

HttpResponse ServerReady(const RouteCall& call) {
  if (call.hub.stopping.load()) {
    return HttpResponse::Json(503,
                              {{"ready", false}, {"error", "not ready: the server is stopping"}});
  }
  return HttpResponse::Json(200, {{"ready", true}});
}

HttpResponse ModelMetadata(const RouteCall& call) {
  Result<ModelPath> path = ModelPathFrom(call);
  if (!path.ok()) return HttpResponse::Error(path.status());
  auto servable = call.hub.models.Resolve(call.caller, path->name, path->version);
  if (!servable.ok()) return HttpResponse::Error(servable.status());
  const auto& info = (*servable)->info;
  const Manifest& manifest = (*servable)->manifest;
  nlohmann::json versions = nlohmann::json::array();
  for (int64_t version : info.live_versions) versions.push_back(std::to_string(version));
  return HttpResponse::Json(200, {{"name", info.name.ToString()},
                                  {"versions", versions},
                                  {"platform", PlatformOf(manifest.backend)},
                                  {"inputs", TensorSpecs(manifest.inputs)},
                                  {"outputs", TensorSpecs(manifest.outputs)}});
}

HttpResponse ModelReady(const RouteCall& call) {
  Result<ModelPath> path = ModelPathFrom(call);
  if (!path.ok()) return HttpResponse::Error(path.status());
  auto servable = call.hub.models.Resolve(call.caller, path->name, path->version);
  if (!servable.ok()) return HttpResponse::Error(servable.status());
  std::shared_ptr<Model> model = call.hub.models.Find((*servable)->key);
  if (model && model->Ready()) {
    return HttpResponse::Json(200, {{"name", (*servable)->key}, {"ready", true}});
  }
  std::string reason = model ? model->reason() : "not loaded";
  return HttpResponse::Json(
      503, {{"name", (*servable)->key}, {"ready", false}, {"error", "not ready: " + reason}});
}

HttpResponse ModelStats(const RouteCall& call) {
  ModelManager& models = call.hub.models;
  std::string only;  // one servable version's key, or all visible
  if (call.request.params.Has("model")) {
    Result<ModelPath> path = ModelPathFrom(call);
    if (!path.ok()) return HttpResponse::Error(path.status());
    auto servable = models.Resolve(call.caller, path->name, path->version);
    if (!servable.ok()) return HttpResponse::Error(servable.status());
    only = (*servable)->key;
  }
  nlohmann::json stats = nlohmann::json::array();
  for (const auto& model : models.Models()) {
    if (!only.empty() && model->key() != only) continue;
    const auto& info = model->servable().info;
    if (!models.Resolve(call.caller, info.name, VersionRef{info.version, ""}).ok()) continue;
    stats.push_back(ModelStatsJson(*model));
  }
  return HttpResponse::Json(200, {{"model_stats", stats}});
}

HttpResponse RepositoryIndex(const RouteCall& call) {
  bool ready_only = false;
  if (!call.request.body.empty()) {
    Result<nlohmann::json> body = ParseJsonObject(call.request);
    if (!body.ok()) return HttpResponse::Error(body.status());
    auto ready = body->find("ready");
    if (ready != body->end()) {
      if (!ready->is_boolean()) return HttpResponse::Error(InvalidArgument("ready must be a bool"));
      ready_only = ready->get<bool>();
    }
  }
  // The loaded (or loading, failed) versions the caller can see...
  std::map<std::pair<std::string, int64_t>, nlohmann::json> index;  // by name, version
  for (const auto& model : call.hub.models.Models()) {
    const auto& info = model->servable().info;
    if (!call.hub.models.Resolve(call.caller, info.name, VersionRef{info.version, ""}).ok()) {
      continue;
    }
    bool ready = model->Ready();
    if (ready_only && !ready) continue;
    index[{info.name.ToString(), info.version}] = {
        {"name", info.name.ToString()},
        {"version", std::to_string(info.version)},
        {"state", ready ? "READY" : ModelStateName(model->state())},
        {"reason", model->reason()}};
  }
  // ...and, as the repository extension says, every other servable it can
  // see: its latest version, UNAVAILABLE until something loads it.
  if (!ready_only) {
    ListQuery query;
    query.kind = PackageKind::kServable;
    query.per_page = 100;
    for (query.page = 1;; ++query.page) {
      ASSIGN_OR_ANSWER(nlohmann::json page, call.hub.repository.List(call.caller, query));
      for (const nlohmann::json& item : page["items"]) {
        std::string name = item["tenant"].get<std::string>() + "/" + item["name"].get<std::string>();
        if (!item["latest_version"].is_number_integer()) continue;  // no live version
        int64_t latest = item["latest_version"].get<int64_t>();
        index.try_emplace({name, latest}, nlohmann::json{{"name", name},
                                                         {"version", std::to_string(latest)},
                                                         {"state", "UNAVAILABLE"},
                                                         {"reason", "not loaded"}});
      }
      if (query.page * query.per_page >= page["total"].get<int64_t>()) break;
    }
  }
  nlohmann::json out = nlohmann::json::array();
  for (auto& [key, entry] : index) out.push_back(std::move(entry));
  return HttpResponse::Json(200, out);
}

HttpResponse RepositoryUnload(const RouteCall& call) {
  Result<ModelPath> parsed = ModelPathFrom(call);
  if (!parsed.ok()) return HttpResponse::Error(parsed.status());
  const ModelPath& path = *parsed;
  const Caller& caller = call.caller;
  ModelManager& models = call.hub.models;
  // Only the owner's publishers and admins, or the hub admin, take a model
  // away from everyone who uses it; what a caller cannot see answers as
  // absent, to the hub admin too (it sees no other tenant's private servable).
  if (!models.Resolve(caller, path.name, path.version).ok()) {
    return HttpResponse::Error(NotFound("servable " + path.name.ToString() + " not found"));
  }
  bool owner = caller.tenant == path.name.tenant && caller.role != Role::kReader;
  if (!owner && !caller.IsHubAdmin()) {
    return HttpResponse::Error(
        PermissionDenied("unloading needs a publisher or admin token of " + path.name.tenant));
  }
  std::string prefix = path.name.ToString() + ":";
  int unloaded = 0;
  for (const auto& model : models.Models()) {
    bool match = path.has_version && path.version.is_number()
                     ? model->key() == prefix + std::to_string(path.version.number)
                     : model->key().rfind(prefix, 0) == 0;
    if (match && models.Unload(model->key()).ok()) ++unloaded;
  }
  // As in Triton, unloading what is not loaded succeeds (and says so).
  return HttpResponse::Json(200, {{"unloaded", unloaded}});
}

HttpResponse Metrics(const RouteCall& call) {
  HttpResponse response;
  response.content_type = "text/plain; version=0.0.4";
  response.body = call.hub.models.RenderMetrics(call.caller.IsHubAdmin() ? "" : call.caller.tenant);
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
