// The queue's rules for Model (model.h): which level a request waits at,
// the next request to run, and requests whose time ran out before they
// could run, which are failed and never reach an instance.
#include "serving/model.h"

namespace orrery {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

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

bool Model::PopNext(std::unique_lock<std::mutex>& lock, InferJob* job) {
  InferJob next;
  while (queue_.PopFront(&next)) {
    if (Clock::now() < next.deadline) {
      *job = std::move(next);
      return true;
    }
    lock.unlock();
    Expire(next, /*accepted=*/true);
    lock.lock();
  }
  return false;
}

std::vector<InferJob> Model::TakeExpiredLocked() {
  using Visit = RequestQueue<InferJob>::Visit;
  auto now = Clock::now();
  std::vector<InferJob> expired;
  queue_.Extract([now](const InferJob& job) { return now >= job.deadline ? Visit::kTake
                                                                         : Visit::kSkip; },
                 expired);
  return expired;
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

std::vector<size_t> Model::QueueLengths() const {
  std::lock_guard lock(mutex_);
  std::vector<size_t> lengths;
  for (size_t level = 1; level <= queue_.levels(); ++level) lengths.push_back(queue_.size(level));
  return lengths;
}

}  // namespace orrery
