// Model's life cycle (model.h). What it keeps simple: a request is counted
// in in_flight_ from the moment the model accepts it until its done() has
// returned, whichever of the model or its scheduler ends it; Unload waits
// for that count to reach zero before it destroys the scheduler.
#include "serving/model.h"

#include "core/log.h"
#include "serving/signature.h"

namespace orrery {
namespace {

using Clock = std::chrono::steady_clock;

// Orders uses of every model in the process (LRU eviction): a counter, not a
// clock, so that two uses are never tied and a clock step cannot reorder them.
std::atomic<uint64_t> g_uses{0};

uint64_t NextUse() { return g_uses.fetch_add(1, std::memory_order_relaxed) + 1; }

}  // namespace

const char* ModelStateName(ModelState state) {
  switch (state) {
    case ModelState::kLoading:
      return "LOADING";
    case ModelState::kReady:
      return "READY";
    case ModelState::kFailed:
      return "UNAVAILABLE";
    case ModelState::kUnloading:
      return "UNLOADING";
    case ModelState::kUnloaded:
      return "UNAVAILABLE";
  }
  return "UNKNOWN";
}

Result<uint32_t> PriorityLevel(const QueueConfig& queue, int64_t priority) {
  if (priority < 0) {
    return InvalidArgument("parameter 'priority' must be a non-negative integer, got " +
                           std::to_string(priority));
  }
  // As in Triton: 0, or a level the servable does not have (it may have
  // none), runs at the servable's default level.
  if (priority == 0 || priority > static_cast<int64_t>(queue.priority_levels)) {
    return queue.DefaultLevel();
  }
  return static_cast<uint32_t>(priority);
}

Model::Model(std::shared_ptr<const ResolvedServable> servable, Options options)
    : servable_(std::move(servable)),
      options_(options),
      max_queue_(servable_->manifest.queue.max_size != 0 ? servable_->manifest.queue.max_size
                                                         : options.max_queue),
      metrics_(servable_->manifest.batching.max_batch_size),
      waiting_(servable_->manifest.queue.priority_levels) {
  last_use_ = NextUse();
}

Model::~Model() { Unload(); }

ModelState Model::state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

std::string Model::reason() const {
  std::lock_guard lock(mutex_);
  if (state_ != ModelState::kReady) return reason_;
  return scheduler_->NotReadyReason();
}

bool Model::Ready() const {
  std::lock_guard lock(mutex_);
  return state_ == ModelState::kReady && scheduler_->NotReadyReason().empty();
}

bool Model::GaveUp() const {
  std::lock_guard lock(mutex_);
  return state_ == ModelState::kReady && scheduler_->AllGaveUp();
}

bool Model::RunsOnCaller() const {
  std::lock_guard lock(mutex_);
  return state_ == ModelState::kReady && scheduler_->RunsOnCaller();
}

void Model::Load(Backend& backend, const LoadContext& context) {
  std::vector<std::unique_ptr<Instance>> instances;
  Status status;
  for (int i = 0; i < options_.instances && status.ok(); ++i) {
    Result<std::unique_ptr<Instance>> instance = backend.Load(context);
    if (instance.ok()) {
      instances.push_back(std::move(*instance));
    } else {
      status = instance.status();
    }
  }
  std::unique_lock lock(mutex_);
  if (!status.ok() || stopping_) {
    lock.unlock();
    instances.clear();  // what loaded is freed before the load is reported (and uncharged)
    lock.lock();
    return FailLoad(lock, status);
  }
  lock.unlock();
  if (options_.warmup) {
    Status warm = WarmUp(instances);
    if (!warm.ok()) LogInfo("servable " + key() + ": warm-up failed: " + warm.message());
  }
  lock.lock();
  if (stopping_) {  // unloaded during the warm-up: it never becomes ready
    lock.unlock();
    instances.clear();
    lock.lock();
    return FailLoad(lock, Status());
  }
  const BatchingConfig& batching = servable_->manifest.batching;
  LogInfo("servable " + key() + " ready (" + std::to_string(instances.size()) + " instance(s)" +
          (batching.enabled() ? ", batching up to " + std::to_string(batching.max_batch_size) +
                                    " rows"
                              : std::string()) +
          ")");
  SchedulingKind kind = SchedulingFor(servable_->manifest, backend.InProcess(context));
  BecomeReady(lock, MakeInstanceScheduler(kind, *this, std::move(instances),
                                          std::move(waiting_), max_queue_));
}

void Model::LoadComposite(Result<std::unique_ptr<Composite>> composite) {
  std::unique_lock lock(mutex_);
  if (!composite.ok() || stopping_) return FailLoad(lock, composite.status());
  composite_ = true;
  LogInfo("servable " + key() + " ready (composite: no instances)");
  BecomeReady(lock, MakeCompositeScheduler(*this, std::move(*composite), std::move(waiting_)));
}

// The scheduler starts outside the lock (an in-process one runs the waiting
// requests on this thread), counted in flight so that an Unload meanwhile
// waits for it.
void Model::BecomeReady(std::unique_lock<std::mutex>& lock, std::unique_ptr<Scheduler> scheduler) {
  waiting_ = RequestQueue<InferJob>(servable_->manifest.queue.priority_levels);
  scheduler_ = std::move(scheduler);
  state_ = ModelState::kReady;
  reason_.clear();
  Scheduler& started = *scheduler_;
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  lock.unlock();
  started.Start();
  EndInFlight();
  RunSettled();
}

void Model::FailLoad(std::unique_lock<std::mutex>& lock, const Status& status, bool retry_later) {
  state_ = ModelState::kFailed;
  reason_ = status.ok() ? "unloaded while loading" : status.message();
  retry_later_ = retry_later;
  // The log has the detail (host paths); the reason, which clients see, not.
  LogError("servable " + key() + " failed to load: " + (status.ok() ? reason_ : status.detail()));
  std::vector<InferJob> queued = waiting_.TakeAll();
  std::string why = reason_;
  lock.unlock();
  for (InferJob& job : queued) {
    Finish(job, {Unavailable("servable " + key() + " failed to load: " + why), {}, retry_later},
           /*accepted=*/true);
  }
  drained_.notify_all();
  RunSettled();
}

void Model::FailWaiting(const Status& status) {
  std::unique_lock lock(mutex_);
  if (state_ != ModelState::kLoading) return;
  FailLoad(lock, status, /*retry_later=*/true);
}

bool Model::stopping() const {
  std::lock_guard lock(mutex_);
  return stopping_;
}

void Model::Touch() { last_use_.store(NextUse(), std::memory_order_relaxed); }

void Model::NoteWaiting(std::string why) {
  std::lock_guard lock(mutex_);
  if (state_ == ModelState::kLoading) reason_ = std::move(why);
}

void Model::ExpireWaiting() {
  std::vector<InferJob> expired;
  {
    std::lock_guard lock(mutex_);
    if (state_ != ModelState::kLoading) return;
    expired = TakeExpired(waiting_);
  }
  for (InferJob& job : expired) {
    metrics_.expired.fetch_add(1, std::memory_order_relaxed);
    auto waited =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - job.submitted);
    Finish(job, {Unavailable("request timed out after " + std::to_string(waited.count()) +
                             " ms waiting for memory to load " + key() +
                             " (the memory budget is held by models in use)"),
                 {},
                 true},
           /*accepted=*/true);
  }
}

void Model::OnSettled(std::function<void()> callback) {
  std::unique_lock lock(mutex_);
  if (!settled_) {
    settled_callbacks_.push_back(std::move(callback));
    return;
  }
  lock.unlock();
  callback();
}

void Model::RunSettled() {
  if (options_.on_settled) options_.on_settled(*this);
  std::unique_lock lock(mutex_);
  settled_ = true;
  std::vector<std::function<void()>> callbacks = std::move(settled_callbacks_);
  settled_callbacks_.clear();
  lock.unlock();
  for (auto& callback : callbacks) callback();
}

Status Model::WarmUp(const std::vector<std::unique_ptr<Instance>>& instances) {
  const Manifest& manifest = servable_->manifest;
  for (const nlohmann::json& example : manifest.examples) {
    ASSIGN_OR_RETURN(std::vector<Tensor> inputs, ExampleInputs(manifest, example));
    for (const auto& instance : instances) {
      Result<std::vector<Tensor>> outputs =
          instance->Infer(inputs, Clock::now() + std::chrono::seconds(60));
      if (!outputs.ok()) return outputs.status();
    }
  }
  return Status::Ok();
}

void Model::Unload() {
  std::unique_lock lock(mutex_);
  if (state_ == ModelState::kUnloaded || state_ == ModelState::kUnloading) return;
  bool was_loading = state_ == ModelState::kLoading;
  stopping_ = true;
  if (was_loading) return;  // Load() sees stopping_ and fails; the manager retries unload
  state_ = ModelState::kUnloading;
  reason_ = "unloading";
  if (scheduler_ != nullptr) scheduler_->Stop();
  // Requests already accepted finish first: they hold the version.
  drained_.wait(lock, [&] { return in_flight_.load() == 0; });
  std::unique_ptr<Scheduler> scheduler = std::move(scheduler_);
  lock.unlock();
  scheduler.reset();  // joins its threads; instance destructors stop workers, free runtimes
  lock.lock();
  state_ = ModelState::kUnloaded;
  reason_ = "unloaded";
  lock.unlock();
  LogInfo("servable " + key() + " unloaded");
}

void Model::Submit(InferJob job) {
  metrics_.requests.fetch_add(1, std::memory_order_relaxed);
  last_use_.store(NextUse(), std::memory_order_relaxed);
  Result<uint32_t> level = PriorityLevel(servable_->manifest.queue, job.priority);
  if (!level.ok()) return Finish(job, {level.status(), {}, false}, /*accepted=*/false);
  job.priority = *level;
  if (AnswerFromCache(job)) return;  // response cache: a hit is answered here
  bool arrived_expired = Clock::now() >= job.deadline;
  std::unique_lock lock(mutex_);
  if (state_ != ModelState::kReady && state_ != ModelState::kLoading) {
    std::string why = reason_;
    lock.unlock();
    return Finish(job, {Unavailable("servable " + key() + " is not ready: " + why), {}, false},
                  /*accepted=*/false);
  }
  if (arrived_expired && !composite_) {  // it never reaches an instance
    lock.unlock();
    return Expire(job, /*accepted=*/false);
  }
  const BatchingConfig& batching = servable_->manifest.batching;
  if (batching.enabled() && !composite_) {
    Status batchable = CheckBatchable(batching, job);
    if (!batchable.ok()) {
      lock.unlock();
      return Finish(job, {batchable, {}, false}, /*accepted=*/false);
    }
    job.rows = job.inputs.empty() ? 1 : job.inputs[0].shape[0];
  }
  if (state_ == ModelState::kLoading) return WaitForLoad(lock, std::move(job));
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  Scheduler& scheduler = *scheduler_;
  lock.unlock();
  scheduler.Submit(std::move(job));
}

void Model::WaitForLoad(std::unique_lock<std::mutex>& lock, InferJob job) {
  // Requests whose time ran out free their places before a new one is
  // refused for want of room.
  std::vector<InferJob> expired;
  if (waiting_.size() >= max_queue_) expired = TakeExpired(waiting_);
  bool full = waiting_.size() >= max_queue_;
  if (!full) {
    in_flight_.fetch_add(1, std::memory_order_relaxed);
    waiting_.Push(job.priority, std::move(job));
  }
  lock.unlock();
  for (InferJob& old : expired) Expire(old, /*accepted=*/true);
  if (full) {
    metrics_.rejected.fetch_add(1, std::memory_order_relaxed);
    Finish(job, {QueueFull(key(), max_queue_), {}, true}, /*accepted=*/false);
  }
}

void Model::Expire(InferJob& job, bool accepted) {
  metrics_.expired.fetch_add(1, std::memory_order_relaxed);
  auto waited =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - job.submitted);
  Finish(job, {Unavailable("request timed out after " + std::to_string(waited.count()) +
                           " ms waiting in the queue of " + key() + " (dropped before it ran)"),
               {},
               false},
         accepted);
}

void Model::Finish(InferJob& job, InferOutcome outcome, bool accepted) {
  auto elapsed = Clock::now() - job.submitted;
  metrics_.total.Observe(elapsed);
  if (!outcome.status.ok()) {
    metrics_.failures.fetch_add(1, std::memory_order_relaxed);
    metrics_.failure_ns.fetch_add(static_cast<uint64_t>(elapsed.count()),
                                  std::memory_order_relaxed);
  } else if (!outcome.cache_hit) {
    metrics_.inferences.fetch_add(static_cast<uint64_t>(job.rows), std::memory_order_relaxed);
  }
  auto done = std::move(job.done);
  done(std::move(outcome));
  // Only after done(): Unload() may destroy instances once this reaches 0.
  if (accepted) EndInFlight();
}

void Model::EndInFlight() {
  std::lock_guard lock(mutex_);
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  drained_.notify_all();
}

void Model::InstanceFailed() {
  std::lock_guard lock(mutex_);
  if (state_ != ModelState::kReady || !scheduler_->AllGaveUp()) return;
  state_ = ModelState::kFailed;
  reason_ = scheduler_->NotReadyReason();
  if (reason_.empty()) reason_ = "no instances";
  LogError("servable " + key() + " failed: " + reason_);
}

std::vector<size_t> Model::QueueLengths() const {
  std::lock_guard lock(mutex_);
  if (scheduler_ != nullptr) return scheduler_->QueueLengths();
  std::vector<size_t> lengths;
  for (size_t level = 1; level <= waiting_.levels(); ++level) {
    lengths.push_back(waiting_.size(level));
  }
  return lengths;
}

uint64_t Model::MemoryBytes() const {
  std::lock_guard lock(mutex_);
  if (state_ != ModelState::kReady && state_ != ModelState::kFailed) return 0;
  return scheduler_ != nullptr ? scheduler_->MemoryBytes() : 0;
}

int Model::ReadyInstances() const {
  std::lock_guard lock(mutex_);
  return state_ == ModelState::kReady ? scheduler_->ReadyInstances() : 0;
}

std::vector<uint64_t> Model::WorkerRestarts() const {
  std::lock_guard lock(mutex_);
  if (state_ != ModelState::kReady && state_ != ModelState::kFailed) return {};
  return scheduler_ != nullptr ? scheduler_->WorkerRestarts() : std::vector<uint64_t>{};
}

int Model::Instances() const {
  std::lock_guard lock(mutex_);
  return state_ == ModelState::kReady ? scheduler_->Instances() : 0;
}

// An instance change runs on the scheduler outside the lock, counted in
// flight so that Unload waits for it; kConflict unless ready.
template <typename Change>
auto Model::ChangeInstances(Change change) -> decltype(change(std::declval<Scheduler&>())) {
  std::unique_lock lock(mutex_);
  if (state_ != ModelState::kReady) {
    return Conflict("servable " + key() + " is not ready: " + reason_);
  }
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  Scheduler& scheduler = *scheduler_;
  lock.unlock();
  auto changed = change(scheduler);
  EndInFlight();
  return changed;
}

Status Model::AddInstance(std::unique_ptr<Instance> instance) {
  return ChangeInstances(
      [&instance](Scheduler& scheduler) { return scheduler.AddInstance(std::move(instance)); });
}

Result<std::unique_ptr<Instance>> Model::RemoveInstance() {
  return ChangeInstances([](Scheduler& scheduler) { return scheduler.RemoveInstance(); });
}

}  // namespace orrery
