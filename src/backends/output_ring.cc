#include "backends/output_ring.h"

#include <chrono>

namespace orrery {

void OutputRing::Add(std::string text) {
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  std::lock_guard lock(mutex_);
  bytes_ += text.size();
  lines_.push_back({now, std::move(text)});
  while (lines_.size() > kMaxLines || (bytes_ > kMaxBytes && lines_.size() > 1)) {
    bytes_ -= lines_.front().text.size();
    lines_.pop_front();
    ++dropped_;
  }
}

std::vector<OutputRing::Line> OutputRing::Tail(size_t n) const {
  std::lock_guard lock(mutex_);
  size_t start = lines_.size() > n ? lines_.size() - n : 0;
  return std::vector<Line>(lines_.begin() + static_cast<std::ptrdiff_t>(start), lines_.end());
}

uint64_t OutputRing::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

}  // namespace orrery
