// Manifest parsing: the yaml-cpp adapter. No yaml-cpp or nlohmann exception
// leaves the manifest*.cc files; every problem becomes kUnprocessable naming
// the field. Helpers live in manifest_yaml.cc, examples in
// manifest_examples.cc.
//
// String fields such as `title` accept any scalar's text, so `title: 1984`
// needs no quotes. Unknown keys are refused at every level to catch typos
// that would otherwise silently drop metadata.
#include "repository/manifest.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>

#include "core/hash.h"
#include "repository/manifest_internal.h"
#include "repository/names.h"
#include "repository/yaml_load.h"

namespace orrery {

const char* PackageKindName(PackageKind kind) {
  return kind == PackageKind::kDataset ? "dataset" : "servable";
}

const std::vector<std::string>& KnownBackends() {
  static const std::vector<std::string> backends = {"torchscript", "xgboost", "onnx",
                                                    "python",      "native",  "pipeline"};
  return backends;
}

bool IsKnownBackend(std::string_view backend) {
  const auto& known = KnownBackends();
  return std::find(known.begin(), known.end(), backend) != known.end();
}

namespace {

constexpr std::string_view kDatatypes[] = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64",
                                           "INT8", "INT16", "INT32",  "INT64",  "FP16",
                                           "FP32", "FP64",  "BF16",   "BYTES"};

// "(one of a, b, c)", for messages.
template <typename Names>
std::string OneOf(const Names& names) {
  std::string out = " (one of ";
  bool first = true;
  for (const auto& name : names) {
    out += (first ? "" : ", ") + std::string(name);
    first = false;
  }
  return out + ")";
}

}  // namespace

bool IsKnownDatatype(std::string_view datatype) {
  return std::find(std::begin(kDatatypes), std::end(kDatatypes), datatype) != std::end(kDatatypes);
}

namespace {

using nlohmann::json;
using namespace manifest_internal;  // NOLINT: the parser's own helpers

// ---- Metadata sections ---------------------------------------------------

Result<std::vector<Creator>> ParseCreators(const FieldMap& top) {
  ASSIGN_OR_RETURN(auto items, top.List("creators", true));
  std::vector<Creator> creators;
  for (size_t i = 0; i < items.size(); ++i) {
    std::string field = Item("creators", i);
    Creator creator;
    if (items[i].IsScalar()) {
      creator.name = items[i].Scalar();
      if (creator.name.empty()) return FieldError(field, "must not be empty");
    } else {
      ASSIGN_OR_RETURN(auto map, FieldMap::Open(items[i], field, {"name", "affiliation", "orcid"}));
      ASSIGN_OR_RETURN(creator.name, map.String("name", true));
      ASSIGN_OR_RETURN(creator.affiliation, map.String("affiliation", false));
      ASSIGN_OR_RETURN(creator.orcid, map.String("orcid", false));
    }
    creators.push_back(std::move(creator));
  }
  return creators;
}

// `identifiers` ({type, value}) or `related_identifiers` (also `relation`).
Result<std::vector<Identifier>> ParseIdentifiers(const FieldMap& top, const std::string& key,
                                                 bool related) {
  ASSIGN_OR_RETURN(auto items, top.List(key, false));
  std::vector<Identifier> identifiers;
  for (size_t i = 0; i < items.size(); ++i) {
    std::string field = Item(key, i);
    auto map_or = related ? FieldMap::Open(items[i], field, {"type", "value", "relation"})
                          : FieldMap::Open(items[i], field, {"type", "value"});
    ASSIGN_OR_RETURN(auto map, std::move(map_or));
    Identifier identifier;
    ASSIGN_OR_RETURN(identifier.type, map.String("type", true));
    ASSIGN_OR_RETURN(identifier.value, map.String("value", true));
    if (related) {
      ASSIGN_OR_RETURN(identifier.relation, map.String("relation", true));
    }
    identifiers.push_back(std::move(identifier));
  }
  return identifiers;
}

Result<std::vector<std::string>> ParseTags(const FieldMap& top) {
  ASSIGN_OR_RETURN(auto items, top.List("tags", false));
  std::vector<std::string> tags;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].IsScalar()) return FieldError(Item("tags", i), "must be a string");
    const std::string& tag = items[i].Scalar();
    if (tag.empty() || tag.size() > 64) return FieldError(Item("tags", i), "must be 1-64 chars");
    tags.push_back(tag);
  }
  return tags;
}

Result<std::vector<ManifestFile>> ParseFiles(const FieldMap& top, bool required) {
  ASSIGN_OR_RETURN(auto items, top.List("files", required));
  std::vector<ManifestFile> files;
  std::set<std::string> seen;
  for (size_t i = 0; i < items.size(); ++i) {
    std::string field = Item("files", i);
    ManifestFile file;
    if (items[i].IsScalar()) {
      file.path = items[i].Scalar();
    } else {
      ASSIGN_OR_RETURN(auto map, FieldMap::Open(items[i], field, {"path", "sha256"}));
      ASSIGN_OR_RETURN(file.path, map.String("path", true));
      ASSIGN_OR_RETURN(std::string digest, map.String("sha256", false));
      if (!digest.empty()) {
        file.sha256 = NormalizeSha256(digest);
        if (file.sha256.empty()) return FieldError(Child(field, "sha256"), "not a SHA-256 digest");
      }
      field = Child(field, "path");
    }
    Status valid = ValidatePackagePath(file.path);
    if (!valid.ok()) return FieldError(field, valid.message());
    if (!seen.insert(file.path).second)
      return FieldError(field, "duplicate file '" + file.path + "'");
    files.push_back(std::move(file));
  }
  return files;
}

Result<std::map<std::string, double>> ParseMetrics(const FieldMap& top) {
  std::map<std::string, double> metrics;
  auto node = top.Get("metrics");
  if (!node) return metrics;
  if (!node->IsMap()) return FieldError("metrics", "must be a mapping");
  for (auto it = node->begin(); it != node->end(); ++it) {
    if (!it->first.IsScalar()) return FieldError("metrics", "keys must be strings");
    std::string field = Child("metrics", it->first.Scalar());
    ASSIGN_OR_RETURN(double value, ToNumber(it->second, field));
    if (!metrics.emplace(it->first.Scalar(), value).second)
      return FieldError(field, "duplicate key");
  }
  return metrics;
}

// ---- Signature -----------------------------------------------------------

bool IsTensorName(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

Result<std::vector<TensorSpec>> ParseTensorSpecs(const FieldMap& signature, std::string_view key) {
  ASSIGN_OR_RETURN(auto items, signature.List(key, true));
  std::vector<TensorSpec> specs;
  std::set<std::string> seen;
  for (size_t i = 0; i < items.size(); ++i) {
    std::string field = Item(signature.Path(key), i);
    ASSIGN_OR_RETURN(auto map, FieldMap::Open(items[i], field, {"name", "datatype", "shape"}));
    TensorSpec spec;
    ASSIGN_OR_RETURN(spec.name, map.String("name", true));
    if (!IsTensorName(spec.name)) {
      return FieldError(map.Path("name"), "may only contain letters, digits, '_', '.' and '-'");
    }
    if (!seen.insert(spec.name).second) {
      return FieldError(map.Path("name"), "duplicate tensor '" + spec.name + "'");
    }
    ASSIGN_OR_RETURN(spec.datatype, map.String("datatype", true));
    if (!IsKnownDatatype(spec.datatype)) {
      return FieldError(map.Path("datatype"),
                        "unknown datatype '" + spec.datatype + "'" + OneOf(kDatatypes));
    }
    auto shape = map.Get("shape");
    if (!shape) return FieldError(map.Path("shape"), "required");
    if (!shape->IsSequence()) return FieldError(map.Path("shape"), "must be a list");
    for (size_t d = 0; d < shape->size(); ++d) {
      ASSIGN_OR_RETURN(int64_t dim, ToInteger((*shape)[d], Item(map.Path("shape"), d)));
      if (dim < -1) return FieldError(Item(map.Path("shape"), d), "must be >= -1");
      spec.shape.push_back(dim);
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

Status ParseSignature(const FieldMap& top, Manifest& manifest) {
  auto node = top.Get("signature");
  if (!node) return FieldError("signature", "required");
  ASSIGN_OR_RETURN(auto signature, FieldMap::Open(*node, "signature", {"inputs", "outputs"}));
  ASSIGN_OR_RETURN(manifest.inputs, ParseTensorSpecs(signature, "inputs"));
  ASSIGN_OR_RETURN(manifest.outputs, ParseTensorSpecs(signature, "outputs"));
  return Status::Ok();
}

// ---- Batching ------------------------------------------------------------

constexpr int64_t kMaxBatchSize = 4096;
constexpr int64_t kMaxQueueDelayUs = 1'000'000;

// A batch joins requests along the first dimension of every tensor, so each
// one must have a variable first dimension.
Status CheckBatchDimension(const std::vector<TensorSpec>& specs, const char* key) {
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].shape.empty() || specs[i].shape[0] != -1) {
      return FieldError("batching", Item(Child("signature", key), i) + " '" + specs[i].name +
                                        "' must have -1 as its first dimension (the batch "
                                        "dimension) to be batched");
    }
  }
  return Status::Ok();
}

}  // namespace

// `batching`, after the signature it is checked against. Shared with the
// admin override of serving settings (manifest_override.cc).
Status manifest_internal::ParseBatching(const FieldMap& top, Manifest& manifest) {
  auto node = top.Get("batching");
  if (!node) return Status::Ok();
  ASSIGN_OR_RETURN(
      auto map, FieldMap::Open(*node, "batching",
                               {"max_batch_size", "max_queue_delay_us", "preferred_batch_sizes"}));
  BatchingConfig& batching = manifest.batching;
  ASSIGN_OR_RETURN(int64_t max_batch_size, IntegerIn(map, "max_batch_size", 0, kMaxBatchSize, 0));
  batching.max_batch_size = static_cast<uint32_t>(max_batch_size);
  ASSIGN_OR_RETURN(int64_t delay, IntegerIn(map, "max_queue_delay_us", 0, kMaxQueueDelayUs, 0));
  batching.max_queue_delay_us = static_cast<uint32_t>(delay);
  ASSIGN_OR_RETURN(auto sizes, map.List("preferred_batch_sizes", false));
  std::string sizes_field = map.Path("preferred_batch_sizes");
  if (!sizes.empty() && max_batch_size == 0) {
    return FieldError(sizes_field, "only allowed when max_batch_size > 0");
  }
  for (size_t i = 0; i < sizes.size(); ++i) {
    std::string field = Item(sizes_field, i);
    ASSIGN_OR_RETURN(int64_t size, ToInteger(sizes[i], field));
    if (size < 1 || size > max_batch_size) {
      return FieldError(field,
                        "must be 1..max_batch_size (" + std::to_string(max_batch_size) + ")");
    }
    if (!batching.preferred_batch_sizes.empty() && size <= batching.preferred_batch_sizes.back()) {
      return FieldError(field, "must be greater than the size before it (strictly increasing)");
    }
    batching.preferred_batch_sizes.push_back(static_cast<uint32_t>(size));
  }
  if (batching.enabled() && manifest.backend == "pipeline") {
    return FieldError("batching",
                      "not allowed for a pipeline (its steps batch by their own manifests)");
  }
  if (batching.enabled()) {
    RETURN_IF_ERROR(CheckBatchDimension(manifest.inputs, "inputs"));
    RETURN_IF_ERROR(CheckBatchDimension(manifest.outputs, "outputs"));
  }
  return Status::Ok();
}

namespace {

// ---- The document ----------------------------------------------------------

// Fields only servables have; only servables may carry them.
Status ParseServableFields(const FieldMap& top, Manifest& manifest, Budget& budget) {
  ASSIGN_OR_RETURN(manifest.backend, top.String("backend", true));
  if (!IsKnownBackend(manifest.backend)) {
    return FieldError("backend",
                      "unknown backend '" + manifest.backend + "'" + OneOf(KnownBackends()));
  }
  // A pipeline only references other servables; it may ship no files.
  ASSIGN_OR_RETURN(manifest.files, ParseFiles(top, manifest.backend != "pipeline"));
  RETURN_IF_ERROR(ParseSignature(top, manifest));
  RETURN_IF_ERROR(ParseBatching(top, manifest));
  RETURN_IF_ERROR(ParsePipeline(top, manifest));
  ASSIGN_OR_RETURN(manifest.cache, top.Bool("cache", false));
  RETURN_IF_ERROR(ParseQueue(top, manifest));
  RETURN_IF_ERROR(ParsePython(top, manifest));
  ASSIGN_OR_RETURN(manifest.examples, ParseExamples(top, manifest, budget));
  return Status::Ok();
}

Status ParseDatasetFields(const FieldMap& top, Manifest& manifest) {
  for (const char* key :
       {"backend", "signature", "examples", "batching", "cache", "queue", "pipeline", "python"}) {
    if (top.Get(key)) return FieldError(key, "not allowed for a dataset");
  }
  ASSIGN_OR_RETURN(manifest.files, ParseFiles(top, true));
  return Status::Ok();
}

Result<Manifest> ParseDocument(const YAML::Node& root) {
  ASSIGN_OR_RETURN(auto top,
                   FieldMap::Open(root, "", {"name",     "kind",        "title",
                                             "creators", "description", "year",
                                             "license",  "identifiers", "related_identifiers",
                                             "domain",   "tags",        "backend",
                                             "files",    "signature",   "task",
                                             "metrics",  "config",      "examples",
                                             "batching", "cache",       "queue",
                                             "pipeline", "python"}));
  Manifest manifest;
  Budget budget;
  ASSIGN_OR_RETURN(manifest.name, top.String("name", true));
  Status name_ok = ValidateObjectName(manifest.name);
  if (!name_ok.ok()) return FieldError("name", name_ok.message());
  ASSIGN_OR_RETURN(std::string kind, top.String("kind", false));
  if (kind == "dataset") {
    manifest.kind = PackageKind::kDataset;
  } else if (!kind.empty() && kind != "servable") {
    return FieldError("kind", "must be 'servable' or 'dataset'");
  }
  ASSIGN_OR_RETURN(manifest.title, top.String("title", true));
  ASSIGN_OR_RETURN(manifest.creators, ParseCreators(top));
  ASSIGN_OR_RETURN(manifest.description, top.String("description", false));
  auto year = top.Get("year");
  if (!year) return FieldError("year", "required");
  ASSIGN_OR_RETURN(int64_t year_value, ToInteger(*year, "year"));
  if (year_value < 1000 || year_value > 9999) return FieldError("year", "must be 1000..9999");
  manifest.year = static_cast<int>(year_value);
  ASSIGN_OR_RETURN(manifest.license, top.String("license", false));
  ASSIGN_OR_RETURN(manifest.identifiers, ParseIdentifiers(top, "identifiers", false));
  ASSIGN_OR_RETURN(manifest.related_identifiers,
                   ParseIdentifiers(top, "related_identifiers", true));
  ASSIGN_OR_RETURN(manifest.domain, top.String("domain", false));
  ASSIGN_OR_RETURN(manifest.tags, ParseTags(top));
  ASSIGN_OR_RETURN(manifest.task, top.String("task", false));
  ASSIGN_OR_RETURN(manifest.metrics, ParseMetrics(top));
  if (auto config = top.Get("config")) {
    if (!config->IsMap()) return FieldError("config", "must be a mapping");
    ASSIGN_OR_RETURN(manifest.config, ToJsonValue(*config, "config", budget));
  }
  if (manifest.kind == PackageKind::kDataset) {
    RETURN_IF_ERROR(ParseDatasetFields(top, manifest));
  } else {
    RETURN_IF_ERROR(ParseServableFields(top, manifest, budget));
  }
  return manifest;
}

json TensorSpecsJson(const std::vector<TensorSpec>& specs) {
  json array = json::array();
  for (const TensorSpec& spec : specs) {
    array.push_back({{"name", spec.name}, {"datatype", spec.datatype}, {"shape", spec.shape}});
  }
  return array;
}

json IdentifiersJson(const std::vector<Identifier>& identifiers) {
  json array = json::array();
  for (const Identifier& id : identifiers) {
    json item = {{"type", id.type}, {"value", id.value}};
    if (!id.relation.empty()) item["relation"] = id.relation;
    array.push_back(std::move(item));
  }
  return array;
}

}  // namespace

Result<Manifest> ParseManifest(std::string_view yaml_text) {
  std::vector<YAML::Node> documents;
  try {
    Result<std::vector<YAML::Node>> loaded = LoadYamlDocuments(yaml_text);
    if (!loaded.ok()) {
      return Unprocessable("manifest is not valid YAML: " + loaded.status().message());
    }
    documents = std::move(*loaded);
  } catch (const YAML::Exception& e) {
    return Unprocessable(std::string("manifest is not valid YAML: ") + e.what());
  }
  if (documents.empty()) return Unprocessable("manifest is empty");
  if (documents.size() > 1) return Unprocessable("manifest must be a single YAML document");
  try {
    ASSIGN_OR_RETURN(Manifest manifest, ParseDocument(documents.front()));
    // yaml-cpp passes invalid UTF-8 through; serialising now finds it here
    // rather than at the API edge, where dump() would throw.
    (void)manifest.ToJson().dump();
    return manifest;
  } catch (const YAML::Exception& e) {
    return Unprocessable(std::string("manifest: ") + e.what());
  } catch (const json::exception&) {
    return Unprocessable("manifest: text is not valid UTF-8");
  }
}

nlohmann::json Manifest::ToJson() const {
  json out = {{"name", name}, {"kind", PackageKindName(kind)}, {"title", title}, {"year", year}};
  json creator_list = json::array();
  for (const Creator& creator : creators) {
    json item = {{"name", creator.name}};
    if (!creator.affiliation.empty()) item["affiliation"] = creator.affiliation;
    if (!creator.orcid.empty()) item["orcid"] = creator.orcid;
    creator_list.push_back(std::move(item));
  }
  out["creators"] = std::move(creator_list);
  auto put = [&out](const char* key, const std::string& value) {
    if (!value.empty()) out[key] = value;
  };
  put("description", description);
  put("license", license);
  put("domain", domain);
  put("backend", backend);
  put("task", task);
  if (!identifiers.empty()) out["identifiers"] = IdentifiersJson(identifiers);
  if (!related_identifiers.empty())
    out["related_identifiers"] = IdentifiersJson(related_identifiers);
  if (!tags.empty()) out["tags"] = tags;
  json file_list = json::array();
  for (const ManifestFile& file : files) {
    json item = {{"path", file.path}};
    if (!file.sha256.empty()) item["sha256"] = file.sha256;
    file_list.push_back(std::move(item));
  }
  out["files"] = std::move(file_list);
  if (!inputs.empty() || !outputs.empty()) {
    out["signature"] = {{"inputs", TensorSpecsJson(inputs)}, {"outputs", TensorSpecsJson(outputs)}};
  }
  if (!metrics.empty()) out["metrics"] = metrics;
  if (config.is_object() && !config.empty()) out["config"] = config;
  if (examples.is_array() && !examples.empty()) out["examples"] = examples;
  if (batching.enabled()) {
    out["batching"] = {{"max_batch_size", batching.max_batch_size},
                       {"max_queue_delay_us", batching.max_queue_delay_us},
                       {"preferred_batch_sizes", batching.preferred_batch_sizes}};
  }
  if (cache) out["cache"] = true;
  if (!queue.empty()) {
    json section = json::object();
    if (queue.max_size != 0) section["max_size"] = queue.max_size;
    if (queue.priority_levels != 0) section["priority_levels"] = queue.priority_levels;
    if (queue.default_priority_level != 0) {
      section["default_priority_level"] = queue.default_priority_level;
    }
    if (queue.default_timeout_us != 0) section["default_timeout_us"] = queue.default_timeout_us;
    out["queue"] = std::move(section);
  }
  if (!pipeline.empty()) out["pipeline"] = manifest_internal::PipelineJson(pipeline);
  if (!python.empty()) {
    json section = json::object();
    if (!python.requires_modules.empty()) section["requires"] = python.requires_modules;
    if (!python.environment.empty()) section["environment"] = python.environment;
    out["python"] = std::move(section);
  }
  return out;
}

namespace {

// Well-formed UTF-8 (RFC 3629): no overlong forms, surrogates or code points
// past U+10FFFF.
bool IsValidUtf8(std::string_view text) {
  static constexpr uint32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
  size_t i = 0;
  while (i < text.size()) {
    auto lead = static_cast<unsigned char>(text[i]);
    size_t length = lead < 0x80             ? 1
                    : (lead & 0xE0) == 0xC0 ? 2
                    : (lead & 0xF0) == 0xE0 ? 3
                    : (lead & 0xF8) == 0xF0 ? 4
                                            : 0;
    if (length == 0 || i + length > text.size()) return false;
    if (length == 1) {
      ++i;
      continue;
    }
    uint32_t code = lead & (0x7F >> length);
    for (size_t k = 1; k < length; ++k) {
      auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    if (code < kSmallest[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    i += length;
  }
  return true;
}

// A client's path as one safe line of valid UTF-8 for an error message:
// control bytes, and every non-ASCII byte of a path that is not UTF-8, as \xNN.
std::string PrintablePath(std::string_view path) {
  static constexpr size_t kShown = 200;
  bool escape_high = !IsValidUtf8(path);
  size_t cut = std::min(path.size(), kShown);
  while (cut < path.size() && cut > 0 && (static_cast<unsigned char>(path[cut]) & 0xC0) == 0x80) {
    --cut;  // not inside a multibyte character
  }
  std::string shown;
  for (char c : path.substr(0, cut)) {
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f || (escape_high && byte >= 0x80)) {
      static constexpr char kHex[] = "0123456789abcdef";
      shown.append("\\x").append(1, kHex[byte >> 4]).append(1, kHex[byte & 15]);
    } else {
      shown += c;
    }
  }
  if (cut < path.size()) shown += "...";
  return shown;
}

}  // namespace

Status ValidatePackagePath(std::string_view path) {
  auto refuse = [&](const std::string& why) {
    return InvalidArgument("invalid path '" + PrintablePath(path) + "': " + why);
  };
  if (path.empty()) return refuse("empty");
  if (path.size() > 1024) return refuse("longer than 1024 bytes");
  if (path.front() == '/') return refuse("absolute");
  for (char c : path) {
    auto byte = static_cast<unsigned char>(c);
    if (byte == 0) return refuse("contains NUL");
    if (c == '\\') return refuse("contains a backslash");
    // Beyond the header's rules: a newline would break the "<sha256>  <path>"
    // lines the package digest is computed over, so control characters go too.
    if (byte < 0x20 || byte == 0x7f) return refuse("contains a control character");
  }
  // Also beyond them: paths end up in JSON, which must be valid UTF-8.
  if (!IsValidUtf8(path)) return refuse("not valid UTF-8");
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view component = path.substr(start, end - start);
    if (component.empty()) return refuse("empty path component");
    if (component == "." || component == "..") {
      return refuse("'" + std::string(component) + "' component");
    }
    // NAME_MAX: such a file could not be extracted on Linux.
    if (component.size() > 255) return refuse("path component longer than 255 bytes");
    start = end + 1;
  }
  return Status::Ok();
}

Status CheckManifestFiles(const Manifest& manifest, const std::set<std::string>& package_files) {
  for (size_t i = 0; i < manifest.files.size(); ++i) {
    const std::string& path = manifest.files[i].path;
    if (package_files.count(path) != 0) continue;
    // A listed directory: the files under it.
    auto under = package_files.lower_bound(path + "/");
    bool directory = under != package_files.end() && under->rfind(path + "/", 0) == 0;
    if (!directory) return FieldError(Item("files", i), "'" + path + "' is not in the package");
    if (!manifest.files[i].sha256.empty()) {
      return FieldError(Item("files", i), "'" + path + "' is a directory, which has no sha256");
    }
  }
  return Status::Ok();
}

}  // namespace orrery
