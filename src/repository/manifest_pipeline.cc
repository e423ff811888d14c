// The `pipeline` section of a manifest: structure only. Everything that
// needs the catalog (the step servables exist, are visible, their tensors
// agree) is checked at publish (pipeline_publish.cc).
//
// Why references split at the first '.': step names are restricted to
// [A-Za-z0-9_-] so that `scale.y.z` can only mean tensor `y.z` of step
// `scale`, and `$inputs` can never be a step name.
#include <algorithm>
#include <cctype>
#include <functional>
#include <set>

#include "repository/manifest_internal.h"

namespace orrery {

std::string PipelineRef::ToString() const {
  return (step.empty() ? std::string(kPipelineInputs) : step) + "." + tensor;
}

namespace manifest_internal {
namespace {

using nlohmann::json;

constexpr size_t kMaxSteps = 64;
constexpr size_t kMaxStepNameLength = 64;

Status ValidateStepName(const std::string& name) {
  if (name.empty() || name.size() > kMaxStepNameLength) {
    return InvalidArgument("step names are 1-" + std::to_string(kMaxStepNameLength) + " chars");
  }
  if (!std::isalnum(static_cast<unsigned char>(name.front()))) {
    return InvalidArgument("step name '" + name + "' must start with a letter or digit");
  }
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') {
      return InvalidArgument("step name '" + name +
                             "' may only contain letters, digits, '_' and '-'");
    }
  }
  return Status::Ok();
}

Result<PipelineRef> ParseRef(const std::string& text, const std::string& field) {
  size_t dot = text.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == text.size()) {
    return FieldError(field, "'" + text + "' is not a reference: write '" + kPipelineInputs +
                                 ".<input>' or '<step>.<output>'");
  }
  PipelineRef ref;
  ref.step = text.substr(0, dot);
  ref.tensor = text.substr(dot + 1);
  if (ref.step == kPipelineInputs) {
    ref.step.clear();
  } else if (ref.step.front() == '$') {
    return FieldError(field, "unknown source '" + ref.step + "' (only " + kPipelineInputs + ")");
  }
  return ref;
}

// A mapping of tensor names to references (`inputs` of a step, `outputs`).
Result<std::map<std::string, PipelineRef>> ParseRefMap(const YAML::Node& node,
                                                       const std::string& field) {
  if (!node.IsMap() || node.size() == 0) return FieldError(field, "must be a non-empty mapping");
  std::map<std::string, PipelineRef> refs;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar() || it->first.Scalar().empty()) {
      return FieldError(field, "keys must be tensor names");
    }
    const std::string& name = it->first.Scalar();
    std::string item = Child(field, name);
    if (!it->second.IsScalar()) return FieldError(item, "must be a reference string");
    ASSIGN_OR_RETURN(PipelineRef ref, ParseRef(it->second.Scalar(), item));
    if (!refs.emplace(name, std::move(ref)).second) return FieldError(item, "duplicate key");
  }
  return refs;
}

Result<PipelineStep> ParseStep(const YAML::Node& node, const std::string& field) {
  ASSIGN_OR_RETURN(auto map,
                   FieldMap::Open(node, field, {"name", "servable", "version", "inputs"}));
  PipelineStep step;
  ASSIGN_OR_RETURN(step.name, map.String("name", true));
  Status name_ok = ValidateStepName(step.name);
  if (!name_ok.ok()) return FieldError(map.Path("name"), name_ok.message());
  ASSIGN_OR_RETURN(step.servable, map.String("servable", true));
  // Any valid tenant stands in for the publisher's: only the syntax is checked here.
  Status servable_ok = ParseQualifiedName(step.servable, "x").status();
  if (!servable_ok.ok()) return FieldError(map.Path("servable"), servable_ok.message());
  ASSIGN_OR_RETURN(std::string version, map.String("version", true));
  Result<VersionRef> ref = ParseVersionRef(version);
  if (!ref.ok()) return FieldError(map.Path("version"), ref.status().message());
  step.version = *ref;
  auto inputs = map.Get("inputs");
  if (!inputs) return FieldError(map.Path("inputs"), "required");
  ASSIGN_OR_RETURN(step.inputs, ParseRefMap(*inputs, map.Path("inputs")));
  return step;
}

// kUnprocessable unless `ref` names a known step or a pipeline input.
Status CheckSource(const PipelineRef& ref, const std::map<std::string, size_t>& steps,
                   const Manifest& manifest, const std::string& field) {
  if (!ref.step.empty()) {
    if (steps.count(ref.step) == 0) {
      return FieldError(field, "unknown step '" + ref.step + "' in '" + ref.ToString() + "'");
    }
    return Status::Ok();
  }
  for (const TensorSpec& spec : manifest.inputs) {
    if (spec.name == ref.tensor) return Status::Ok();
  }
  return FieldError(field, "the pipeline signature has no input '" + ref.tensor + "'");
}

// Depth-first search for a cycle; returns the steps on it ("a -> b -> a"),
// or "" when the steps form a DAG.
std::string FindCycle(const PipelineSpec& pipeline, const std::map<std::string, size_t>& index) {
  enum Mark { kUnseen, kOnPath, kDone };
  std::vector<Mark> marks(pipeline.steps.size(), kUnseen);
  std::vector<size_t> path;
  // Recursion is bounded by kMaxSteps.
  std::function<std::string(size_t)> visit = [&](size_t i) -> std::string {
    marks[i] = kOnPath;
    path.push_back(i);
    for (const auto& [input, ref] : pipeline.steps[i].inputs) {
      if (ref.step.empty()) continue;
      size_t next = index.at(ref.step);
      if (marks[next] == kOnPath) {
        std::string cycle;
        auto start = std::find(path.begin(), path.end(), next);
        for (auto it = start; it != path.end(); ++it) cycle += pipeline.steps[*it].name + " -> ";
        return cycle + pipeline.steps[next].name;
      }
      if (marks[next] == kUnseen) {
        std::string found = visit(next);
        if (!found.empty()) return found;
      }
    }
    path.pop_back();
    marks[i] = kDone;
    return "";
  };
  for (size_t i = 0; i < pipeline.steps.size(); ++i) {
    if (marks[i] != kUnseen) continue;
    std::string found = visit(i);
    if (!found.empty()) return found;
  }
  return "";
}

// References, outputs and the graph's shape, once every step is parsed.
Status CheckGraph(const Manifest& manifest, const std::map<std::string, size_t>& index) {
  const PipelineSpec& pipeline = manifest.pipeline;
  std::set<std::string> used;  // steps something reads from
  for (size_t i = 0; i < pipeline.steps.size(); ++i) {
    std::string field = Child(Item("pipeline.steps", i), "inputs");
    for (const auto& [input, ref] : pipeline.steps[i].inputs) {
      RETURN_IF_ERROR(CheckSource(ref, index, manifest, Child(field, input)));
      used.insert(ref.step);
    }
  }
  for (const auto& [output, ref] : pipeline.outputs) {
    RETURN_IF_ERROR(CheckSource(ref, index, manifest, Child("pipeline.outputs", output)));
    used.insert(ref.step);
  }
  for (const TensorSpec& spec : manifest.outputs) {
    if (pipeline.outputs.count(spec.name) == 0) {
      return FieldError("pipeline.outputs", "signature output '" + spec.name + "' is not mapped");
    }
  }
  for (const auto& mapped : pipeline.outputs) {
    const std::string& output = mapped.first;
    auto is_output = [&](const TensorSpec& spec) { return spec.name == output; };
    if (std::none_of(manifest.outputs.begin(), manifest.outputs.end(), is_output)) {
      return FieldError(Child("pipeline.outputs", output), "not an output of the signature");
    }
  }
  std::string cycle = FindCycle(pipeline, index);
  if (!cycle.empty()) return FieldError("pipeline.steps", "the steps form a cycle: " + cycle);
  for (size_t i = 0; i < pipeline.steps.size(); ++i) {
    if (used.count(pipeline.steps[i].name) == 0) {
      return FieldError(Item("pipeline.steps", i),
                        "step '" + pipeline.steps[i].name + "' feeds no other step and no output");
    }
  }
  return Status::Ok();
}

json RefMapJson(const std::map<std::string, PipelineRef>& refs) {
  json out = json::object();
  for (const auto& [name, ref] : refs) out[name] = ref.ToString();
  return out;
}

}  // namespace

Status ParsePipeline(const FieldMap& top, Manifest& manifest) {
  auto node = top.Get("pipeline");
  if (manifest.backend != "pipeline") {
    if (node) return FieldError("pipeline", "only allowed with backend: pipeline");
    return Status::Ok();
  }
  if (!node) return FieldError("pipeline", "required for backend: pipeline");
  ASSIGN_OR_RETURN(auto map, FieldMap::Open(*node, "pipeline", {"steps", "outputs"}));
  ASSIGN_OR_RETURN(auto items, map.List("steps", true));
  if (items.size() > kMaxSteps) {
    return FieldError("pipeline.steps", "at most " + std::to_string(kMaxSteps) + " steps");
  }
  PipelineSpec& pipeline = manifest.pipeline;
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < items.size(); ++i) {
    std::string field = Item("pipeline.steps", i);
    ASSIGN_OR_RETURN(PipelineStep step, ParseStep(items[i], field));
    if (!index.emplace(step.name, i).second) {
      return FieldError(Child(field, "name"), "duplicate step name '" + step.name + "'");
    }
    pipeline.steps.push_back(std::move(step));
  }
  auto outputs = map.Get("outputs");
  if (!outputs) return FieldError("pipeline.outputs", "required");
  ASSIGN_OR_RETURN(pipeline.outputs, ParseRefMap(*outputs, "pipeline.outputs"));
  return CheckGraph(manifest, index);
}

json PipelineJson(const PipelineSpec& pipeline) {
  json steps = json::array();
  for (const PipelineStep& step : pipeline.steps) {
    json version = step.version.is_number() ? json(step.version.number) : json(step.version.alias);
    steps.push_back({{"name", step.name},
                     {"servable", step.servable},
                     {"version", std::move(version)},
                     {"inputs", RefMapJson(step.inputs)}});
  }
  return {{"steps", std::move(steps)}, {"outputs", RefMapJson(pipeline.outputs)}};
}

}  // namespace manifest_internal
}  // namespace orrery
