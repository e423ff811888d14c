#include "core/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "core/random.h"

namespace orrery {

Status ErrnoStatus(const std::string& what) {
  int error = errno;
  std::string detail = what + ": " + std::strerror(error);
  if (error == ENOSPC || error == EDQUOT) {
    return InsufficientStorage("not enough storage space left on the server").WithDetail(detail);
  }
  return Internal(std::string("storage error: ") + std::strerror(error)).WithDetail(detail);
}

Status FileSystemStatus(const std::string& what, const std::error_code& error) {
  errno = error.value();
  return ErrnoStatus(what);
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.Release();
  }
  return *this;
}

Status WriteAll(int fd, const void* data, size_t size, const std::string& what) {
  const char* cursor = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, cursor, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write " + what);
    }
    cursor += n;
    size -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status FsyncDir(const std::filesystem::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open directory " + dir.string());
  if (::fsync(fd.get()) != 0) return ErrnoStatus("fsync directory " + dir.string());
  return Status::Ok();
}

Status WriteFileAtomic(const std::filesystem::path& path, std::string_view data, mode_t mode) {
  std::filesystem::path temp = path;
  temp += ".tmp-" + RandomHex(8);
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd.valid()) return ErrnoStatus("create " + temp.string());
  Status status = WriteAll(fd.get(), data.data(), data.size(), temp.string());
  if (status.ok() && ::fchmod(fd.get(), mode) != 0) status = ErrnoStatus("chmod " + temp.string());
  if (status.ok() && ::fsync(fd.get()) != 0) status = ErrnoStatus("fsync " + temp.string());
  fd = UniqueFd();
  if (status.ok() && ::rename(temp.c_str(), path.c_str()) != 0) {
    status = ErrnoStatus("rename to " + path.string());
  }
  if (!status.ok()) {
    ::unlink(temp.c_str());
    return status;
  }
  return FsyncDir(path.parent_path().empty() ? "." : path.parent_path());
}

Result<std::string> ReadFile(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return NotFound("no such file: " + path.string());
    return ErrnoStatus("open " + path.string());
  }
  std::string content;
  char buffer[1 << 16];
  while (true) {
    ssize_t n = ::read(fd.get(), buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read " + path.string());
    }
    if (n == 0) break;
    content.append(buffer, static_cast<size_t>(n));
  }
  return content;
}

Status EnsureDir(const std::filesystem::path& dir, mode_t mode) {
  std::error_code error;
  bool created = std::filesystem::create_directories(dir, error);
  if (error) return FileSystemStatus("create directory " + dir.string(), error);
  // Only a directory made here gets `mode`: an existing one (say /tmp) keeps its own.
  if (created && ::chmod(dir.c_str(), mode) != 0) return ErrnoStatus("chmod " + dir.string());
  return Status::Ok();
}

Result<TempDir> TempDir::Create(const std::filesystem::path& parent, std::string_view prefix) {
  RETURN_IF_ERROR(EnsureDir(parent, 0700));
  std::filesystem::path path = parent / (std::string(prefix) + RandomHex(8));
  if (::mkdir(path.c_str(), 0700) != 0) return ErrnoStatus("mkdir " + path.string());
  return TempDir(path);
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::filesystem::path TempDir::Release() {
  std::filesystem::path path = std::move(path_);
  path_.clear();
  return path;
}

}  // namespace orrery
