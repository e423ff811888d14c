// RequestQueue: the waiting requests of one servable version, one FIFO per
// priority level. Level 1 is the highest: PopFront takes the oldest request
// of the highest non-empty level, and Extract visits in that same order
// (Triton's priority semantics: higher levels first, FIFO within a level).
// A servable without priority levels has one level.
//
// A plain value type over `Job` (InferJob); the caller stores each job's
// level and passes it back. Not thread-safe: its owner (a loading Model, a
// Scheduler) guards it with its mutex.
#pragma once

#include <cstddef>
#include <deque>
#include <utility>
#include <vector>

namespace orrery {

template <typename Job>
class RequestQueue {
 public:
  // What Extract's visitor decides for each job.
  enum class Visit { kSkip, kTake, kStop };

  explicit RequestQueue(size_t levels = 1) : levels_(levels == 0 ? 1 : levels) {}

  size_t levels() const { return levels_.size(); }
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  // Jobs waiting at `level` (1..levels()).
  size_t size(size_t level) const { return levels_[level - 1].size(); }

  // Appends `job` at `level` (1..levels()).
  void Push(size_t level, Job job) {
    levels_[level - 1].push_back(std::move(job));
    ++size_;
  }
  // Puts `job` back at the head of `level`: it was taken and is returned.
  void PushFront(size_t level, Job job) {
    levels_[level - 1].push_front(std::move(job));
    ++size_;
  }
  // Moves the next job (highest level, oldest) into `*job`; false when empty.
  bool PopFront(Job* job) {
    for (std::deque<Job>& level : levels_) {
      if (level.empty()) continue;
      *job = std::move(level.front());
      level.pop_front();
      --size_;
      return true;
    }
    return false;
  }
  // Calls `visit(job)` in PopFront order; moves the jobs it answers kTake
  // for into `taken` (in visiting order) and stops at its first kStop.
  template <typename Visitor>
  void Extract(Visitor&& visit, std::vector<Job>& taken) {
    for (std::deque<Job>& level : levels_) {
      for (auto it = level.begin(); it != level.end();) {
        Visit decision = visit(static_cast<const Job&>(*it));
        if (decision == Visit::kStop) return;
        if (decision == Visit::kSkip) {
          ++it;
          continue;
        }
        taken.push_back(std::move(*it));
        it = level.erase(it);
        --size_;
      }
    }
  }
  // Calls `visit(job)` in PopFront order until it returns false.
  template <typename Visitor>
  void ForEach(Visitor&& visit) const {
    for (const std::deque<Job>& level : levels_) {
      for (const Job& job : level) {
        if (!visit(job)) return;
      }
    }
  }
  // Empties the queue; the jobs in PopFront order.
  std::vector<Job> TakeAll() {
    std::vector<Job> all;
    Extract([](const Job&) { return Visit::kTake; }, all);
    return all;
  }

 private:
  std::vector<std::deque<Job>> levels_;  // [0] is level 1, the highest
  size_t size_ = 0;
};

}  // namespace orrery
