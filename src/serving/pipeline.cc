// How a pipeline request moves (see pipeline.h for the contract). The
// invariant that keeps it simple: `running` counts the steps submitted and
// not yet answered, and it is raised BEFORE a step is submitted, so a step
// that finishes on the submitting thread can never make the request look
// finished while its siblings are still being submitted. The request is
// answered exactly once, by whichever thread brings `running` to zero when
// every step succeeded or one failed.
#include "serving/pipeline.h"

#include <map>

#include "serving/signature.h"

namespace orrery {
namespace {

using Clock = std::chrono::steady_clock;

int64_t Micros(Clock::duration duration) {
  return std::chrono::duration_cast<std::chrono::microseconds>(duration).count();
}

Status StepError(const std::string& step, const std::string& label, const Status& status) {
  return Status(status.code(), "step '" + step + "' (" + label + "): " + status.message());
}

size_t IndexOf(const std::vector<TensorSpec>& specs, const std::string& name) {
  size_t i = 0;
  while (i < specs.size() && specs[i].name != name) ++i;
  return i;
}

}  // namespace

struct Pipeline::Request {
  struct Timing {
    bool ran = false;
    bool cache_hit = false;  // answered by the response cache: no instance ran
    Clock::time_point start, end;
    std::chrono::nanoseconds queued{0}, computed{0};
  };

  InferJob job;  // the pipeline's inputs, deadline and done
  std::mutex mutex;
  std::vector<std::vector<Tensor>> outputs;  // per step; written under mutex as it succeeds
  std::vector<int> waiting;                  // GUARDED_BY(mutex): per step, upstream not done
  size_t unfinished = 0;                     // GUARDED_BY(mutex): steps not succeeded yet
  size_t running = 0;                        // GUARDED_BY(mutex): submitted, not answered
  bool failed = false;                       // GUARDED_BY(mutex)
  InferOutcome failure;                      // GUARDED_BY(mutex): the first failure
  std::vector<Timing> timings;               // per step; start set before its submit
};

Result<std::unique_ptr<Pipeline>> Pipeline::Create(const ResolvedServable& servable,
                                                   std::unique_ptr<StepResolver> resolver,
                                                   TaskPool* fanout) {
  const Manifest& manifest = servable.manifest;
  if (manifest.pipeline.empty()) return Unprocessable(servable.key + " has no pipeline section");
  std::unique_ptr<Pipeline> pipeline(new Pipeline(std::move(resolver), fanout));
  std::map<std::string, size_t> index;
  for (const PipelineStep& spec : manifest.pipeline.steps) {
    Step step;
    step.name = spec.name;
    Result<QualifiedName> name = ParseQualifiedName(spec.servable, servable.info.name.tenant);
    if (!name.ok() || !spec.version.is_number()) {
      return Unprocessable("step '" + spec.name + "': '" + spec.servable + "' version " +
                           spec.version.ToString() + " is not pinned to a published version");
    }
    step.servable = *name;
    step.version = spec.version.number;
    step.label = name->ToString() + ":" + std::to_string(step.version);
    Result<std::shared_ptr<Model>> model = pipeline->resolver_->Acquire(*name, step.version);
    if (!model.ok()) return StepError(step.name, step.label, model.status());
    const Manifest& step_manifest = (*model)->servable().manifest;
    if (step_manifest.backend == "pipeline") {
      return Unprocessable("step '" + step.name + "' (" + step.label + ") is itself a pipeline");
    }
    step.signature.inputs = step_manifest.inputs;
    step.signature.outputs = step_manifest.outputs;
    index[step.name] = pipeline->steps_.size();
    pipeline->steps_.push_back(std::move(step));
  }
  auto source_of = [&](const PipelineRef& ref, const std::string& reader) -> Result<Source> {
    if (ref.step.empty()) {
      size_t i = IndexOf(manifest.inputs, ref.tensor);
      if (i < manifest.inputs.size()) return Source{-1, i};
    } else if (auto it = index.find(ref.step); it != index.end()) {
      const Step& source = pipeline->steps_[it->second];
      size_t i = IndexOf(source.signature.outputs, ref.tensor);
      if (i < source.signature.outputs.size()) return Source{static_cast<int>(it->second), i};
    }
    return Unprocessable(reader + ": nothing provides '" + ref.ToString() + "'");
  };
  for (size_t i = 0; i < manifest.pipeline.steps.size(); ++i) {
    Step& step = pipeline->steps_[i];
    for (const auto& [input, ref] : manifest.pipeline.steps[i].inputs) {
      ASSIGN_OR_RETURN(Source source, source_of(ref, "step '" + step.name + "'"));
      step.inputs.emplace_back(input, source);
      if (source.step < 0) continue;
      std::vector<size_t>& dependents = pipeline->steps_[source.step].dependents;
      if (std::find(dependents.begin(), dependents.end(), i) != dependents.end()) continue;
      dependents.push_back(i);
      ++step.upstream;
    }
  }
  for (const TensorSpec& spec : manifest.outputs) {
    auto ref = manifest.pipeline.outputs.find(spec.name);
    if (ref == manifest.pipeline.outputs.end()) {
      return Unprocessable("pipeline output '" + spec.name + "' is not mapped");
    }
    ASSIGN_OR_RETURN(Source source, source_of(ref->second, "output '" + spec.name + "'"));
    pipeline->outputs_.emplace_back(spec.name, source);
  }
  for (size_t i = 0; i < pipeline->steps_.size(); ++i) {
    if (pipeline->steps_[i].upstream == 0) pipeline->roots_.push_back(i);
  }
  return pipeline;
}

void Pipeline::Run(InferJob job) {
  auto request = std::make_shared<Request>();
  request->job = std::move(job);
  request->outputs.resize(steps_.size());
  request->timings.resize(steps_.size());
  for (const Step& step : steps_) request->waiting.push_back(step.upstream);
  request->unfinished = steps_.size();
  request->running = roots_.size();  // no other thread knows the request yet
  Start(request, roots_);
}

void Pipeline::Start(const std::shared_ptr<Request>& request, std::vector<size_t> ready) {
  // `ready` is a copy: the last Submit may answer the request, after which
  // this pipeline may be destroyed (its model unloaded).
  for (size_t k = 0; k < ready.size(); ++k) Submit(request, ready[k], k + 1 < ready.size());
}

void Pipeline::Submit(const std::shared_ptr<Request>& request, size_t index, bool may_hand_off) {
  const Step& step = steps_[index];
  bool failed = false;
  {
    std::lock_guard lock(request->mutex);
    failed = request->failed;
  }
  // Counted as running by whoever made it ready: a step that does not start
  // ends through StepDone too.
  if (failed) return StepDone(request, index, {Unavailable("not started"), {}, false});
  if (Clock::now() >= request->job.deadline) {
    return StepDone(request, index,
                    {Unavailable("the request's time ran out before the step started"), {}, false});
  }
  Result<std::shared_ptr<Model>> model = resolver_->Acquire(step.servable, step.version);
  if (!model.ok()) return StepDone(request, index, {model.status(), {}, false});
  std::vector<Tensor> inputs;
  inputs.reserve(step.inputs.size());
  for (const auto& [name, source] : step.inputs) {
    // Sources finished before this step became ready (under the mutex).
    inputs.push_back(source.step < 0 ? request->job.inputs[source.index]
                                     : request->outputs[source.step][source.index]);
    inputs.back().name = name;
  }
  Result<std::vector<Tensor>> bound = BindInputs(step.signature, std::move(inputs));
  if (!bound.ok()) return StepDone(request, index, {bound.status(), {}, false});
  InferJob job;
  job.inputs = std::move(*bound);
  job.deadline = request->job.deadline;
  request->timings[index].ran = true;
  request->timings[index].start = job.submitted;
  job.done = [this, request, index](InferOutcome outcome) {
    StepDone(request, index, std::move(outcome));
  };
  std::shared_ptr<Model> target = std::move(*model);
  if (may_hand_off && fanout_ != nullptr && target->RunsOnCaller()) {
    fanout_->Post([target, job = std::move(job)]() mutable { target->Submit(std::move(job)); });
    return;
  }
  target->Submit(std::move(job));
}

void Pipeline::StepDone(const std::shared_ptr<Request>& request, size_t index,
                        InferOutcome outcome) {
  const Step& step = steps_[index];
  if (outcome.status.ok()) outcome.status = CheckOutputs(step.signature, outcome.outputs);
  std::vector<size_t> ready;
  std::unique_lock lock(request->mutex);
  --request->running;
  Request::Timing& timing = request->timings[index];
  timing.end = Clock::now();
  timing.queued = outcome.queued;
  timing.computed = outcome.computed;
  timing.cache_hit = outcome.cache_hit;
  if (!outcome.status.ok()) {
    if (!request->failed) {
      request->failed = true;
      request->failure.status = StepError(step.name, step.label, outcome.status);
      request->failure.retry_later = outcome.retry_later;
    }
  } else if (!request->failed) {
    request->outputs[index] = std::move(outcome.outputs);
    --request->unfinished;
    for (size_t next : step.dependents) {
      if (--request->waiting[next] == 0) ready.push_back(next);
    }
    request->running += ready.size();
  }
  bool answer = request->running == 0 && (request->failed || request->unfinished == 0);
  lock.unlock();
  if (answer) return Answer(*request);
  if (!ready.empty()) Start(request, std::move(ready));
}

void Pipeline::Answer(Request& request) {
  // No step runs any more: the request's fields are this thread's alone.
  InferOutcome outcome;
  if (request.failed) {
    outcome = std::move(request.failure);
  } else {
    for (const auto& [name, source] : outputs_) {
      outcome.outputs.push_back(source.step < 0 ? request.job.inputs[source.index]
                                                : request.outputs[source.step][source.index]);
      outcome.outputs.back().name = name;
    }
  }
  if (request.job.report_timings) {
    outcome.parameters = nlohmann::json::object();
    for (size_t i = 0; i < steps_.size(); ++i) {
      const Request::Timing& timing = request.timings[i];
      if (!timing.ran) continue;
      std::string prefix = "pipeline." + steps_[i].name + ".";
      outcome.parameters[prefix + "start_us"] = Micros(timing.start - request.job.submitted);
      outcome.parameters[prefix + "duration_us"] = Micros(timing.end - timing.start);
      if (!timing.cache_hit) {
        outcome.parameters[prefix + "queue_us"] = Micros(timing.queued);
        outcome.parameters[prefix + "compute_us"] = Micros(timing.computed);
      }
    }
  }
  auto done = std::move(request.job.done);
  done(std::move(outcome));  // last: the pipeline may be destroyed once it returns
}

std::string Pipeline::NotReadyReason() const {
  for (const Step& step : steps_) {
    std::shared_ptr<Model> model = resolver_->Find(step.label);
    if (model != nullptr && model->state() == ModelState::kFailed) {
      return "step '" + step.name + "' (" + step.label + "): " + model->reason();
    }
  }
  return "";
}

}  // namespace orrery
