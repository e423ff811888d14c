// Small durable-file helpers on top of POSIX.
//
// Contract: every function reports failure as a Status naming the path and
// the errno text; none throws. Thread-safe (no shared state).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/status.h"

namespace orrery {

// fsync(2) on a directory, so that renames and creations inside it are durable.
Status FsyncDir(const std::filesystem::path& dir);

// Writes `data` to a temp file beside `path`, fsyncs it, renames it over
// `path` with `mode`, and fsyncs the parent directory. Either the old or the
// new content is visible afterwards, never a mix.
Status WriteFileAtomic(const std::filesystem::path& path, std::string_view data,
                       mode_t mode = 0644);

Result<std::string> ReadFile(const std::filesystem::path& path);

// Creates `dir` (and its parents) if missing; a directory it creates gets
// `mode`, an existing one is left as it is.
Status EnsureDir(const std::filesystem::path& dir, mode_t mode = 0755);

// A descriptor that is closed on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd();
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

// write(2) all of `size` bytes, retrying on EINTR and short writes.
Status WriteAll(int fd, const void* data, size_t size, const std::string& what);

// Status for a failed system call, from errno: ENOSPC and EDQUOT are
// kInsufficientStorage ("not enough storage space left on the server"),
// anything else kInternal ("storage error: <strerror>"). `what` (a verb and a
// host path) goes only into the detail, never into the message: messages
// reach HTTP answers, and host paths must not.
Status ErrnoStatus(const std::string& what);
// The same for a failed std::filesystem call.
Status FileSystemStatus(const std::string& what, const std::error_code& error);

// A directory under `parent` removed recursively on destruction unless
// Release()d. Used for staging that must not outlive a failed operation.
class TempDir {
 public:
  static Result<TempDir> Create(const std::filesystem::path& parent, std::string_view prefix);
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir& operator=(TempDir&&) = delete;
  TempDir(const TempDir&) = delete;
  ~TempDir();

  const std::filesystem::path& path() const { return path_; }
  // Keeps the directory; the caller now owns it.
  std::filesystem::path Release();

 private:
  explicit TempDir(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;
};

}  // namespace orrery
