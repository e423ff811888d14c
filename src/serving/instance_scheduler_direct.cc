// DirectScheduler (instance_scheduler.h): in-process instances, run on the
// thread that submits. A request that finds an idle slot runs at once on
// the submitting thread; the thread that finishes a request takes the next
// queued one before it returns its slot to the idle list, so queued
// requests never wait for a thread of their own.
#include "serving/instance_scheduler.h"

namespace orrery {

bool DirectScheduler::RunNowLocked(std::unique_lock<std::mutex>& lock, InferJob& job) {
  if (idle_.empty()) return false;
  Slot* slot = idle_.back();
  idle_.pop_back();
  lock.unlock();
  RunAndDrain(slot, std::move(job));
  return true;
}

// A new slot first drains what queued, on this thread (the load's, or the
// caller of AddInstance).
void DirectScheduler::Serve(Slot* slot) {
  std::unique_lock lock(mutex_);
  InferJob job;
  if (!PopNext(lock, &job)) {
    idle_.push_back(slot);
    if (retiring_ > 0) slot_idle_.notify_all();
    return;
  }
  lock.unlock();
  RunAndDrain(slot, std::move(job));
}

void DirectScheduler::RunAndDrain(Slot* slot, InferJob job) {
  while (true) {
    Execute(slot, job);
    std::unique_lock lock(mutex_);
    if (!PopNext(lock, &job)) {
      idle_.push_back(slot);
      if (retiring_ > 0) slot_idle_.notify_all();
      return;
    }
  }
}

void DirectScheduler::Stop() {
  InstanceScheduler::Stop();
  slot_idle_.notify_all();
}

InstanceScheduler::Slot* DirectScheduler::RetireLocked(std::unique_lock<std::mutex>& lock) {
  ++retiring_;
  slot_idle_.wait(lock, [&] { return !idle_.empty() || stopping_; });
  --retiring_;
  if (idle_.empty()) return nullptr;
  Slot* slot = idle_.back();
  idle_.pop_back();
  slot->retiring = true;
  return slot;
}

}  // namespace orrery
