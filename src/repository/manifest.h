// Manifest: the package description (`orrery.yaml`) of a servable or dataset.
//
// The manifest carries citable metadata in the spirit of DataCite, the files
// of the package, and, for servables, the backend, the typed signature, an
// optional task with metrics, and examples used later by `verify`.
//
//   name: digits-mlp                      # required; must match the publish URL
//   kind: servable                        # servable (default) | dataset
//   title: Digits MLP                     # required
//   creators:                             # required, >= 1, each with a name
//     - {name: "Lovelace, Ada", affiliation: Analytical Engines, orcid: 0000-...}
//   description: ...                      # optional
//   year: 2026                            # required, 1000..9999
//   license: CC-BY-4.0                    # optional
//   identifiers: [{type: DOI, value: 10.1234/x}]
//   related_identifiers: [{type: DOI, value: 10.1/y, relation: IsDerivedFrom}]
//   domain: vision                        # optional
//   tags: [digits, mlp]                   # optional
//   backend: torchscript                  # servables: one of kKnownBackends
//   files:                                # required (>= 1 except pipelines)
//     - model.pt                          # a path, or
//     - {path: model.pt, sha256: <hex>}   # with the digest the upload must match
//   signature:                            # servables: required
//     inputs:  [{name: x, datatype: FP32, shape: [-1, 64]}]
//     outputs: [{name: y, datatype: FP32, shape: [-1, 10]}]
//   task: digits-classification           # optional
//   metrics: {accuracy: 0.97}             # optional, numbers only
//   config: {...}                         # optional, backend-specific map
//   examples:                             # optional
//     - inputs:  {x: {datatype: FP32, shape: [1, 64], data: [...]}}
//       outputs: {y: {datatype: FP32, shape: [1, 10], data: [...]}}
//       tolerance: 1.0e-4                 # optional
//   batching:                             # servables: optional (dynamic batching)
//     max_batch_size: 32                  # 0..4096; 0 (or no section): not batched
//     max_queue_delay_us: 500             # 0..1000000
//     preferred_batch_sizes: [8, 16]      # optional; 1..max_batch_size, increasing
//   When max_batch_size > 0, every signature input and output must have -1 as
//   its first dimension (the batch dimension).
//   cache: true                           # servables: optional; memoize answers
//                                         # (deterministic servables only)
//   queue:                                # servables: optional (scheduling)
//     max_size: 64                        # 1..65536 waiting requests; absent: --max-queue
//     priority_levels: 2                  # 0..16; 0 (or absent): one FIFO, no priorities
//     default_priority_level: 2           # 1..priority_levels; absent: the lowest
//     default_timeout_us: 500000          # 1..3600000000; may only shorten --timeout-ms
//   python:                               # backend python only; optional
//     requires: [numpy, 'sklearn>=1.2']   # import names, optional version; checked at load
//     environment: sklearn                # an operator's environment (orrery env list)
//   pipeline:                             # backend pipeline only, and required there
//     steps:                              # 1..64 steps, in any order (a DAG)
//       - name: scale                     # [A-Za-z0-9_-], unique in the pipeline
//         servable: demo/standardise      # tenant/name; a bare name: the publisher's tenant
//         version: 1                      # a number or an alias (publish stores the number)
//         inputs: {x: $inputs.pixels}     # step input <- $inputs.<pipeline input>
//       - {name: classify, servable: mlp, version: production, inputs: {x: scale.y}}
//     outputs: {logits: classify.y}       # every signature output <- <step>.<output>
//   A reference is `$inputs.<tensor>` or `<step>.<tensor>`, split at its
//   first '.' (step names have none). Every step must feed another step or
//   an output, and steps may not form a cycle. A pipeline has no batching
//   section (each step batches as its own manifest says). Publish checks the
//   referenced servables (repository/pipeline_publish.h).
//
// Thread-safe (pure functions and value types).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "repository/names.h"

namespace orrery {

constexpr const char* kManifestFileName = "orrery.yaml";
// The package's model card (optional, Markdown): shown by `orrery show
// --readme` and returned by the API.
constexpr const char* kModelCardFileName = "README.md";
constexpr uint64_t kMaxModelCardBytes = 256 * 1024;  // a larger README.md is refused (422)

enum class PackageKind { kServable, kDataset };
const char* PackageKindName(PackageKind kind);  // "servable" / "dataset"

// Backends a servable may name. Adding a backend adds a name here and a
// folder under src/backends/ (serving issue).
const std::vector<std::string>& KnownBackends();
bool IsKnownBackend(std::string_view backend);

// Open Inference Protocol datatypes: BOOL, UINT8..UINT64, INT8..INT64, FP16,
// FP32, FP64, BF16, BYTES.
bool IsKnownDatatype(std::string_view datatype);

struct TensorSpec {
  std::string name;
  std::string datatype;
  std::vector<int64_t> shape;  // -1 marks a variable dimension
};

struct Creator {
  std::string name;
  std::string affiliation;
  std::string orcid;
};

struct Identifier {
  std::string type;  // e.g. DOI, URL, arXiv
  std::string value;
  std::string relation;  // related identifiers only, e.g. IsDerivedFrom
};

struct ManifestFile {
  std::string path;    // relative, '/'-separated, checked like archive entries
  std::string sha256;  // empty, or the lowercase hex digest the file must have
};

// Dynamic batching of a servable's requests (`batching` in the manifest).
// Batched requests are joined along the first dimension of every tensor, so
// a batched servable's signature has -1 there.
struct BatchingConfig {
  uint32_t max_batch_size = 0;                  // 0: requests run one by one
  uint32_t max_queue_delay_us = 0;              // the first request of a batch waits at most this
  std::vector<uint32_t> preferred_batch_sizes;  // sizes to cut batches at when possible
  bool enabled() const { return max_batch_size > 0; }
};

// Scheduling of a servable's requests (`queue` in the manifest), batched or
// not. Priority 1 is the highest; requests of a higher priority run before
// lower ones, first come first served within a level. Zeros mean "not set".
struct QueueConfig {
  uint32_t max_size = 0;                // requests waiting (not running); 0: the server's default
  uint32_t priority_levels = 0;         // 0: one FIFO queue, no priorities
  uint32_t default_priority_level = 0;  // for requests that name none; 0: the lowest
  uint64_t default_timeout_us = 0;      // 0: the server's timeout; never lengthens it
  // The level of a request that names none: default_priority_level, or the
  // lowest (priority_levels) when unset; 1 without priority levels.
  uint32_t DefaultLevel() const;
  bool empty() const {
    return max_size == 0 && priority_levels == 0 && default_priority_level == 0 &&
           default_timeout_us == 0;
  }
};

// How a pipeline reference names the pipeline's own inputs.
constexpr const char* kPipelineInputs = "$inputs";

// A tensor a pipeline reads: a pipeline input (`$inputs.<tensor>`) or a
// step's output (`<step>.<tensor>`).
struct PipelineRef {
  std::string step;  // empty: a pipeline input
  std::string tensor;
  std::string ToString() const;  // as written in the manifest
};

// One step of a pipeline: a servable version and where its inputs come from.
struct PipelineStep {
  std::string name;
  std::string servable;  // "tenant/name", or "name" (the publisher's tenant) before publish
  VersionRef version;    // a number, or an alias before publish
  std::map<std::string, PipelineRef> inputs;  // step input name -> source
};

// The `pipeline` section of a servable with backend `pipeline`.
struct PipelineSpec {
  std::vector<PipelineStep> steps;            // manifest order
  std::map<std::string, PipelineRef> outputs;  // pipeline output name -> source
  bool empty() const { return steps.empty(); }
};

// A Python servable's needs (manifest section `python`, backend python only).
struct PythonConfig {
  // Import names, each with an optional version ("numpy", "sklearn>=1.2"):
  // checked in the sandbox when the servable loads.
  std::vector<std::string> requires_modules;
  std::string environment;  // an operator's Python environment (orrery env list); "" none
  bool empty() const { return requires_modules.empty() && environment.empty(); }
};

// Whether `name` can name a Python environment: [A-Za-z0-9._-], 1..64.
bool IsEnvironmentName(std::string_view name);

struct Manifest {
  std::string name;
  PackageKind kind = PackageKind::kServable;
  std::string title;
  std::vector<Creator> creators;
  std::string description;
  int year = 0;
  std::string license;
  std::vector<Identifier> identifiers;
  std::vector<Identifier> related_identifiers;
  std::string domain;
  std::vector<std::string> tags;
  std::string backend;  // empty for datasets
  std::vector<ManifestFile> files;
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
  std::string task;
  std::map<std::string, double> metrics;
  nlohmann::json config = nlohmann::json::object();
  nlohmann::json examples = nlohmann::json::array();
  BatchingConfig batching;  // servables only; disabled unless max_batch_size > 0
  bool cache = false;       // servables only: answers may be memoized (response cache)
  QueueConfig queue;        // servables only; every field unset when there is no section
  PipelineSpec pipeline;    // backend pipeline only
  PythonConfig python;      // backend python only

  // Canonical JSON form (the keys above; empty optional fields omitted, and
  // `batching` only when enabled, `cache` only when true, `queue` with the
  // fields that are set, `pipeline` only for pipelines).
  nlohmann::json ToJson() const;
};

// Parses and validates YAML text. Errors are kUnprocessable and name the
// field, e.g. "manifest: signature.inputs[0].datatype: unknown datatype
// 'FP8'", or "manifest is not valid YAML: ..." for syntax errors.
Result<Manifest> ParseManifest(std::string_view yaml_text);

// kUnprocessable naming the first file the manifest lists that is not among
// `package_files` (paths relative to the package root).
Status CheckManifestFiles(const Manifest& manifest, const std::set<std::string>& package_files);

// ---- Serving settings and their admin override
//
// A servable version's serving settings are its manifest sections `batching`
// and `cache`. An admin may override them per version without republishing
// (docs/api.md, /api/v1/admin/serving): an override is a JSON object whose
// keys are those sections, each written as in the manifest, e.g.
//   {"batching": {"max_batch_size": 16, "max_queue_delay_us": 1000}, "cache": true}
// A null or absent section keeps the manifest's own. Each section is read by
// the manifest's own parser, so an override obeys the manifest's rules.

// `manifest` with `override` applied. kUnprocessable naming the field, e.g.
// "serving override: batching.max_batch_size: must be 0..4096", when the
// override is not an object, names an unknown section, or holds a section
// the manifest itself would refuse (batching of a tensor whose first
// dimension is not -1, ...); datasets have no serving settings.
Result<Manifest> ApplyServingOverride(const Manifest& manifest, const nlohmann::json& override);

// The override as stored: its non-null sections only ({} when none).
nlohmann::json CanonicalServingOverride(const nlohmann::json& override);

// The serving settings `manifest` asks for, every section shown:
// {"batching": {"max_batch_size", "max_queue_delay_us",
// "preferred_batch_sizes"}, "cache": bool}; max_batch_size 0 = not batched.
nlohmann::json ServingSettingsJson(const Manifest& manifest);

// Validates a relative package path: non-empty, '/'-separated, no leading
// '/', no "." or ".." or empty components, no NUL or backslash, at most
// 1024 bytes. kInvalidArgument naming the path otherwise.
Status ValidatePackagePath(std::string_view path);

}  // namespace orrery
