// Writing package archives with libarchive.
//
// Archives are deterministic: the same files (paths, bytes, exec bits) give
// the same archive bytes, so a download can be compared with an upload and
// `if_changed` publishes can be detected. Every header therefore carries
// mtime 0, uid/gid 0, no user or group name, and mode 0644 or 0755; the
// pax_restricted format only adds an extended header when a path or size
// does not fit ustar, and that header is built from the same fields.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <system_error>
#include <utility>
#include <vector>

#include "core/files.h"
#include "repository/archive.h"
#include "repository/manifest.h"

namespace orrery {
namespace {

namespace fs = std::filesystem;

constexpr size_t kCopyBlockBytes = size_t{256} * 1024;

struct EntryDeleter {
  void operator()(archive_entry* entry) const { archive_entry_free(entry); }
};

// Owns the libarchive handle and the output file. If it is destroyed before
// a successful Finish(), the partial output is removed, so a failed writer
// never leaves something that looks like a complete archive.
class TarWriter final : public ArchiveWriter {
 public:
  TarWriter(archive* handle, UniqueFd fd, fs::path output)
      : handle_(handle), fd_(std::move(fd)), output_(std::move(output)) {}

  ~TarWriter() override {
    if (handle_ == nullptr) return;
    archive_write_fail(handle_);  // no end-of-archive trailer on a broken archive
    archive_write_free(handle_);
    ::unlink(output_.c_str());
  }

  Status AddFile(std::string_view path, uint64_t size, bool executable,
                 const std::function<Status(const WriteFn& write)>& fill) override {
    if (handle_ == nullptr || failed_) return Internal("archive writer is finished or failed");
    RETURN_IF_ERROR(ValidatePackagePath(path));
    std::unique_ptr<archive_entry, EntryDeleter> entry(archive_entry_new());
    // The name's bytes (UTF-8 by convention) as the multibyte form. Setting
    // only the UTF-8 form crashes libarchive 3.6 in the C locale, which a
    // process has unless it calls setlocale().
    archive_entry_copy_pathname(entry.get(), std::string(path).c_str());
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), executable ? 0755 : 0644);
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(size));
    archive_entry_set_mtime(entry.get(), 0, 0);
    archive_entry_set_uid(entry.get(), 0);
    archive_entry_set_gid(entry.get(), 0);
    // ARCHIVE_WARN: a non-ASCII name could not be converted from the locale
    // to UTF-8, so libarchive stored its bytes as they are, marked
    // hdrcharset=BINARY in a pax header. Readers get the same bytes back.
    int rc = archive_write_header(handle_, entry.get());
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return Fail("write header");

    uint64_t written = 0;
    WriteFn write = [&](const char* data, size_t length) -> Status {
      if (length > size - written) {
        return Internal("fill wrote more than " + std::to_string(size) + " bytes");
      }
      RETURN_IF_ERROR(WriteData(data, length));
      written += length;
      return Status::Ok();
    };
    Status filled = fill(write);
    if (filled.ok() && written != size) {
      filled = Internal("fill wrote " + std::to_string(written) + " of " + std::to_string(size) +
                        " bytes");
    }
    if (!filled.ok()) {
      failed_ = true;
      return filled.WithContext("archive entry '" + std::string(path) + "'");
    }
    if (archive_write_finish_entry(handle_) != ARCHIVE_OK) return Fail("finish entry");
    return Status::Ok();
  }

  Status Finish() override {
    if (handle_ == nullptr || failed_) return Internal("archive writer is finished or failed");
    if (archive_write_close(handle_) != ARCHIVE_OK) return Fail("close");
    archive_write_free(handle_);
    handle_ = nullptr;
    // Not fsynced: an archive is a transfer file (an upload or a download in
    // flight), never the durable copy; blobs are.
    Status synced = Status::Ok();
    if (::close(fd_.Release()) != 0) synced = ErrnoStatus("close " + output_.string());
    if (!synced.ok()) ::unlink(output_.c_str());
    return synced;
  }

 private:
  Status WriteData(const char* data, size_t length) {
    while (length > 0) {
      la_ssize_t n = archive_write_data(handle_, data, length);
      if (n <= 0) return Fail("write data");
      data += n;
      length -= static_cast<size_t>(n);
    }
    return Status::Ok();
  }

  Status Fail(const char* what) {
    failed_ = true;
    const char* message = archive_error_string(handle_);
    return Internal("cannot write the archive: " + std::string(message ? message : "error"))
        .WithDetail("archive " + std::string(what) + " " + output_.string() + ": " +
                    (message ? message : "error"));
  }

  archive* handle_;
  UniqueFd fd_;  // libarchive writes to it but does not close it
  fs::path output_;
  bool failed_ = false;
};

struct DiskFile {
  std::string name;  // relative, '/'-separated
  fs::path path;
};

// Directories no package wants: caches and version control.
bool SkippedDirectory(const fs::path& name) {
  return name == "__pycache__" || name == ".ipynb_checkpoints" || name == ".git";
}

// The regular files under `directory`, sorted by relative name. Symlinks are
// refused rather than followed: they could point outside the package. With
// `skip_caches`, SkippedDirectory()s are left out.
Result<std::vector<DiskFile>> ListRegularFiles(const fs::path& directory,
                                               bool skip_caches = false) {
  std::error_code error;
  fs::recursive_directory_iterator it(directory, fs::directory_options::none, error);
  if (error) return FileSystemStatus("read directory " + directory.string(), error);
  std::vector<DiskFile> files;
  for (; it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (error) break;
    fs::file_status status = it->symlink_status(error);
    if (error) break;
    std::string name = it->path().lexically_relative(directory).generic_string();
    if (fs::is_symlink(status)) return InvalidArgument("symbolic link in package: " + name);
    if (fs::is_directory(status)) {
      if (skip_caches && SkippedDirectory(it->path().filename())) it.disable_recursion_pending();
      continue;
    }
    if (!fs::is_regular_file(status)) return InvalidArgument("special file in package: " + name);
    files.push_back({std::move(name), it->path()});
  }
  if (error) return FileSystemStatus("read directory " + directory.string(), error);
  std::sort(files.begin(), files.end(),
            [](const DiskFile& a, const DiskFile& b) { return a.name < b.name; });
  return files;
}

Status AddDiskFile(ArchiveWriter& writer, const DiskFile& file) {
  UniqueFd fd(::open(file.path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open " + file.path.string());
  struct stat info;
  if (::fstat(fd.get(), &info) != 0) return ErrnoStatus("stat " + file.path.string());
  if (!S_ISREG(info.st_mode)) return InvalidArgument("not a regular file: " + file.name);
  auto size = static_cast<uint64_t>(info.st_size);
  return writer.AddFile(file.name, size, (info.st_mode & 0111) != 0,
                        [&](const ArchiveWriter::WriteFn& write) -> Status {
                          std::vector<char> buffer(kCopyBlockBytes);
                          uint64_t left = size;
                          while (left > 0) {
                            ssize_t n = ::read(fd.get(), buffer.data(),
                                               std::min<uint64_t>(left, buffer.size()));
                            if (n < 0 && errno == EINTR) continue;
                            if (n < 0) return ErrnoStatus("read " + file.path.string());
                            if (n == 0)
                              return Internal("file shrank while packing: " + file.path.string());
                            RETURN_IF_ERROR(write(buffer.data(), static_cast<size_t>(n)));
                            left -= static_cast<uint64_t>(n);
                          }
                          return Status::Ok();
                        });
}

}  // namespace

Result<std::unique_ptr<ArchiveWriter>> ArchiveWriter::Create(const fs::path& output, bool zstd) {
  archive* handle = archive_write_new();
  if (handle == nullptr) return Internal("archive_write_new failed");
  auto fail = [&](const char* what) {
    const char* message = archive_error_string(handle);
    Status status = Internal(std::string(what) + ": " + (message ? message : "error"));
    archive_write_free(handle);
    return status;
  };
  if (archive_write_set_format_pax_restricted(handle) != ARCHIVE_OK) return fail("pax format");
  // Large writes (libarchive's default is 10 KiB), and no zero padding of the
  // last block beyond the tar end-of-archive records.
  if (archive_write_set_bytes_per_block(handle, 256 * 1024) != ARCHIVE_OK ||
      archive_write_set_bytes_in_last_block(handle, 1) != ARCHIVE_OK) {
    return fail("block size");
  }
  if (zstd) {
    int rc = archive_write_add_filter_zstd(handle);
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return fail("zstd filter");
  }
  UniqueFd fd(::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) {
    archive_write_free(handle);
    return ErrnoStatus("create " + output.string());
  }
  if (archive_write_open_fd(handle, fd.get()) != ARCHIVE_OK) {
    Status status = fail("open archive");
    ::unlink(output.c_str());
    return status;
  }
  return std::unique_ptr<ArchiveWriter>(new TarWriter(handle, std::move(fd), output));
}

Result<std::vector<std::string>> PackSelection(const fs::path& directory,
                                               const std::vector<std::string>& selection,
                                               const fs::path& output, bool zstd) {
  std::map<std::string, DiskFile> chosen;  // by name: sorted, each once
  for (const std::string& item : selection) {
    fs::path path = directory / item;
    std::error_code error;
    fs::file_status status = fs::symlink_status(path, error);
    if (fs::is_symlink(status)) return InvalidArgument("symbolic link in package: " + item);
    if (fs::is_regular_file(status)) {
      chosen[item] = DiskFile{item, path};
    } else if (fs::is_directory(status)) {
      ASSIGN_OR_RETURN(std::vector<DiskFile> files, ListRegularFiles(path, /*skip_caches=*/true));
      for (DiskFile& file : files) {
        std::string name = item + "/" + file.name;
        chosen[name] = DiskFile{name, std::move(file.path)};
      }
    } else if (!fs::exists(status)) {
      return NotFound("'" + item + "' is not in " + directory.string());
    } else {
      return InvalidArgument("special file in package: " + item);
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<ArchiveWriter> writer, ArchiveWriter::Create(output, zstd));
  std::vector<std::string> names;
  for (const auto& [name, file] : chosen) {
    RETURN_IF_ERROR(AddDiskFile(*writer, file));
    names.push_back(name);
  }
  RETURN_IF_ERROR(writer->Finish());
  return names;
}

Status PackDirectory(const fs::path& directory, const fs::path& output, bool zstd) {
  ASSIGN_OR_RETURN(std::vector<DiskFile> files, ListRegularFiles(directory));
  ASSIGN_OR_RETURN(std::unique_ptr<ArchiveWriter> writer, ArchiveWriter::Create(output, zstd));
  for (const DiskFile& file : files) RETURN_IF_ERROR(AddDiskFile(*writer, file));
  return writer->Finish();
}

}  // namespace orrery
