// TaskPool: a fixed set of threads that run posted tasks, oldest first.
// For work that must leave the posting thread so that it runs beside it
// (e.g. the independent branches of a pipeline), not for blocking waits.
//
// Ownership: owns its threads. The destructor runs every task posted before
// it returns (those that running tasks post included), then joins them.
// Thread-safety: Post() is safe from any thread, including a task.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace orrery {

class TaskPool {
 public:
  explicit TaskPool(int threads);  // at least 1 thread
  ~TaskPool();
  TaskPool(const TaskPool&) = delete;
  TaskPool& operator=(const TaskPool&) = delete;

  void Post(std::function<void()> task);

 private:
  void Loop();

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;  // GUARDED_BY(mutex_)
  bool stopping_ = false;                    // GUARDED_BY(mutex_)
  std::vector<std::thread> threads_;
};

}  // namespace orrery
