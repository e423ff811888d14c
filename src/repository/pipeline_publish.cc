// Pinning a pipeline's steps at publish. Every error is kUnprocessable
// starting "pipeline step '<name>'", so that the publisher sees which step
// to fix; an invisible servable reads exactly like an absent one.
#include "repository/pipeline_publish.h"

#include <map>

namespace orrery {
namespace {

struct PinnedStep {
  std::string label;  // "tenant/name:3", for messages
  Manifest manifest;
};

Status StepError(const std::string& step, const std::string& message) {
  return Unprocessable("pipeline step '" + step + "': " + message);
}

std::string SpecText(const TensorSpec& spec) {
  std::string text = spec.datatype + " [";
  for (size_t i = 0; i < spec.shape.size(); ++i) {
    text += (i ? "," : "") + std::to_string(spec.shape[i]);
  }
  return text + "]";
}

const TensorSpec* FindSpec(const std::vector<TensorSpec>& specs, const std::string& name) {
  for (const TensorSpec& spec : specs) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

bool ShapesAgree(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i] && a[i] != -1 && b[i] != -1) return false;
  }
  return true;
}

Result<PinnedStep> Pin(Repository& repository, const Caller& caller, PipelineStep& step) {
  Result<QualifiedName> name = ParseQualifiedName(step.servable, caller.tenant);
  if (!name.ok()) return StepError(step.name, name.status().message());
  Result<Repository::ServableVersion> found =
      repository.ResolveServable(caller, *name, step.version);
  if (!found.ok()) {
    if (found.status().code() != Code::kNotFound) return found.status();
    return StepError(step.name, "servable " + name->ToString() + " version " +
                                    step.version.ToString() + ": " + found.status().message());
  }
  PinnedStep pinned;
  pinned.label = found->name.ToString() + ":" + std::to_string(found->version);
  Result<Manifest> manifest = ParseManifest(found->manifest);
  if (!manifest.ok())
    return StepError(step.name, pinned.label + ": " + manifest.status().message());
  if (manifest->backend == "pipeline") {
    return StepError(step.name, pinned.label + " is itself a pipeline; pipelines do not nest");
  }
  pinned.manifest = std::move(*manifest);
  step.servable = found->name.ToString();
  step.version = VersionRef{found->version, ""};
  return pinned;
}

// The spec of the tensor `ref` reads; `who` names the reader for messages.
Result<const TensorSpec*> SourceSpec(const Manifest& pipeline,
                                     const std::map<std::string, PinnedStep>& pinned,
                                     const PipelineRef& ref, const std::string& step,
                                     const std::string& who) {
  if (ref.step.empty()) return FindSpec(pipeline.inputs, ref.tensor);  // the parser checked it
  const PinnedStep& source = pinned.at(ref.step);
  const TensorSpec* spec = FindSpec(source.manifest.outputs, ref.tensor);
  if (spec == nullptr) {
    return StepError(step, who + " <- " + ref.ToString() + ": servable " + source.label +
                               " has no output '" + ref.tensor + "'");
  }
  return spec;
}

Status CheckConnection(const TensorSpec& source, const TensorSpec& target, const std::string& step,
                       const std::string& what) {
  if (source.datatype != target.datatype) {
    return StepError(
        step, what + ": datatypes differ (" + SpecText(source) + " into " + SpecText(target) + ")");
  }
  if (!ShapesAgree(source.shape, target.shape)) {
    return StepError(
        step, what + ": shapes differ (" + SpecText(source) + " into " + SpecText(target) + ")");
  }
  return Status::Ok();
}

Status CheckStepInputs(const Manifest& pipeline, const std::map<std::string, PinnedStep>& pinned,
                       const PipelineStep& step) {
  const PinnedStep& self = pinned.at(step.name);
  for (const TensorSpec& spec : self.manifest.inputs) {
    if (step.inputs.count(spec.name) == 0) {
      return StepError(step.name, "input '" + spec.name + "' of " + self.label + " is not mapped");
    }
  }
  for (const auto& [input, ref] : step.inputs) {
    const TensorSpec* target = FindSpec(self.manifest.inputs, input);
    if (target == nullptr) {
      return StepError(step.name, "servable " + self.label + " has no input '" + input + "'");
    }
    std::string what = "input '" + input + "' <- " + ref.ToString();
    ASSIGN_OR_RETURN(const TensorSpec* source,
                     SourceSpec(pipeline, pinned, ref, step.name, "input '" + input + "'"));
    RETURN_IF_ERROR(CheckConnection(*source, *target, step.name, what));
  }
  return Status::Ok();
}

}  // namespace

Status PinPipelineSteps(Repository& repository, const Caller& caller, Manifest& manifest) {
  std::map<std::string, PinnedStep> pinned;
  for (PipelineStep& step : manifest.pipeline.steps) {
    ASSIGN_OR_RETURN(PinnedStep one, Pin(repository, caller, step));
    pinned.emplace(step.name, std::move(one));
  }
  for (const PipelineStep& step : manifest.pipeline.steps) {
    RETURN_IF_ERROR(CheckStepInputs(manifest, pinned, step));
  }
  for (const auto& [output, ref] : manifest.pipeline.outputs) {
    const TensorSpec* target = FindSpec(manifest.outputs, output);  // the parser checked it
    std::string step = ref.step.empty() ? std::string(kPipelineInputs) : ref.step;
    std::string who = "pipeline output '" + output + "'";
    ASSIGN_OR_RETURN(const TensorSpec* source, SourceSpec(manifest, pinned, ref, step, who));
    RETURN_IF_ERROR(CheckConnection(*source, *target, step, who + " <- " + ref.ToString()));
  }
  return Status::Ok();
}

}  // namespace orrery
