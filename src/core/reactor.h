// Reactor: the event loop running on the current thread, offered to code
// below the HTTP transport (the serving core) that must wait for a file
// descriptor without holding a thread, e.g. for a worker process's answer.
//
// Thread-safety: a Reactor is used only on its own thread: Current() is the
// reactor of the calling thread, and WaitReadable may only be called there.
#pragma once

#include <chrono>
#include <functional>

namespace orrery {

class Reactor {
 public:
  enum class Wake {
    kReadable,   // the descriptor is readable, or the peer hung up
    kTimedOut,   // the deadline passed first
    kCancelled,  // the reactor is stopping
  };

  virtual ~Reactor() = default;

  // Calls `done` exactly once, on this reactor's thread, after
  // WaitReadable has returned. `fd` must stay open until then and must not
  // be waited on twice at once. An implementation may keep `fd` registered
  // after the wait (disarmed), so that waiting on it again is cheaper;
  // closing `fd` ends that.
  virtual void WaitReadable(int fd, std::chrono::steady_clock::time_point deadline,
                            std::function<void(Wake)> done) = 0;

  // The reactor running on the calling thread, or nullptr.
  static Reactor* Current() { return current_; }

 protected:
  // Called by an implementation on its thread as it starts and stops running.
  static void SetCurrent(Reactor* reactor) { current_ = reactor; }

 private:
  static thread_local Reactor* current_;
};

}  // namespace orrery
