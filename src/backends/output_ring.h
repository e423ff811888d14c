// OutputRing: the recent output (stdout and stderr lines) of one servable
// version's worker processes, every instance and every life of them, for its
// owner to read (`orrery logs`, GET .../logs). Bounded by lines and bytes: the
// oldest lines go first, and are counted.
// Thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace orrery {

class OutputRing {
 public:
  static constexpr size_t kMaxLines = 1000;
  static constexpr size_t kMaxBytes = 256 * 1024;

  struct Line {
    int64_t at_ms = 0;  // unix milliseconds
    std::string text;
  };

  void Add(std::string text);
  // The last `n` lines (all when fewer), oldest first.
  std::vector<Line> Tail(size_t n) const;
  // Lines that left the ring to make room.
  uint64_t dropped() const;

 private:
  mutable std::mutex mutex_;
  std::deque<Line> lines_;  // GUARDED_BY(mutex_)
  size_t bytes_ = 0;        // GUARDED_BY(mutex_)
  uint64_t dropped_ = 0;    // GUARDED_BY(mutex_)
};

}  // namespace orrery
