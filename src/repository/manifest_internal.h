// Internal to the manifest parser (manifest*.cc): the yaml-cpp adapter
// helpers. Not part of the repository's interface; include only from there.
//
// Every function reports problems as kUnprocessable "manifest: <field>: ..."
// and may throw YAML::Exception only where yaml-cpp itself does, which
// ParseManifest catches. Thread-safe (pure functions, value types).
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "repository/manifest.h"

namespace orrery::manifest_internal {

// kUnprocessable "manifest: <field>: <message>".
Status FieldError(const std::string& field, const std::string& message);
// Field paths: Child("signature", "inputs") == "signature.inputs",
// Item("files", 2) == "files[2]".
std::string Child(const std::string& parent, std::string_view key);
std::string Item(const std::string& parent, size_t index);

// Types a scalar like the YAML 1.2 core schema: quoted -> string; else
// integer, decimal float, true/false, else string.
nlohmann::json ScalarToJson(const YAML::Node& node);

// Bounds every recursive walk of one document: aliases let a small text
// describe an exponential tree, or even a cycle.
struct Budget {
  static constexpr int kMaxDepth = 64;
  size_t nodes_left = 1'000'000;
  Status Spend(const std::string& field, int depth);
};

// Any YAML value as JSON (maps with string keys, no duplicates). Errors
// name `subject` ("manifest: <field>: ...").
Result<nlohmann::json> ToJsonValue(const YAML::Node& node, const std::string& field, Budget& budget,
                                   int depth = 0, std::string_view subject = "manifest");
Result<int64_t> ToInteger(const YAML::Node& node, const std::string& field);
Result<double> ToNumber(const YAML::Node& node, const std::string& field);

// A YAML mapping whose keys were checked against an allowed set (unknown and
// duplicate keys refused). Null values (`key:` or `key: ~`) count as absent.
class FieldMap {
 public:
  static Result<FieldMap> Open(const YAML::Node& node, const std::string& field,
                               std::initializer_list<std::string_view> allowed);

  // The field path of `key` inside this mapping.
  std::string Path(std::string_view key) const { return Child(field_, key); }
  std::optional<YAML::Node> Get(std::string_view key) const;
  // A scalar's text; "" when absent and not required. Required strings must
  // be non-empty.
  Result<std::string> String(std::string_view key, bool required) const;
  // true/false (YAML 1.2 core spellings: true, false, True, False, TRUE,
  // FALSE); `fallback` when absent.
  Result<bool> Bool(std::string_view key, bool fallback) const;
  // A sequence's items; required lists must be non-empty.
  Result<std::vector<YAML::Node>> List(std::string_view key, bool required) const;

 private:
  explicit FieldMap(std::string field) : field_(std::move(field)) {}
  std::string field_;
  std::map<std::string, YAML::Node> values_;
};

// The integer at `key` of `map`, which must be in min..max; `fallback` when
// absent.
Result<int64_t> IntegerIn(const FieldMap& map, std::string_view key, int64_t min, int64_t max,
                          int64_t fallback);

// Parses the `queue` section of a servable into manifest.queue
// (manifest_queue.cc).
Status ParseQueue(const FieldMap& top, Manifest& manifest);
// The `python` section (manifest_python.cc).
Status ParsePython(const FieldMap& top, Manifest& manifest);

// Parses `examples` against the already parsed signature of `manifest`.
Result<nlohmann::json> ParseExamples(const FieldMap& top, const Manifest& manifest, Budget& budget);

// Parses `pipeline` (manifest_pipeline.cc) after the backend, signature and
// batching of `manifest`: required for backend pipeline, refused otherwise.
Status ParsePipeline(const FieldMap& top, Manifest& manifest);
// The canonical JSON of a pipeline section.
nlohmann::json PipelineJson(const PipelineSpec& pipeline);
// Serving sections, shared by the manifest and the admin override of a
// version's serving settings (manifest_override.cc). Each reads its key of
// `top` into a default-initialised field of `manifest`, checked against the
// signature already parsed there; an absent or null key leaves it as is.
Status ParseBatching(const FieldMap& top, Manifest& manifest);  // `batching`

}  // namespace orrery::manifest_internal
