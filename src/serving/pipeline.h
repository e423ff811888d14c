// Pipeline: serves a servable with backend `pipeline` — a DAG of steps, each
// a servable version pinned at publish (manifest.h, PipelineSpec) — by
// running every request through the steps' own models.
//
// The hook: a pipeline is a Composite (model.h). The model manager gives
// the pipeline's Model a Pipeline instead of loading a backend, so the
// pipeline is served by the same v2 routes (metadata, ready, infer, stats,
// verify) and counted by the same metrics as any servable, and loads no
// instances and starts no workers. No route knows about pipelines.
//
// A request: every step whose inputs are available is submitted to its
// step's Model through Model::Submit, so each step goes through its own
// queue, batcher and cache; the next steps start from the done callback of
// the last step they wait for, so no thread blocks waiting on a step.
// Independent steps run concurrently: of several steps that become ready
// at once, those whose model would run on the submitting thread
// (Model::RunsOnCaller) are handed to the fan-out pool, all but the last.
// Every step gets the request's deadline. The first step that fails fails
// the request: "step 'classify' (lab/mlp:3): <its error>", with the step's
// status code (a 4xx stays a 4xx, a 5xx a 5xx) and nothing retried; no new
// step starts after a failure, and the answer waits for the steps already
// running, so no step of a request outlives it.
//
// Steps are found through a StepResolver on every request, so a step whose
// pinned version was deleted, or is no longer visible to the pipeline's
// owner, fails the request naming the step; the manager's resolver uses the
// pipeline OWNER's identity (visibility was checked against the publisher),
// and its resolution cache keeps this to a hash lookup per step.
//
// Per-step timings (InferJob::report_timings): the answer carries response
// parameters `pipeline.<step>.start_us` (from the request's arrival),
// `.duration_us` (submit to answer), and `.queue_us` / `.compute_us` when an
// instance ran the step.
//
// Ownership: owned by its Model; borrows the fan-out pool (which must
// outlive every request) and owns its resolver.
// Thread-safety: Run and NotReadyReason are safe from any thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/task_pool.h"
#include "serving/model.h"

namespace orrery {

// Where a pipeline finds the models of its steps.
class StepResolver {
 public:
  virtual ~StepResolver() = default;
  // The model serving `name` at `version`, loading it when it is not
  // loaded; kNotFound when the version is gone or not visible.
  virtual Result<std::shared_ptr<Model>> Acquire(const QualifiedName& name, int64_t version) = 0;
  // The model of `key` ("tenant/name:3") when loaded or loading, else nullptr.
  virtual std::shared_ptr<Model> Find(const std::string& key) const = 0;
};

class Pipeline final : public Composite {
 public:
  // Builds the runner of `servable`'s pipeline section: acquires every step
  // (which starts the steps' loads) and maps tensors by position. Fails
  // (naming the step) when a step cannot be acquired, is itself a
  // pipeline, or lacks a tensor the pipeline maps. `fanout` may be null
  // (then every step is submitted from the thread that starts it).
  static Result<std::unique_ptr<Pipeline>> Create(const ResolvedServable& servable,
                                                  std::unique_ptr<StepResolver> resolver,
                                                  TaskPool* fanout);

  void Run(InferJob job) override;
  // The first step whose model failed (a step not loaded yet is no reason:
  // the first request loads it).
  std::string NotReadyReason() const override;

 private:
  // A tensor a step or the pipeline reads: input `index` of the pipeline
  // (step < 0) or output `index` of step `step`.
  struct Source {
    int step = -1;
    size_t index = 0;
  };
  struct Step {
    std::string name;
    QualifiedName servable;
    int64_t version = 0;
    std::string label;                                   // "tenant/name:3"
    Manifest signature;                                  // the step's inputs and outputs only
    std::vector<std::pair<std::string, Source>> inputs;  // step input name <- source
    std::vector<size_t> dependents;                      // steps that read this one's outputs
    int upstream = 0;                                    // distinct steps this one reads
  };
  struct Request;

  Pipeline(std::unique_ptr<StepResolver> resolver, TaskPool* fanout)
      : resolver_(std::move(resolver)), fanout_(fanout) {}
  // Submits the steps in `ready` (see the fan-out rule above).
  void Start(const std::shared_ptr<Request>& request, std::vector<size_t> ready);
  void Submit(const std::shared_ptr<Request>& request, size_t step, bool may_hand_off);
  // A step's answer (or the reason it did not start); starts the steps it
  // made ready, or answers the request.
  void StepDone(const std::shared_ptr<Request>& request, size_t step, InferOutcome outcome);
  // The request's answer, once no step runs; calls its done.
  void Answer(Request& request);

  const std::unique_ptr<StepResolver> resolver_;
  TaskPool* const fanout_;
  std::vector<Step> steps_;
  std::vector<std::pair<std::string, Source>> outputs_;  // pipeline signature order
  std::vector<size_t> roots_;                            // steps that read only pipeline inputs
};

}  // namespace orrery
