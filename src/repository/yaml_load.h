// Loads YAML text into yaml-cpp nodes with libyaml's parser.
//
// Why not YAML::Load: yaml-cpp 0.7's own parser loops forever on some
// malformed text (two bytes, ",}", were enough; found by fuzz/manifest_fuzzer),
// and manifests come from clients. libyaml's parser is the reference C
// implementation, fuzzed for years; the manifest code keeps working on
// yaml-cpp nodes built here from libyaml's events.
//
// The nodes are what yaml-cpp's loader would give: scalars as text, quoted
// ones tagged "!" (yaml-cpp's non-specific tag, so that '2' stays a string),
// plain "", "~", "null" as null nodes, maps in document order (duplicate keys
// kept, for the caller to refuse). Refused (kInvalidArgument with the line
// and column): invalid YAML, aliases (a manifest has no use for them, and
// they let a small text describe a huge tree), nesting deeper than
// kMaxYamlDepth, more than kMaxYamlNodes values.
// Thread-safe (no shared state).
#pragma once

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include <string_view>
#include <vector>

#include "core/status.h"

namespace orrery {

constexpr int kMaxYamlDepth = 64;
constexpr size_t kMaxYamlNodes = 200'000;  // a 1 MiB manifest of one-digit list items

// Every document of `text`, in order.
Result<std::vector<YAML::Node>> LoadYamlDocuments(std::string_view text);

// The one document of `text` (YAML, or JSON, which is YAML) as JSON, scalars
// typed as the YAML 1.2 core schema types them ('2' stays a string, 2 is a
// number). Errors are kUnprocessable "<subject>: ..." (more than one
// document, keys that are not strings, duplicate keys) or kInvalidArgument
// (not YAML), as LoadYamlDocuments.
Result<nlohmann::json> LoadYamlAsJson(std::string_view text, std::string_view subject);

}  // namespace orrery
