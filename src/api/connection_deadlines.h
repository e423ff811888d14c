// ConnectionDeadlines: drops connections whose current step (reading a
// header, reading a body, writing an answer) ran past its deadline.
//
// Why not a timer per operation: re-arming an Asio timer on every read and
// write costs timerfd system calls on every request; here a connection only
// stores a number, and one timer looks at every connection once a second.
// Deadlines are therefore enforced within about a second of passing.
//
// Ownership: holds connections weakly (a closed connection just drops out).
// Thread-safety: Add/Remove from any thread; Expire runs on the timer's
// executor and must only post work to each connection's own strand.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace orrery {

// Steady-clock milliseconds, the unit of deadlines (0 = none).
int64_t SteadyNowMs();

class DeadlineHolder {
 public:
  virtual ~DeadlineHolder() = default;
  // Called by the sweeper once the deadline passed; closes the connection
  // on its own strand.
  virtual void Expire() = 0;

  void SetDeadline(std::chrono::milliseconds from_now) {
    deadline_ms_.store(SteadyNowMs() + from_now.count(), std::memory_order_relaxed);
  }
  void ClearDeadline() { deadline_ms_.store(0, std::memory_order_relaxed); }
  bool PastDeadline(int64_t now_ms) const {
    int64_t deadline = deadline_ms_.load(std::memory_order_relaxed);
    return deadline != 0 && now_ms > deadline;
  }

 private:
  std::atomic<int64_t> deadline_ms_{0};
};

class ConnectionDeadlines : public std::enable_shared_from_this<ConnectionDeadlines> {
 public:
  explicit ConnectionDeadlines(boost::asio::io_context& io) : timer_(io) {}

  // Starts the once-a-second check; stops when the io_context stops.
  void Start();
  uint64_t Add(std::weak_ptr<DeadlineHolder> connection);
  void Remove(uint64_t id);

 private:
  void Sweep();

  boost::asio::steady_timer timer_;
  std::mutex mutex_;
  uint64_t next_id_ = 1;                                                // GUARDED_BY(mutex_)
  std::unordered_map<uint64_t, std::weak_ptr<DeadlineHolder>> connections_;  // GUARDED_BY(mutex_)
};

}  // namespace orrery
