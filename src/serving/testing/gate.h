// Gate: a point that test threads wait at until the test opens it, so that
// "the instance is busy" or "the load has not finished" is a state the test
// sets and observes, never a guess at how long something takes.
// Thread-safety: every method from any thread.
#pragma once

#include <condition_variable>
#include <mutex>

namespace orrery::testing {

class Gate {
 public:
  explicit Gate(bool open = true) : open_(open) {}

  void Close() {
    std::lock_guard lock(mutex_);
    open_ = false;
  }
  void Open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    changed_.notify_all();
  }
  // Waits until the gate is open.
  void Pass() {
    std::unique_lock lock(mutex_);
    ++waiting_;
    changed_.notify_all();
    changed_.wait(lock, [&] { return open_; });
    --waiting_;
  }
  // Blocks until at least `n` threads wait at the gate.
  void AwaitWaiting(int n) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return waiting_ >= n; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_;
  int waiting_ = 0;
};

}  // namespace orrery::testing
