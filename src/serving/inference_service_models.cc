// InferenceService: the Open Inference Protocol's operations other than
// inference: server and model metadata, readiness, statistics, Triton's
// model configuration and the model-repository extension.
#include <map>

#include "serving/inference_service.h"

namespace orrery {
namespace {

// What the server metadata advertises: only what is implemented.
const char* const kExtensions[] = {"binary_tensor_data", "model_configuration",
                                   "model_repository", "schedule_policy", "statistics"};

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

// Triton's data types: "TYPE_" and the protocol's datatype, BYTES being STRING.
std::string TritonDataType(const std::string& datatype) {
  return datatype == "BYTES" ? "TYPE_STRING" : "TYPE_" + datatype;
}

// With batching, Triton's dims leave out the batch dimension (the first).
nlohmann::json TritonTensors(const std::vector<TensorSpec>& specs, bool batched) {
  nlohmann::json out = nlohmann::json::array();
  for (const TensorSpec& spec : specs) {
    std::vector<int64_t> dims = spec.shape;
    if (batched && !dims.empty()) dims.erase(dims.begin());
    out.push_back({{"name", spec.name}, {"data_type", TritonDataType(spec.datatype)},
                   {"dims", dims}});
  }
  return out;
}

}  // namespace

std::string PlatformOf(const std::string& backend) {
  if (backend == "torchscript") return "pytorch_torchscript";
  if (backend == "onnx") return "onnx_onnxv1";
  return backend;  // xgboost, python, native, pipeline
}

nlohmann::json InferenceService::ServerMetadata() {
  nlohmann::json extensions = nlohmann::json::array();
  for (const char* extension : kExtensions) extensions.push_back(extension);
  return {{"name", "orrery"}, {"version", "0.1.0"}, {"extensions", extensions}};
}

Result<nlohmann::json> InferenceService::ModelMetadata(const Caller& caller,
                                                       const ModelTarget& target) {
  ASSIGN_OR_RETURN(auto servable, resolver_.Resolve(caller, target));
  const Manifest& manifest = servable->manifest;
  nlohmann::json versions = nlohmann::json::array();
  for (int64_t version : servable->info.live_versions) versions.push_back(std::to_string(version));
  return nlohmann::json{{"name", servable->info.name.ToString()},
                        {"versions", versions},
                        {"platform", PlatformOf(manifest.backend)},
                        {"inputs", TensorSpecs(manifest.inputs)},
                        {"outputs", TensorSpecs(manifest.outputs)}};
}

Result<Readiness> InferenceService::ModelReady(const Caller& caller, const ModelTarget& target) {
  ASSIGN_OR_RETURN(auto servable, resolver_.Resolve(caller, target));
  std::shared_ptr<Model> model = models_.Find(servable->key);
  Readiness readiness;
  readiness.key = servable->key;
  readiness.ready = model && model->Ready();
  if (!readiness.ready) readiness.reason = model ? model->reason() : "not loaded";
  return readiness;
}

Result<nlohmann::json> InferenceService::ModelStats(const Caller& caller,
                                                    const std::optional<ModelTarget>& target) {
  std::string only;  // one servable version's key, or all visible
  if (target) {
    ASSIGN_OR_RETURN(auto servable, resolver_.Resolve(caller, *target));
    only = servable->key;
  }
  nlohmann::json stats = nlohmann::json::array();
  for (const auto& model : models_.Models()) {
    if (!only.empty() && model->key() != only) continue;
    const auto& info = model->servable().info;
    if (!models_.Resolve(caller, info.name, VersionRef{info.version, ""}).ok()) continue;
    stats.push_back(ModelStatsJson(*model));
  }
  return nlohmann::json{{"model_stats", stats}};
}

Result<nlohmann::json> InferenceService::ModelConfig(const Caller& caller,
                                                     const ModelTarget& target) {
  ASSIGN_OR_RETURN(auto servable, resolver_.Resolve(caller, target));
  const Manifest& manifest = servable->manifest;
  const BatchingConfig& batching = manifest.batching;
  nlohmann::json config = {
      {"name", servable->info.name.ToString()},
      {"platform", PlatformOf(manifest.backend)},
      {"backend", manifest.backend},
      {"version_policy", {{"specific", {{"versions", {std::to_string(servable->info.version)}}}}}},
      {"max_batch_size", batching.max_batch_size},
      {"input", TritonTensors(manifest.inputs, batching.enabled())},
      {"output", TritonTensors(manifest.outputs, batching.enabled())},
      {"instance_group",
       {{{"name", servable->key}, {"kind", "KIND_CPU"}, {"count", models_.InstancesFor(*servable)}}}}};
  if (batching.enabled()) {
    config["dynamic_batching"] = {{"preferred_batch_size", batching.preferred_batch_sizes},
                                  {"max_queue_delay_microseconds", batching.max_queue_delay_us}};
  }
  if (manifest.queue.priority_levels > 0) {
    config["dynamic_batching"]["priority_levels"] = manifest.queue.priority_levels;
    config["dynamic_batching"]["default_priority_level"] = manifest.queue.DefaultLevel();
  }
  config["response_cache"] = {{"enable", manifest.cache}};
  return config;
}

Result<nlohmann::json> InferenceService::RepositoryIndex(const Caller& caller, bool ready_only) {
  // The loaded (or loading, failed) versions the caller can see...
  std::map<std::pair<std::string, int64_t>, nlohmann::json> index;  // by name, version
  for (const auto& model : models_.Models()) {
    const auto& info = model->servable().info;
    if (!models_.Resolve(caller, info.name, VersionRef{info.version, ""}).ok()) continue;
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
      ASSIGN_OR_RETURN(nlohmann::json page, repository_.List(caller, query));
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
  return out;
}

Result<int> InferenceService::Unload(const Caller& caller, const ModelTarget& target) {
  ASSIGN_OR_RETURN(auto parsed, CatalogResolver::Parse(caller, target));
  const auto& [name, version] = parsed;
  // Only the owner's publishers and admins, or the hub admin, take a model
  // away from everyone who uses it; what a caller cannot see answers as
  // absent, to the hub admin too (it sees no other tenant's private servable).
  if (!resolver_.Resolve(caller, target).ok()) {
    return NotFound("servable " + name.ToString() + " not found");
  }
  bool owner = caller.tenant == name.tenant && caller.role != Role::kReader;
  if (!owner && !caller.IsHubAdmin()) {
    return PermissionDenied("unloading needs a publisher or admin token of " + name.tenant);
  }
  std::string prefix = name.ToString() + ":";
  int unloaded = 0;
  for (const auto& model : models_.Models()) {
    bool match = target.has_version() && version.is_number()
                     ? model->key() == prefix + std::to_string(version.number)
                     : model->key().rfind(prefix, 0) == 0;
    if (match && models_.Unload(model->key()).ok()) ++unloaded;
  }
  return unloaded;  // as in Triton, unloading what is not loaded succeeds
}

}  // namespace orrery
