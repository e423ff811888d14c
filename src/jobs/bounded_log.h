// BoundedLog: a job's stdout and stderr, appended to its log file up to a
// limit per attempt, so that a job that floods its output fills neither the
// disk nor the hub's memory, and is not slowed or stopped for it.
//
// Past the limit, a marker line says so and further output is dropped, but
// its last `tail_bytes` are kept in memory; Finish() writes how much was
// dropped and that tail, so the end of the output (where errors are) is
// never lost.
//
// Thread-compatible: one writer (the supervisor's loop).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace orrery {

class BoundedLog {
 public:
  // `fd` is an open, appendable file; not owned.
  BoundedLog(int fd, int64_t limit_bytes, size_t tail_bytes = 64 * 1024);

  void Write(std::string_view data);
  // A line of the supervisor's own ("[orrery] ..."), written even past the
  // limit (they are few and short).
  void Note(const std::string& line);
  // Ends the attempt's log: the dropped count and the kept tail.
  void Finish();

  // The last non-empty line of output (for a failure's reason), at most 200 bytes.
  std::string LastLine() const;
  int64_t written() const { return written_; }
  int64_t dropped() const { return dropped_; }

 private:
  void Append(std::string_view data);

  int fd_;
  int64_t limit_;
  size_t tail_bytes_;
  int64_t written_ = 0;  // output bytes written to the file
  int64_t dropped_ = 0;  // output bytes past the limit
  std::string tail_;     // the last tail_bytes_ of the dropped output
  std::string last_line_, current_line_;
};

}  // namespace orrery
