// GET /v2/models/{model}[/versions/{v}]/config: a servable version's
// configuration in the shape Triton's clients and tools parse (Triton's
// model configuration as JSON), built from its manifest and serving
// settings: what a Triton user reads to learn the batch limit, the tensors'
// types and shapes, dynamic batching and the instances.
#include "api/route_handlers.h"
#include "api/route_util.h"

namespace orrery {
namespace {

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

HttpResponse ModelConfig(const RouteCall& call) {
  ASSIGN_OR_ANSWER(ModelPath path, ModelPathFrom(call));
  auto servable = call.hub.models.Resolve(call.caller, path.name, path.version);
  if (!servable.ok()) return HttpResponse::Error(servable.status());
  const Manifest& manifest = (*servable)->manifest;
  const BatchingConfig& batching = manifest.batching;
  nlohmann::json config = {
      {"name", (*servable)->info.name.ToString()},
      {"platform", PlatformOf(manifest.backend)},
      {"backend", manifest.backend},
      {"version_policy",
       {{"specific", {{"versions", {std::to_string((*servable)->info.version)}}}}}},
      {"max_batch_size", batching.max_batch_size},
      {"input", TritonTensors(manifest.inputs, batching.enabled())},
      {"output", TritonTensors(manifest.outputs, batching.enabled())},
      {"instance_group",
       {{{"name", (*servable)->key},
         {"kind", "KIND_CPU"},
         {"count", call.hub.models.InstancesFor(**servable)}}}}};
  if (batching.enabled()) {
    config["dynamic_batching"] = {{"preferred_batch_size", batching.preferred_batch_sizes},
                                  {"max_queue_delay_microseconds", batching.max_queue_delay_us}};
  }
  if (manifest.queue.priority_levels > 0) {
    config["dynamic_batching"]["priority_levels"] = manifest.queue.priority_levels;
    config["dynamic_batching"]["default_priority_level"] = manifest.queue.DefaultLevel();
  }
  config["response_cache"] = {{"enable", manifest.cache}};
  return HttpResponse::Json(200, config);
}

}  // namespace orrery
