// The composite scheduler (scheduler.h): a pipeline's model has no
// instances and no queue of its own; each request goes to the Composite
// whole (its steps queue at their own models).
#include "serving/scheduler.h"

namespace orrery {
namespace {

class CompositeScheduler final : public Scheduler {
 public:
  CompositeScheduler(SchedulerHost& host, std::unique_ptr<Composite> composite,
                     RequestQueue<InferJob> waiting)
      : host_(host), composite_(std::move(composite)), waiting_(std::move(waiting)) {}

  void Start() override {
    for (InferJob& job : waiting_.TakeAll()) Submit(std::move(job));
  }
  void Submit(InferJob job) override {
    auto submitted = job.submitted;
    job.done = [this, submitted, done = std::move(job.done)](InferOutcome outcome) {
      InferJob finished;
      finished.submitted = submitted;
      finished.done = done;
      if (outcome.status.ok()) {
        host_.metrics().NoteSuccess();
      }
      host_.Finish(finished, std::move(outcome));
    };
    composite_->Run(std::move(job));
  }
  void Stop() override {}

  std::vector<size_t> QueueLengths() const override {
    return std::vector<size_t>(waiting_.levels(), 0);
  }
  bool RunsOnCaller() const override { return false; }
  std::string NotReadyReason() const override { return composite_->NotReadyReason(); }
  int ReadyInstances() const override { return 0; }
  bool AllGaveUp() const override { return false; }
  uint64_t MemoryBytes() const override { return 0; }
  std::vector<uint64_t> WorkerRestarts() const override { return {}; }

  int Instances() const override { return 0; }
  Status AddInstance(std::unique_ptr<Instance>) override { return NoInstances(); }
  Result<std::unique_ptr<Instance>> RemoveInstance() override { return NoInstances(); }

 private:
  Status NoInstances() const {
    return Conflict("servable " + host_.key() +
                    " is a pipeline: it has no instances (its steps do)");
  }

  SchedulerHost& host_;
  const std::unique_ptr<Composite> composite_;
  RequestQueue<InferJob> waiting_;  // until Start; then empty, for its levels
};

}  // namespace

std::unique_ptr<Scheduler> MakeCompositeScheduler(SchedulerHost& host,
                                                  std::unique_ptr<Composite> composite,
                                                  RequestQueue<InferJob> waiting) {
  return std::make_unique<CompositeScheduler>(host, std::move(composite), std::move(waiting));
}

}  // namespace orrery
