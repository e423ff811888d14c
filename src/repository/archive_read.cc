// Reading package archives (scan, stream, extract) with libarchive.
//
// The archive comes from a client, so the reader trusts nothing in it:
// libarchive is limited to tar (ustar, pax, GNU) with no filter or zstd, and
// every header passes through PackageReader::Next, which applies all the
// rules of archive.h before any byte of data reaches a caller. Sizes are
// checked twice: the declared size before reading, the bytes actually
// delivered while reading. Before libarchive reads an archive, a second,
// independent reading of its headers (tar_headers.h) refuses what libarchive
// would read leniently (NULs in names, sparse entries, unknown types); each
// name libarchive then reports must be the one that reading found.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "core/files.h"
#include "repository/archive.h"
#include "repository/manifest.h"
#include "repository/tar_headers.h"

namespace orrery {
namespace {

namespace fs = std::filesystem;

constexpr size_t kReadBlockBytes = size_t{256} * 1024;

struct ReadHandleDeleter {
  void operator()(archive* handle) const { archive_read_free(handle); }
};

struct Entry {
  ArchiveEntry info;
  bool is_directory = false;
};

Status EntryError(const std::string& path, const std::string& what) {
  return InvalidArgument("archive entry '" + path + "': " + what);
}

// Why an entry of this type is refused; empty for files and directories.
std::string RefusedType(archive_entry* entry) {
  if (archive_entry_hardlink(entry) != nullptr) return "hard links are not allowed";
  switch (archive_entry_filetype(entry)) {
    case AE_IFREG:
    case AE_IFDIR: return "";
    case AE_IFLNK: return "symbolic links are not allowed";
    case AE_IFCHR: return "character devices are not allowed";
    case AE_IFBLK: return "block devices are not allowed";
    case AE_IFIFO: return "FIFOs are not allowed";
    case AE_IFSOCK: return "sockets are not allowed";
    default: return "unsupported entry type";
  }
}

// Iterates the entries of one archive, enforcing every rule of archive.h.
// Owns its libarchive handle and file descriptor. Not thread-safe.
class PackageReader {
 public:
  static Result<std::unique_ptr<PackageReader>> Open(const fs::path& path,
                                                     const ArchiveLimits& limits) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
      if (errno == ENOENT) {
        return NotFound("no such archive").WithDetail("no such archive: " + path.string());
      }
      return ErrnoStatus("open archive " + path.string());
    }
    std::unique_ptr<archive, ReadHandleDeleter> handle(archive_read_new());
    if (!handle) return Internal("archive_read_new failed");
    // Only these: a client must not reach libarchive's other format parsers.
    archive_read_support_filter_none(handle.get());
    archive_read_support_filter_zstd(handle.get());
    archive_read_support_format_tar(handle.get());
    ASSIGN_OR_RETURN(std::vector<std::string> names, ReadTarEntryNames(path, limits.max_entries));
    auto reader =
        std::unique_ptr<PackageReader>(new PackageReader(std::move(fd), std::move(handle), limits));
    reader->names_ = std::move(names);
    if (archive_read_open_fd(reader->handle_.get(), reader->fd_.get(), kReadBlockBytes) !=
        ARCHIVE_OK) {
      return reader->ArchiveError();
    }
    return reader;
  }

  // The next file or directory, checked; nullopt at the end of the archive.
  Result<std::optional<Entry>> Next() {
    while (true) {
      archive_entry* raw = nullptr;
      int rc = archive_read_next_header(handle_.get(), &raw);
      if (rc == ARCHIVE_EOF) return std::optional<Entry>();
      if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return ArchiveError();
      data_left_ = 0;
      Entry entry;
      ASSIGN_OR_RETURN(bool keep, Check(raw, entry));
      if (keep) return std::optional<Entry>(std::move(entry));
    }
  }

  // Streams the current file's data to `sink`, checking that it is exactly
  // the declared size and that the total stays within the limit.
  Status ReadData(const std::function<Status(const char*, size_t)>& sink) {
    buffer_.resize(kReadBlockBytes);
    while (true) {
      la_ssize_t n = archive_read_data(handle_.get(), buffer_.data(), buffer_.size());
      if (n == 0) break;
      if (n < 0) return ArchiveError();
      auto size = static_cast<uint64_t>(n);
      if (size > data_left_) return InvalidArgument("archive entry has more data than declared");
      data_left_ -= size;
      bytes_read_ += size;
      if (bytes_read_ > limits_.max_total_bytes) return TooLargeBytes();
      RETURN_IF_ERROR(sink(buffer_.data(), size));
    }
    if (data_left_ != 0) return InvalidArgument("corrupt archive: an entry is truncated");
    return Status::Ok();
  }

 private:
  PackageReader(UniqueFd fd, std::unique_ptr<archive, ReadHandleDeleter> handle,
                const ArchiveLimits& limits)
      : fd_(std::move(fd)), handle_(std::move(handle)), limits_(limits) {}

  Status ArchiveError() {
    // Format detection failed: the bytes are no tar (zip, gzip, text, ...).
    if (archive_format(handle_.get()) == 0) {
      return InvalidArgument("not a tar archive");
    }
    const char* message = archive_error_string(handle_.get());
    return InvalidArgument(std::string("corrupt archive: ") + (message ? message : "read error"));
  }

  Status TooLargeBytes() const {
    return TooLarge("archive unpacks to more than " + std::to_string(limits_.max_total_bytes) +
                    " bytes");
  }

  // Fills `entry` from `raw`; false for entries that are skipped ("./").
  Result<bool> Check(archive_entry* raw, Entry& entry) {
    const char* name = archive_entry_pathname_utf8(raw);
    if (name == nullptr) name = archive_entry_pathname(raw);
    if (name == nullptr) return InvalidArgument("archive entry without a name");
    RETURN_IF_ERROR(CheckSameName(raw));
    std::string path = name;
    if (path.rfind("./", 0) == 0) path.erase(0, 2);  // GNU tar's "./file"
    bool is_directory =
        archive_entry_filetype(raw) == AE_IFDIR && archive_entry_hardlink(raw) == nullptr;
    if (is_directory && (path.empty() || path == ".")) return false;  // the root itself
    if (is_directory && path.back() == '/') path.pop_back();
    Status valid = ValidatePackagePath(path);
    if (!valid.ok()) return valid.WithContext("archive entry");
    // The path is now known to be printable; later messages may show it.
    std::string refused = RefusedType(raw);
    if (!refused.empty()) return EntryError(path, refused);
    if (++entries_ > limits_.max_entries) {
      return TooLarge("archive has more than " + std::to_string(limits_.max_entries) + " entries");
    }
    RETURN_IF_ERROR(CheckTree(path, is_directory));
    entry.is_directory = is_directory;
    entry.info.path = std::move(path);
    entry.info.executable = (archive_entry_perm(raw) & 0111) != 0;
    if (!is_directory) RETURN_IF_ERROR(CheckSize(raw, entry.info));
    return true;
  }

  // The next name of the second reading must be the name libarchive read.
  Status CheckSameName(archive_entry* raw) {
    size_t index = next_name_++;
    const char* utf8 = archive_entry_pathname_utf8(raw);
    const char* bytes = archive_entry_pathname(raw);
    if (index < names_.size() && ((utf8 != nullptr && names_[index] == utf8) ||
                                  (bytes != nullptr && names_[index] == bytes))) {
      return Status::Ok();
    }
    return InvalidArgument("corrupt archive: entry " + std::to_string(index + 1) +
                           " reads differently with two tar readers");
  }

  Status CheckSize(archive_entry* raw, ArchiveEntry& info) {
    la_int64_t size = archive_entry_size(raw);
    if (size < 0) return EntryError(info.path, "invalid size");
    info.size = static_cast<uint64_t>(size);
    if (info.size > limits_.max_total_bytes - declared_bytes_) return TooLargeBytes();
    declared_bytes_ += info.size;
    data_left_ = info.size;
    return Status::Ok();
  }

  // Refuses duplicates and a path that is a file in one entry and a
  // directory (explicit, or implied by a longer path) in another.
  Status CheckTree(const std::string& path, bool is_directory) {
    if (!kinds_.emplace(path, is_directory).second) return EntryError(path, "duplicate path");
    if (!is_directory && implied_directories_.count(path) != 0) {
      return EntryError(path, "is both a file and a directory");
    }
    for (size_t slash = path.find('/'); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      std::string parent = path.substr(0, slash);
      auto it = kinds_.find(parent);
      if (it != kinds_.end() && !it->second) {
        return EntryError(path, "'" + parent + "' is both a file and a directory");
      }
      implied_directories_.insert(std::move(parent));
    }
    return Status::Ok();
  }

  UniqueFd fd_;  // declared before handle_: closed after libarchive is done with it
  std::unique_ptr<archive, ReadHandleDeleter> handle_;
  ArchiveLimits limits_;
  uint64_t entries_ = 0;
  uint64_t declared_bytes_ = 0;
  uint64_t bytes_read_ = 0;
  uint64_t data_left_ = 0;             // of the current file
  std::map<std::string, bool> kinds_;  // path -> is_directory
  std::set<std::string> implied_directories_;
  std::vector<char> buffer_;
  std::vector<std::string> names_;  // the second reading's (tar_headers.h)
  size_t next_name_ = 0;
};

// Writes the files of an archive under `root`, creating parent directories
// as needed. Only creates names that do not exist yet (O_EXCL, mkdir), and
// never follows a symlink (O_NOFOLLOW), so even a bug in the checks above
// cannot make it write outside `root`.
class ExtractVisitor : public ArchiveVisitor {
 public:
  explicit ExtractVisitor(fs::path root) : root_(std::move(root)) { directories_.push_back(root_); }

  Status BeginFile(const ArchiveEntry& entry) override {
    RETURN_IF_ERROR(MakeParents(entry.path));
    path_ = root_ / entry.path;
    mode_t mode = entry.executable ? 0755 : 0644;
    fd_ =
        UniqueFd(::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
    if (!fd_.valid()) return ErrnoStatus("create " + path_.string());
    // Exact mode whatever the umask.
    if (::fchmod(fd_.get(), mode) != 0) return ErrnoStatus("chmod " + path_.string());
    return Status::Ok();
  }

  Status Data(const char* data, size_t size) override {
    return WriteAll(fd_.get(), data, size, path_.string());
  }

  Status EndFile() override {
    if (::fsync(fd_.get()) != 0) return ErrnoStatus("fsync " + path_.string());
    if (::close(fd_.Release()) != 0) return ErrnoStatus("close " + path_.string());
    return Status::Ok();
  }

  // Makes the directory entries durable (the files were fsynced one by one).
  Status SyncDirectories() const {
    for (const fs::path& directory : directories_) RETURN_IF_ERROR(FsyncDir(directory));
    return Status::Ok();
  }

 private:
  Status MakeParents(const std::string& path) {
    for (size_t slash = path.find('/'); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      std::string parent = path.substr(0, slash);
      if (!created_.insert(parent).second) continue;
      fs::path directory = root_ / parent;
      if (::mkdir(directory.c_str(), 0755) != 0) return ErrnoStatus("mkdir " + directory.string());
      if (::chmod(directory.c_str(), 0755) != 0) return ErrnoStatus("chmod " + directory.string());
      directories_.push_back(directory);
    }
    return Status::Ok();
  }

  fs::path root_;
  fs::path path_;  // of the file being written
  UniqueFd fd_;
  std::set<std::string> created_;
  std::vector<fs::path> directories_;
};

Status RenameNoReplace(const fs::path& from, const fs::path& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
    return Status::Ok();
  }
  if (errno == EEXIST) return Conflict("destination exists: " + to.string());
  if (errno != EINVAL && errno != ENOSYS) return ErrnoStatus("rename to " + to.string());
  // The file system cannot do RENAME_NOREPLACE; rename(2) still refuses a
  // non-empty destination, and we checked for absence before extracting.
  if (::rename(from.c_str(), to.c_str()) != 0) return ErrnoStatus("rename to " + to.string());
  return Status::Ok();
}

}  // namespace

Result<ArchiveScan> ScanPackageArchive(const fs::path& archive, const ArchiveLimits& limits) {
  ASSIGN_OR_RETURN(auto reader, PackageReader::Open(archive, limits));
  ArchiveScan scan;
  while (true) {
    ASSIGN_OR_RETURN(std::optional<Entry> entry, reader->Next());
    if (!entry) break;
    if (entry->is_directory) continue;
    if (entry->info.path == kManifestFileName) {
      if (entry->info.size > limits.max_manifest_bytes) {
        return TooLarge(std::string(kManifestFileName) + " is larger than " +
                        std::to_string(limits.max_manifest_bytes) + " bytes");
      }
      RETURN_IF_ERROR(reader->ReadData([&scan](const char* data, size_t size) {
        scan.manifest_text.append(data, size);
        return Status::Ok();
      }));
      scan.has_manifest = true;
    }
    scan.files.push_back(std::move(entry->info));
  }
  return scan;
}

Status ReadPackageArchive(const fs::path& archive, const ArchiveLimits& limits,
                          ArchiveVisitor& visitor) {
  ASSIGN_OR_RETURN(auto reader, PackageReader::Open(archive, limits));
  while (true) {
    ASSIGN_OR_RETURN(std::optional<Entry> entry, reader->Next());
    if (!entry) return Status::Ok();
    if (entry->is_directory) continue;
    RETURN_IF_ERROR(visitor.BeginFile(entry->info));
    RETURN_IF_ERROR(reader->ReadData(
        [&visitor](const char* data, size_t size) { return visitor.Data(data, size); }));
    RETURN_IF_ERROR(visitor.EndFile());
  }
}

// Directory entries are not reproduced: a package is its files (the hub
// stores nothing else), and their parent directories are created as needed.
Status ExtractPackageArchive(const fs::path& archive, const fs::path& destination,
                             const ArchiveLimits& limits) {
  struct stat info;
  if (::lstat(destination.c_str(), &info) == 0) {
    return Conflict("destination exists: " + destination.string());
  }
  if (errno != ENOENT) return ErrnoStatus("stat " + destination.string());
  fs::path parent = destination.parent_path();
  if (parent.empty()) parent = ".";
  ASSIGN_OR_RETURN(TempDir staging,
                   TempDir::Create(parent, "." + destination.filename().string() + ".extract-"));
  ExtractVisitor visitor(staging.path());
  RETURN_IF_ERROR(ReadPackageArchive(archive, limits, visitor));
  RETURN_IF_ERROR(visitor.SyncDirectories());
  if (::chmod(staging.path().c_str(), 0755) != 0) {
    return ErrnoStatus("chmod " + staging.path().string());
  }
  RETURN_IF_ERROR(RenameNoReplace(staging.path(), destination));
  staging.Release();
  return FsyncDir(parent);
}

}  // namespace orrery
