// WorkerScheduler (instance_scheduler.h): instances whose Infer waits on a
// worker process. Each slot has a thread that takes queued requests, so a
// request thread never blocks on a worker. A request arriving on an
// event-loop thread (core/reactor.h) while a slot is free and the queue is
// empty is sent from that thread at once, and the loop waits for the answer
// (AsyncInfer): two thread hand-offs spared. Large requests, and those from
// other threads, go through the slot's thread.
#include "core/reactor.h"
#include "serving/instance_scheduler.h"

namespace orrery {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

bool WorkerScheduler::RunNowLocked(std::unique_lock<std::mutex>& lock, InferJob& job) {
  if (!queue_.empty()) return false;
  Reactor* reactor = Reactor::Current();
  if (reactor == nullptr) return false;
  uint64_t bytes = 0;
  for (const Tensor& input : job.inputs) bytes += input.data.size();
  if (bytes >= AsyncInfer::kMaxAsyncBytes) return false;
  for (const auto& slot : slots_) {
    if (slot->busy || slot->retiring || slot->instance->Async() == nullptr) continue;
    slot->busy = true;
    lock.unlock();
    ExecuteAsync(slot.get(), std::move(job), *reactor);
    return true;
  }
  return false;
}

// The job's answer is read on `reactor`'s thread when it arrives; then the
// slot is free again and its thread takes any request that queued meanwhile.
void WorkerScheduler::ExecuteAsync(Slot* slot, InferJob job, Reactor& reactor) {
  auto start = Clock::now();
  host_.metrics().queue.Observe(start - job.submitted);
  AsyncInfer* async = slot->instance->Async();
  Result<int> fd = async->Begin(job.inputs, job.deadline);
  auto release = [this, slot] {
    std::unique_lock lock(mutex_);
    slot->busy = false;
    bool wake = !queue_.empty() || stopping_ || slot->retiring;
    lock.unlock();
    if (wake) work_.notify_all();
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

void WorkerScheduler::Serve(Slot* slot) {
  StartThread(slot, [this, slot] { Loop(slot); });
  work_.notify_all();
}

// Serves queued requests while the slot is not in use by an event loop;
// ends when the slot retires, or once the queue is empty after Stop().
void WorkerScheduler::Loop(Slot* slot) {
  std::unique_lock lock(mutex_);
  while (true) {
    work_.wait(lock, [&] {
      return !slot->busy && (!queue_.empty() || stopping_ || slot->retiring);
    });
    if (slot->retiring) return;
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

}  // namespace orrery
