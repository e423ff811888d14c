// What the instance schedulers share (instance_scheduler.h): the queue, the
// slots, running a job on one, expiry, and adding or removing instances.
#include "serving/instance_scheduler.h"

#include "core/log.h"

namespace orrery {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

SchedulingKind SchedulingFor(const Manifest& manifest, bool in_process) {
  if (manifest.batching.enabled()) return SchedulingKind::kBatched;
  return in_process ? SchedulingKind::kDirect : SchedulingKind::kWorker;
}

std::unique_ptr<Scheduler> MakeInstanceScheduler(SchedulingKind kind, SchedulerHost& host,
                                                 std::vector<std::unique_ptr<Instance>> instances,
                                                 RequestQueue<InferJob> waiting,
                                                 size_t max_queue) {
  switch (kind) {
    case SchedulingKind::kDirect:
      return std::make_unique<DirectScheduler>(host, std::move(instances), std::move(waiting),
                                               max_queue);
    case SchedulingKind::kWorker:
      return std::make_unique<WorkerScheduler>(host, std::move(instances), std::move(waiting),
                                               max_queue);
    case SchedulingKind::kBatched:
      return std::make_unique<BatchScheduler>(host, std::move(instances), std::move(waiting),
                                              max_queue);
  }
  return nullptr;
}

std::vector<InferJob> TakeExpired(RequestQueue<InferJob>& queue) {
  using Visit = RequestQueue<InferJob>::Visit;
  auto now = Clock::now();
  std::vector<InferJob> expired;
  queue.Extract([now](const InferJob& job) { return now >= job.deadline ? Visit::kTake
                                                                        : Visit::kSkip; },
                expired);
  return expired;
}

Status QueueFull(const std::string& key, size_t max_queue) {
  return Unavailable("servable " + key + ": queue is full (" + std::to_string(max_queue) +
                     " requests waiting)");
}

InstanceScheduler::InstanceScheduler(SchedulerHost& host,
                                     std::vector<std::unique_ptr<Instance>> instances,
                                     RequestQueue<InferJob> waiting, size_t max_queue)
    : host_(host), max_queue_(max_queue), queue_(std::move(waiting)) {
  for (auto& instance : instances) {
    slots_.push_back(std::make_unique<Slot>());
    slots_.back()->instance = std::move(instance);
  }
}

void InstanceScheduler::Start() {
  std::vector<Slot*> slots;
  {
    std::lock_guard lock(mutex_);
    for (auto& slot : slots_) slots.push_back(slot.get());
  }
  for (Slot* slot : slots) Serve(slot);
}

void InstanceScheduler::Submit(InferJob job) {
  std::unique_lock lock(mutex_);
  if (RunNowLocked(lock, job)) return;
  // Requests whose time ran out free their places before a new one is
  // refused for want of room.
  std::vector<InferJob> expired;
  if (queue_.size() + forming_ >= max_queue_) expired = TakeExpired(queue_);
  bool full = queue_.size() + forming_ >= max_queue_;
  bool wake = false;
  if (!full) {
    queue_.Push(job.priority, std::move(job));
    wake = WakeForQueuedLocked();
  }
  lock.unlock();
  for (InferJob& old : expired) host_.Expire(old);
  if (full) {
    host_.metrics().rejected.fetch_add(1, std::memory_order_relaxed);
    return host_.Finish(job, {QueueFull(host_.key(), max_queue_), {}, true});
  }
  // All: a thread whose instance is busy (on an event loop) ignores the
  // wake-up, so notify_one could pick it and leave the job waiting.
  if (wake) work_.notify_all();
}

void InstanceScheduler::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_.notify_all();
}

bool InstanceScheduler::PopNext(std::unique_lock<std::mutex>& lock, InferJob* job) {
  InferJob next;
  while (queue_.PopFront(&next)) {
    if (Clock::now() < next.deadline) {
      *job = std::move(next);
      return true;
    }
    lock.unlock();
    host_.Expire(next);
    lock.lock();
  }
  return false;
}

void InstanceScheduler::Execute(Slot* slot, InferJob& job) {
  auto start = Clock::now();
  host_.metrics().queue.Observe(start - job.submitted);
  Result<std::vector<Tensor>> outputs = slot->instance->Infer(job.inputs, job.deadline);
  Settle(job, start, Clock::now() - start, std::move(outputs));
}

void InstanceScheduler::Settle(InferJob& job, Clock::time_point start,
                               std::chrono::nanoseconds compute,
                               Result<std::vector<Tensor>> outputs) {
  InferOutcome outcome;
  outcome.queued = start - job.submitted;
  outcome.computed = compute;
  host_.metrics().compute.Observe(compute);
  if (!outputs.ok()) {
    if (outputs.status().code() == Code::kUnavailable) host_.InstanceFailed();
    outcome.status = outputs.status().WithContext(host_.key());
    return host_.Finish(job, std::move(outcome));
  }
  host_.metrics().NoteSuccess();
  outcome.outputs = std::move(*outputs);
  host_.Finish(job, std::move(outcome));
}

void InstanceScheduler::StartThread(Slot* slot, std::function<void()> body) {
  std::lock_guard lock(mutex_);
  slot->thread = std::thread(std::move(body));
}

void InstanceScheduler::JoinLocked(std::unique_lock<std::mutex>& lock, Slot* slot) {
  std::thread thread = std::move(slot->thread);
  lock.unlock();
  work_.notify_all();
  if (thread.joinable()) thread.join();
  lock.lock();
}

// Threaded kinds: the last slot not retiring, once its thread has ended
// (after the request or batch it runs, on its thread or an event loop).
InstanceScheduler::Slot* InstanceScheduler::RetireLocked(std::unique_lock<std::mutex>& lock) {
  Slot* slot = nullptr;
  for (auto& each : slots_) {
    if (!each->retiring) slot = each.get();
  }
  slot->retiring = true;
  JoinLocked(lock, slot);
  return slot;
}

void InstanceScheduler::JoinThreads() {
  Stop();
  std::unique_lock lock(mutex_);
  for (auto& slot : slots_) JoinLocked(lock, slot.get());
}

std::vector<size_t> InstanceScheduler::QueueLengths() const {
  std::lock_guard lock(mutex_);
  std::vector<size_t> lengths;
  for (size_t level = 1; level <= queue_.levels(); ++level) lengths.push_back(queue_.size(level));
  return lengths;
}

std::string InstanceScheduler::NotReadyReason() const {
  std::lock_guard lock(mutex_);
  for (const auto& slot : slots_) {
    if (slot->instance->Health().ready) return "";
  }
  return slots_.empty() ? "no instances" : slots_.front()->instance->Health().reason;
}

int InstanceScheduler::ReadyInstances() const {
  std::lock_guard lock(mutex_);
  int ready = 0;
  for (const auto& slot : slots_) ready += slot->instance->Health().ready ? 1 : 0;
  return ready;
}

bool InstanceScheduler::AllGaveUp() const {
  std::lock_guard lock(mutex_);
  if (slots_.empty()) return false;
  for (const auto& slot : slots_) {
    if (!slot->instance->Health().gave_up) return false;
  }
  return true;
}

uint64_t InstanceScheduler::MemoryBytes() const {
  std::lock_guard lock(mutex_);
  uint64_t bytes = 0;
  for (const auto& slot : slots_) bytes += slot->instance->MemoryBytes();
  return bytes;
}

std::vector<uint64_t> InstanceScheduler::WorkerRestarts() const {
  std::vector<uint64_t> restarts;
  if (!ReportsRestarts()) return restarts;
  std::lock_guard lock(mutex_);
  for (const auto& slot : slots_) restarts.push_back(slot->instance->Health().restarts);
  return restarts;
}

int InstanceScheduler::ServingLocked() const {
  int serving = 0;
  for (const auto& slot : slots_) serving += slot->retiring ? 0 : 1;
  return serving;
}

int InstanceScheduler::Instances() const {
  std::lock_guard lock(mutex_);
  return ServingLocked();
}

Status InstanceScheduler::AddInstance(std::unique_ptr<Instance> instance) {
  if (instance == nullptr) return InvalidArgument("no instance to add");
  Slot* slot = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return Unavailable("servable " + host_.key() + " is unloading");
    slots_.push_back(std::make_unique<Slot>());
    slot = slots_.back().get();
    slot->instance = std::move(instance);
  }
  Serve(slot);
  LogInfo("servable " + host_.key() + ": instance added (" + std::to_string(Instances()) +
          " now)");
  return Status::Ok();
}

Result<std::unique_ptr<Instance>> InstanceScheduler::RemoveInstance() {
  std::unique_lock lock(mutex_);
  if (ServingLocked() <= 1) {
    return Conflict("servable " + host_.key() +
                              " keeps its last instance (unload it instead)");
  }
  Slot* slot = RetireLocked(lock);
  if (slot == nullptr) return Unavailable("servable " + host_.key() + " is unloading");
  std::unique_ptr<Instance> instance = std::move(slot->instance);
  std::erase_if(slots_, [slot](const std::unique_ptr<Slot>& each) { return each.get() == slot; });
  int serving = ServingLocked();
  lock.unlock();
  LogInfo("servable " + host_.key() + ": instance removed (" + std::to_string(serving) +
          " now)");
  return instance;
}

}  // namespace orrery
