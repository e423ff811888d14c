#include "jobs/bounded_log.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace orrery {

BoundedLog::BoundedLog(int fd, int64_t limit_bytes, size_t tail_bytes)
    : fd_(fd), limit_(limit_bytes), tail_bytes_(tail_bytes) {}

void BoundedLog::Append(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // a full disk loses log lines, never the job
    data.remove_prefix(static_cast<size_t>(n));
  }
}

void BoundedLog::Write(std::string_view data) {
  for (char c : data) {
    if (c == '\n') {
      if (!current_line_.empty()) last_line_ = current_line_;
      current_line_.clear();
    } else if (current_line_.size() < 200) {
      current_line_ += c;
    }
  }
  int64_t room = limit_ - written_;
  if (room > 0) {
    std::string_view kept = data.substr(0, static_cast<size_t>(std::min<int64_t>(room, data.size())));
    Append(kept);
    written_ += static_cast<int64_t>(kept.size());
    data.remove_prefix(kept.size());
  }
  if (data.empty()) return;
  if (dropped_ == 0) {
    Note("[orrery] the log reached its limit of " + std::to_string(limit_) +
         " bytes for this attempt: output is dropped from here; its last " +
         std::to_string(tail_bytes_) + " bytes follow when the attempt ends");
  }
  dropped_ += static_cast<int64_t>(data.size());
  tail_.append(data);
  if (tail_.size() > 2 * tail_bytes_) tail_.erase(0, tail_.size() - tail_bytes_);
}

void BoundedLog::Note(const std::string& line) { Append("\n" + line + "\n"); }

void BoundedLog::Finish() {
  if (dropped_ == 0) return;
  if (tail_.size() > tail_bytes_) tail_.erase(0, tail_.size() - tail_bytes_);
  Note("[orrery] " + std::to_string(dropped_) + " bytes of output were dropped; the last " +
       std::to_string(tail_.size()) + " of them:");
  Append(tail_);
}

std::string BoundedLog::LastLine() const {
  return current_line_.empty() ? last_line_ : current_line_;
}

}  // namespace orrery
