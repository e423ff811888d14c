// The admin override of a servable version's serving settings (manifest.h).
//
// An override arrives as JSON; the manifest's section parsers read YAML
// nodes. Rather than keep a second set of rules, the override is turned into
// the YAML nodes the manifest would have held (strings quoted, so "32" stays
// a string as in the manifest) and read by those same parsers. Their errors
// say "manifest: <field>"; here the field is the override's, so they are
// renamed "serving override: <field>".
#include <yaml-cpp/yaml.h>

#include "repository/manifest.h"
#include "repository/manifest_internal.h"

namespace orrery {
namespace {

using nlohmann::json;
using namespace manifest_internal;  // NOLINT: the parser's own helpers

// `value` as a YAML node, nested at most as deep as a manifest may be.
Result<YAML::Node> ToYaml(const json& value, const std::string& field, int depth) {
  if (depth > Budget::kMaxDepth) return FieldError(field, "nested too deeply");
  if (value.is_null()) return YAML::Node(YAML::NodeType::Null);
  if (value.is_string()) {
    YAML::Node node(value.get<std::string>());
    node.SetTag("!");  // what yaml-cpp gives a quoted scalar
    return node;
  }
  if (value.is_primitive()) return YAML::Node(value.dump());  // numbers and booleans, as written
  if (value.is_array()) {
    YAML::Node node(YAML::NodeType::Sequence);
    for (size_t i = 0; i < value.size(); ++i) {
      ASSIGN_OR_RETURN(YAML::Node item, ToYaml(value[i], Item(field, i), depth + 1));
      node.push_back(item);
    }
    return node;
  }
  YAML::Node node(YAML::NodeType::Map);
  for (const auto& [key, item] : value.items()) {
    ASSIGN_OR_RETURN(YAML::Node child, ToYaml(item, Child(field, key), depth + 1));
    node.force_insert(key, child);
  }
  return node;
}

// Each overridable section is read as the manifest reads it, into a copy of
// `manifest` whose section was reset first.
Result<Manifest> ApplySections(const YAML::Node& root, const Manifest& manifest) {
  ASSIGN_OR_RETURN(auto top, FieldMap::Open(root, "", {"batching", "cache", "queue"}));
  Manifest out = manifest;
  if (top.Get("batching")) {
    out.batching = BatchingConfig{};
    RETURN_IF_ERROR(ParseBatching(top, out));
  }
  if (top.Get("queue")) {
    out.queue = QueueConfig{};
    RETURN_IF_ERROR(ParseQueue(top, out));
  }
  ASSIGN_OR_RETURN(out.cache, top.Bool("cache", manifest.cache));
  return out;
}

Status InOverride(const Status& status) {
  constexpr std::string_view kManifest = "manifest: ";
  std::string message = status.message();
  if (message.rfind(kManifest, 0) == 0) message.erase(0, kManifest.size());
  return Status(status.code(), "serving override: " + message);
}

}  // namespace

Result<Manifest> ApplyServingOverride(const Manifest& manifest, const json& override) {
  if (manifest.kind != PackageKind::kServable) {
    return Unprocessable("serving override: only servables have serving settings");
  }
  if (!override.is_object()) return Unprocessable("serving override must be a JSON object");
  try {
    Result<YAML::Node> root = ToYaml(override, "", 0);
    if (!root.ok()) return InOverride(root.status());
    Result<Manifest> applied = ApplySections(*root, manifest);
    if (!applied.ok()) return InOverride(applied.status());
    return applied;
  } catch (const YAML::Exception& e) {
    return Unprocessable(std::string("serving override: ") + e.what());
  }
}

json CanonicalServingOverride(const json& override) {
  json out = json::object();
  if (!override.is_object()) return out;
  for (const auto& [key, value] : override.items()) {
    if (!value.is_null()) out[key] = value;
  }
  return out;
}

json ServingSettingsJson(const Manifest& manifest) {
  const BatchingConfig& batching = manifest.batching;
  const QueueConfig& queue = manifest.queue;
  return {{"batching",
           {{"max_batch_size", batching.max_batch_size},
            {"max_queue_delay_us", batching.max_queue_delay_us},
            {"preferred_batch_sizes", batching.preferred_batch_sizes}}},
          {"cache", manifest.cache},
          {"queue",
           {{"max_size", queue.max_size},
            {"priority_levels", queue.priority_levels},
            {"default_priority_level", queue.default_priority_level},
            {"default_timeout_us", queue.default_timeout_us}}}};
}

}  // namespace orrery
