// Why the scheduler looks like this: see model.h. The invariant that keeps
// it simple: a Slot is owned by exactly one party at a time — the idle_
// list, the thread running a job on it (in-process); for worker backends,
// whoever set its `busy` flag: its own thread or an event loop.
#include "serving/model.h"

#include "core/log.h"
#include "core/reactor.h"
#include "serving/signature.h"

namespace orrery {
namespace {

using Clock = std::chrono::steady_clock;

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

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

Model::Model(std::shared_ptr<const ResolvedServable> servable, Options options)
    : servable_(std::move(servable)),
      options_(options),
      max_queue_(servable_->manifest.queue.max_size != 0 ? servable_->manifest.queue.max_size
                                                         : options.max_queue),
      default_level_(servable_->manifest.queue.DefaultLevel()),
      metrics_(servable_->manifest.batching.max_batch_size),
      queue_(servable_->manifest.queue.priority_levels),
      batched_(servable_->manifest.batching.enabled()) {
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
  if (composite_ != nullptr) return composite_->NotReadyReason();
  for (const auto& slot : slots_) {
    InstanceHealth health = slot->instance->Health();
    if (health.ready) return "";
  }
  return slots_.empty() ? "no instances" : slots_.front()->instance->Health().reason;
}

bool Model::Ready() const {
  {
    std::lock_guard lock(mutex_);
    if (composite_ != nullptr) {
      return state_ == ModelState::kReady && composite_->NotReadyReason().empty();
    }
  }
  return state() == ModelState::kReady && ReadyInstances() > 0;
}

bool Model::GaveUp() const {
  std::lock_guard lock(mutex_);
  if (state_ != ModelState::kReady || slots_.empty()) return false;
  for (const auto& slot : slots_) {
    if (!slot->instance->Health().gave_up) return false;
  }
  return true;
}

bool Model::RunsOnCaller() const {
  std::lock_guard lock(mutex_);
  return state_ == ModelState::kReady && composite_ == nullptr && !batched_ && !worker_backed_;
}

void Model::Load(Backend& backend, const LoadContext& context) {
  std::vector<std::unique_ptr<Slot>> slots;
  Status status;
  for (int i = 0; i < options_.instances && status.ok(); ++i) {
    Result<std::unique_ptr<Instance>> instance = backend.Load(context);
    if (instance.ok()) {
      slots.push_back(std::make_unique<Slot>(Slot{std::move(*instance)}));
    } else {
      status = instance.status();
    }
  }
  std::unique_lock lock(mutex_);
  if (!status.ok() || stopping_) {
    lock.unlock();
    slots.clear();  // what loaded is freed before the load is reported (and uncharged)
    lock.lock();
    return FailLoad(lock, status);
  }
  slots_ = std::move(slots);
  lock.unlock();
  if (options_.warmup) {
    Status warm = WarmUp();
    if (!warm.ok()) LogInfo("servable " + key() + ": warm-up failed: " + warm.message());
  }
  lock.lock();
  if (stopping_) {  // unloaded during the warm-up: it never becomes ready
    std::vector<std::unique_ptr<Slot>> loaded = std::move(slots_);
    lock.unlock();
    loaded.clear();
    lock.lock();
    return FailLoad(lock, Status());
  }
  state_ = ModelState::kReady;
  reason_.clear();
  bool worker_threads = !backend.InProcess(context);
  LogInfo("servable " + key() + " ready (" + std::to_string(slots_.size()) + " instance(s)" +
          (batched_ ? ", batching up to " +
                          std::to_string(servable_->manifest.batching.max_batch_size) + " rows"
                    : std::string()) +
          ")");
  if (worker_threads || batched_) {
    worker_backed_ = worker_threads;
    for (auto& slot : slots_) {
      threads_.emplace_back([this, s = slot.get()] { batched_ ? BatchLoop(s) : WorkerLoop(s); });
    }
    lock.unlock();
    work_.notify_all();
    RunSettled();
    return;
  }
  // In-process: each slot drains what queued during the load, on this thread.
  std::vector<Slot*> free;
  for (auto& slot : slots_) free.push_back(slot.get());
  for (Slot* slot : free) {
    InferJob job;
    if (PopNext(lock, &job)) {
      lock.unlock();
      RunAndDrain(slot, std::move(job));
      lock.lock();
    } else {
      idle_.push_back(slot);
    }
  }
  lock.unlock();
  RunSettled();
}

void Model::FailLoad(std::unique_lock<std::mutex>& lock, const Status& status, bool retry_later) {
  state_ = ModelState::kFailed;
  reason_ = status.ok() ? "unloaded while loading" : status.message();
  retry_later_ = retry_later;
  // The log has the detail (host paths); the reason, which clients see, not.
  LogError("servable " + key() + " failed to load: " + (status.ok() ? reason_ : status.detail()));
  std::vector<InferJob> queued = queue_.TakeAll();
  std::string why = reason_;
  lock.unlock();
  for (InferJob& job : queued) {
    Finish(job, {Unavailable("servable " + key() + " failed to load: " + why), {}, retry_later},
           /*accepted=*/true);
  }
  drained_.notify_all();
  RunSettled();
}

void Model::LoadComposite(Result<std::unique_ptr<Composite>> composite) {
  std::unique_lock lock(mutex_);
  if (!composite.ok() || stopping_) return FailLoad(lock, composite.status());
  composite_ = std::move(*composite);
  state_ = ModelState::kReady;
  reason_.clear();
  std::vector<InferJob> queued = queue_.TakeAll();
  Composite& serving = *composite_;
  lock.unlock();
  LogInfo("servable " + key() + " ready (composite: no instances)");
  for (InferJob& job : queued) RunComposite(serving, std::move(job));
  RunSettled();
}

void Model::RunComposite(Composite& composite, InferJob job) {
  auto submitted = job.submitted;
  job.done = [this, submitted, done = std::move(job.done)](InferOutcome outcome) {
    InferJob finished;
    finished.submitted = submitted;
    finished.done = done;
    if (outcome.status.ok()) {
      metrics_.last_inference_ms.store(NowUnixMs(), std::memory_order_relaxed);
    }
    Finish(finished, std::move(outcome), /*accepted=*/true);
  };
  composite.Run(std::move(job));
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
    expired = TakeExpiredLocked();
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

Status Model::WarmUp() {
  const Manifest& manifest = servable_->manifest;
  for (const nlohmann::json& example : manifest.examples) {
    ASSIGN_OR_RETURN(std::vector<Tensor> inputs, ExampleInputs(manifest, example));
    for (auto& slot : slots_) {
      Result<std::vector<Tensor>> outputs =
          slot->instance->Infer(inputs, Clock::now() + std::chrono::seconds(60));
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
  work_.notify_all();
  // Requests already accepted finish first: they hold the version.
  drained_.wait(lock, [&] { return queue_.empty() && in_flight_.load() == 0; });
  std::vector<std::thread> threads = std::move(threads_);
  lock.unlock();
  work_.notify_all();
  for (std::thread& thread : threads) thread.join();
  lock.lock();
  idle_.clear();
  std::vector<std::unique_ptr<Slot>> slots = std::move(slots_);
  std::unique_ptr<Composite> composite = std::move(composite_);
  state_ = ModelState::kUnloaded;
  reason_ = "unloaded";
  lock.unlock();
  slots.clear();  // instance destructors stop workers, free runtimes
  LogInfo("servable " + key() + " unloaded");
}

void Model::Submit(InferJob job) {
  metrics_.requests.fetch_add(1, std::memory_order_relaxed);
  last_use_.store(NextUse(), std::memory_order_relaxed);
  Result<uint32_t> level = PriorityLevel(servable_->manifest.queue, job.priority);
  if (!level.ok()) return Finish(job, {level.status(), {}, false}, /*accepted=*/false);
  if (AnswerFromCache(job)) return;  // response cache: a hit is answered here
  bool arrived_expired = Clock::now() >= job.deadline;
  std::unique_lock lock(mutex_);
  if (state_ != ModelState::kReady && state_ != ModelState::kLoading) {
    std::string why = reason_;
    lock.unlock();
    return Finish(job, {Unavailable("servable " + key() + " is not ready: " + why), {}, false},
                  /*accepted=*/false);
  }
  if (composite_ != nullptr) {
    in_flight_.fetch_add(1, std::memory_order_relaxed);
    Composite& composite = *composite_;
    lock.unlock();
    return RunComposite(composite, std::move(job));
  }
  if (arrived_expired) {  // it never reaches an instance (a composite says which step it missed)
    lock.unlock();
    return Expire(job, /*accepted=*/false);
  }
  if (batched_) {
    Status batchable = CheckBatchable(job);
    if (!batchable.ok()) {
      lock.unlock();
      return Finish(job, {batchable, {}, false}, /*accepted=*/false);
    }
    job.rows = job.inputs.empty() ? 1 : job.inputs[0].shape[0];
  }
  Reactor* reactor = nullptr;
  if (Slot* slot = AsyncSlotLocked(job, &reactor)) {
    in_flight_.fetch_add(1, std::memory_order_relaxed);
    slot->busy = true;
    lock.unlock();
    return ExecuteAsync(slot, std::move(job), *reactor);
  }
  if (state_ == ModelState::kReady && !idle_.empty()) {
    in_flight_.fetch_add(1, std::memory_order_relaxed);
    Slot* slot = idle_.back();
    idle_.pop_back();
    lock.unlock();
    return RunAndDrain(slot, std::move(job));
  }
  // Requests whose time ran out free their places before a new one is
  // refused for want of room.
  std::vector<InferJob> expired;
  if (queue_.size() + forming_ >= max_queue_) expired = TakeExpiredLocked();
  bool full = queue_.size() + forming_ >= max_queue_;
  bool wake = false;
  if (!full) {
    in_flight_.fetch_add(1, std::memory_order_relaxed);
    queue_.Push(*level, std::move(job));
    // A batching thread waits for its batch to fill or its delay to pass; it
    // needs waking only for a first request or a full batch. Waking it per
    // request would make it preempt the event loop for nothing.
    wake = !batched_ || queue_.size() == 1 || QueuedRowsLocked() >= FullBatchRows();
  }
  lock.unlock();
  for (InferJob& old : expired) Expire(old, /*accepted=*/true);
  if (full) {
    metrics_.rejected.fetch_add(1, std::memory_order_relaxed);
    return Finish(job, {Unavailable("servable " + key() + ": queue is full (" +
                                    std::to_string(max_queue_) + " requests waiting)"),
                        {},
                        true},
                  /*accepted=*/false);
  }
  // All: a thread whose instance is busy (on an event loop) ignores the
  // wake-up, so notify_one could pick it and leave the job waiting.
  if (wake) work_.notify_all();
}

void Model::RunAndDrain(Slot* slot, InferJob job) {
  while (true) {
    Execute(slot, job);
    std::unique_lock lock(mutex_);
    if (!PopNext(lock, &job)) {
      idle_.push_back(slot);
      return;
    }
  }
}

void Model::WorkerLoop(Slot* slot) {
  std::unique_lock lock(mutex_);
  while (true) {
    work_.wait(lock, [&] { return (!queue_.empty() && !slot->busy) || stopping_; });
    if (slot->busy) return;  // stopping; an event loop still finishes its request
    InferJob job;
    if (!PopNext(lock, &job)) {
      if (stopping_) return;
      continue;
    }
    slot->busy = true;
    lock.unlock();
    Execute(slot, job);
    lock.lock();
    slot->busy = false;
  }
}

Model::Slot* Model::AsyncSlotLocked(const InferJob& job, Reactor** reactor) {
  if (!worker_backed_ || batched_ || state_ != ModelState::kReady || !queue_.empty()) {
    return nullptr;
  }
  *reactor = Reactor::Current();
  if (*reactor == nullptr) return nullptr;
  uint64_t bytes = 0;
  for (const Tensor& input : job.inputs) bytes += input.data.size();
  if (bytes >= AsyncInfer::kMaxAsyncBytes) return nullptr;
  for (const auto& slot : slots_) {
    if (!slot->busy && slot->instance->Async() != nullptr) return slot.get();
  }
  return nullptr;
}

// The job's answer is read on `reactor`'s thread when it arrives; then the
// slot is free again and a worker thread takes any request that queued
// meanwhile.
void Model::ExecuteAsync(Slot* slot, InferJob job, Reactor& reactor) {
  auto start = Clock::now();
  metrics_.queue.Observe(start - job.submitted);
  AsyncInfer* async = slot->instance->Async();
  Result<int> fd = async->Begin(job.inputs, job.deadline);
  auto release = [this, slot] {
    std::unique_lock lock(mutex_);
    slot->busy = false;
    bool queued = !queue_.empty() || stopping_;
    lock.unlock();
    if (queued) work_.notify_all();
  };
  if (!fd.ok()) {
    release();
    return Settle(job, start, Clock::now() - start, fd.status());
  }
  // std::function must be copyable: the job travels in a shared_ptr.
  auto pending = std::make_shared<InferJob>(std::move(job));
  reactor.WaitReadable(*fd, pending->deadline,
                       [this, async, release, pending, start](Reactor::Wake wake) {
                         Result<std::vector<Tensor>> outputs =
                             wake == Reactor::Wake::kReadable
                                 ? async->Complete()
                                 : Result<std::vector<Tensor>>(
                                       async->Abort(wake == Reactor::Wake::kTimedOut));
                         release();
                         Settle(*pending, start, Clock::now() - start, std::move(outputs));
                       });
}

void Model::Execute(Slot* slot, InferJob& job) {
  auto start = Clock::now();
  metrics_.queue.Observe(start - job.submitted);
  Result<std::vector<Tensor>> outputs = slot->instance->Infer(job.inputs, job.deadline);
  Settle(job, start, Clock::now() - start, std::move(outputs));
}

void Model::Settle(InferJob& job, Clock::time_point start, std::chrono::nanoseconds compute,
                   Result<std::vector<Tensor>> outputs) {
  InferOutcome outcome;
  outcome.queued = start - job.submitted;
  outcome.computed = compute;
  metrics_.compute.Observe(compute);
  if (!outputs.ok()) {
    if (outputs.status().code() == Code::kUnavailable) CheckInstancesAlive();
    outcome.status = outputs.status().WithContext(key());
    return Finish(job, std::move(outcome), /*accepted=*/true);
  }
  metrics_.last_inference_ms.store(NowUnixMs(), std::memory_order_relaxed);
  outcome.outputs = std::move(*outputs);
  Finish(job, std::move(outcome), /*accepted=*/true);
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
  if (accepted) {
    std::lock_guard lock(mutex_);
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    drained_.notify_all();
  }
}

void Model::CheckInstancesAlive() {
  std::lock_guard lock(mutex_);
  if (state_ != ModelState::kReady) return;
  for (const auto& slot : slots_) {
    if (!slot->instance->Health().gave_up) return;
  }
  state_ = ModelState::kFailed;
  reason_ = slots_.empty() ? "no instances" : slots_.front()->instance->Health().reason;
  LogError("servable " + key() + " failed: " + reason_);
}

uint64_t Model::MemoryBytes() const {
  std::lock_guard lock(mutex_);
  if (state_ != ModelState::kReady && state_ != ModelState::kFailed) return 0;
  uint64_t bytes = 0;
  for (const auto& slot : slots_) bytes += slot->instance->MemoryBytes();
  return bytes;
}

int Model::ReadyInstances() const {
  std::lock_guard lock(mutex_);
  if (state_ != ModelState::kReady) return 0;
  int ready = 0;
  for (const auto& slot : slots_) ready += slot->instance->Health().ready ? 1 : 0;
  return ready;
}

std::vector<uint64_t> Model::WorkerRestarts() const {
  std::lock_guard lock(mutex_);
  std::vector<uint64_t> restarts;
  if (state_ != ModelState::kReady && state_ != ModelState::kFailed) return restarts;
  if (threads_.empty()) return restarts;  // in process: no workers
  for (const auto& slot : slots_) restarts.push_back(slot->instance->Health().restarts);
  return restarts;
}

}  // namespace orrery
