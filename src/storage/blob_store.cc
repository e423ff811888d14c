// BlobStore implementation notes.
//
// Durability: a blob is written to <root>/tmp/<random>, fsynced, renamed to
// <root>/<shard>/<digest> and the shard directory fsynced (and <root> too when
// the shard directory was created by this commit, so the new directory entry
// itself survives a crash). Temp files live in their own directory on the same
// file system, so rename(2) is atomic and Open() can clear them wholesale.
//
// Blob files are mode 0444: content-addressed files are immutable, and a
// read-only mode turns an accidental open-for-write of a blob (a bug, or a
// caller that writes through PathFor()) into EACCES instead of silent
// corruption. rename(2) and unlink(2) depend on the directory's permissions,
// so committing over an existing blob and Remove() are unaffected.
//
// Paths are built only from digests that passed IsSha256Hex(), so no input can
// name a file outside the store ("../", "/", NUL and the like are refused).
#include "storage/blob_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "core/files.h"
#include "core/hash.h"
#include "core/random.h"

namespace orrery {
namespace {

constexpr size_t kChunkSize = 256 * 1024;
constexpr mode_t kBlobMode = 0444;
constexpr const char* kTmpDirName = "tmp";

Status CheckDigest(std::string_view digest) {
  if (IsSha256Hex(digest)) return Status::Ok();
  return InvalidArgument("not a SHA-256 digest (64 lowercase hex characters): '" +
                         std::string(digest.substr(0, 80)) + "'");
}

// Reads `fd` to its end in kChunkSize pieces, hashing and feeding `sink`;
// returns kDataLoss when the content's digest is not `digest`.
Status StreamVerified(int fd, std::string_view digest, const std::string& what,
                      const std::function<Status(const char*, size_t)>& sink) {
  std::unique_ptr<char[]> buffer(new char[kChunkSize]);
  Sha256 hasher;
  while (true) {
    ssize_t n = ::read(fd, buffer.get(), kChunkSize);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read " + what);
    }
    if (n == 0) break;
    hasher.Update(buffer.get(), static_cast<size_t>(n));
    RETURN_IF_ERROR(sink(buffer.get(), static_cast<size_t>(n)));
  }
  std::string actual = hasher.FinishHex();
  if (actual != digest) {
    return DataLoss("blob " + std::string(digest) + " is corrupt: content hashes to " + actual);
  }
  return Status::Ok();
}

// mkdir `dir`; sets `created` when this call made it. An existing one is fine
// (another writer may have created it concurrently).
Status MakeDir(const std::filesystem::path& dir, bool& created) {
  created = false;
  if (::mkdir(dir.c_str(), 0700) == 0) {
    created = true;
    return Status::Ok();
  }
  if (errno == EEXIST) return Status::Ok();
  return ErrnoStatus("mkdir " + dir.string());
}

// Writer for one blob. Owns its temp file until Commit() renames it.
class FileBlobWriter final : public BlobWriter {
 public:
  FileBlobWriter(const BlobStore* store, std::filesystem::path temp, UniqueFd fd)
      : store_(store), temp_(std::move(temp)), fd_(std::move(fd)) {}
  ~FileBlobWriter() override {
    if (!temp_.empty()) ::unlink(temp_.c_str());
  }

  Status Append(const void* data, size_t size) override {
    if (!fd_.valid()) return Internal("blob writer already committed or failed");
    Status status = WriteAll(fd_.get(), data, size, temp_.string());
    if (!status.ok()) return Fail(status);
    hasher_.Update(data, size);
    size_ += size;
    return Status::Ok();
  }

  uint64_t size() const override { return size_; }
  std::string placed() const override { return placed_; }

  Result<std::string> Commit(std::string_view expected_sha256) override {
    if (!fd_.valid()) return Internal("blob writer already committed or failed");
    if (!expected_sha256.empty() && !IsSha256Hex(expected_sha256)) {
      return Fail(CheckDigest(expected_sha256));
    }
    std::string digest = hasher_.FinishHex();
    if (!expected_sha256.empty() && expected_sha256 != digest) {
      return Fail(InvalidArgument("content digest mismatch: expected sha256:" +
                                  std::string(expected_sha256) + ", got sha256:" + digest));
    }
    Status status = MakeDurable(digest);
    if (!status.ok()) return Fail(status);
    return digest;
  }

 private:
  // Discards the temp file; the writer is unusable afterwards.
  Status Fail(Status status) {
    fd_ = UniqueFd();
    ::unlink(temp_.c_str());
    temp_.clear();
    return status;
  }

  Status MakeDurable(const std::string& digest) {
    if (::fchmod(fd_.get(), kBlobMode) != 0) return ErrnoStatus("chmod " + temp_.string());
    if (::fsync(fd_.get()) != 0) return ErrnoStatus("fsync " + temp_.string());
    fd_ = UniqueFd();
    std::filesystem::path final_path = store_->PathFor(digest);
    std::filesystem::path shard = final_path.parent_path();
    bool created_shard = false;
    RETURN_IF_ERROR(MakeDir(shard, created_shard));
    // Renaming over an existing copy is deliberate: the content is identical,
    // a damaged copy gets replaced, and the fresh mtime protects a re-uploaded
    // blob from a garbage collector's grace period check.
    if (::rename(temp_.c_str(), final_path.c_str()) != 0) {
      return ErrnoStatus("rename to " + final_path.string());
    }
    temp_.clear();
    placed_ = digest;
    RETURN_IF_ERROR(FsyncDir(shard));
    if (created_shard) RETURN_IF_ERROR(FsyncDir(store_->root()));
    return Status::Ok();
  }

  const BlobStore* store_;
  std::filesystem::path temp_;  // empty once renamed or discarded
  UniqueFd fd_;                 // invalid once committed or failed
  Sha256 hasher_;
  uint64_t size_ = 0;
  std::string placed_;  // set once renamed into place
};

// Removes everything inside `dir` (not `dir` itself).
Status ClearDir(const std::filesystem::path& dir) {
  std::error_code error;
  for (std::filesystem::directory_iterator it(dir, error), end; !error && it != end;
       it.increment(error)) {
    std::filesystem::remove_all(it->path(), error);
    if (error) break;
  }
  if (error) return FileSystemStatus("clear " + dir.string(), error);
  return Status::Ok();
}

bool IsShardName(const std::string& name) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); };
  return name.size() == 2 && hex(name[0]) && hex(name[1]);
}

// Appends the blobs in one shard directory; entries that vanish while listing
// (a concurrent Remove) are skipped.
Status ListShard(const std::filesystem::path& shard, std::vector<BlobInfo>& out) {
  std::string shard_name = shard.filename().string();
  std::error_code error;
  for (std::filesystem::directory_iterator it(shard, error), end; !error && it != end;
       it.increment(error)) {
    std::string name = it->path().filename().string();
    if (!IsSha256Hex(name) || name.compare(0, 2, shard_name) != 0) continue;
    struct stat st;
    if (::lstat(it->path().c_str(), &st) != 0) {
      if (errno == ENOENT) continue;
      return ErrnoStatus("stat " + it->path().string());
    }
    if (!S_ISREG(st.st_mode)) continue;
    out.push_back({name, static_cast<uint64_t>(st.st_size), static_cast<int64_t>(st.st_mtime)});
  }
  if (error) return FileSystemStatus("list " + shard.string(), error);
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<BlobStore>> BlobStore::Open(const std::filesystem::path& root) {
  if (root.empty()) return InvalidArgument("blob store root is empty");
  RETURN_IF_ERROR(EnsureDir(root, 0700));
  std::filesystem::path tmp = root / kTmpDirName;
  RETURN_IF_ERROR(EnsureDir(tmp, 0700));
  // Anything in tmp is a write interrupted by a crash: it was never visible
  // under a digest, so it is safe to delete. (Opening a second store on a root
  // that another process is writing to is not supported.)
  RETURN_IF_ERROR(ClearDir(tmp));
  return std::unique_ptr<BlobStore>(new BlobStore(root));
}

Result<std::unique_ptr<BlobWriter>> BlobStore::NewWriter() {
  std::filesystem::path temp = root_ / kTmpDirName / ("blob-" + RandomHex(12));
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoStatus("create " + temp.string());
  return std::unique_ptr<BlobWriter>(new FileBlobWriter(this, std::move(temp), std::move(fd)));
}

Result<std::string> BlobStore::Put(std::string_view data) {
  ASSIGN_OR_RETURN(std::unique_ptr<BlobWriter> writer, NewWriter());
  RETURN_IF_ERROR(writer->Append(data));
  return writer->Commit();
}

std::filesystem::path BlobStore::PathFor(std::string_view digest) const {
  // An unchecked string never becomes a path: invalid digests map to "".
  if (!IsSha256Hex(digest)) return {};
  return root_ / std::string(digest.substr(0, 2)) / std::string(digest);
}

bool BlobStore::Exists(std::string_view digest) const {
  if (!IsSha256Hex(digest)) return false;
  struct stat st;
  return ::stat(PathFor(digest).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Result<BlobInfo> BlobStore::Stat(std::string_view digest) const {
  RETURN_IF_ERROR(CheckDigest(digest));
  std::filesystem::path path = PathFor(digest);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return NotFound("no blob " + std::string(digest));
    return ErrnoStatus("stat " + path.string());
  }
  return BlobInfo{std::string(digest), static_cast<uint64_t>(st.st_size),
                  static_cast<int64_t>(st.st_mtime)};
}

Status BlobStore::Read(std::string_view digest,
                       const std::function<Status(const char* data, size_t size)>& sink) const {
  RETURN_IF_ERROR(CheckDigest(digest));
  std::filesystem::path path = PathFor(digest);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return NotFound("no blob " + std::string(digest));
    return ErrnoStatus("open " + path.string());
  }
  return StreamVerified(fd.get(), digest, path.string(), sink);
}

Result<std::string> BlobStore::ReadAll(std::string_view digest) const {
  std::string content;
  RETURN_IF_ERROR(Read(digest, [&content](const char* data, size_t size) {
    content.append(data, size);
    return Status::Ok();
  }));
  return content;
}

Status BlobStore::CopyTo(std::string_view digest, const std::filesystem::path& destination,
                         unsigned mode) const {
  RETURN_IF_ERROR(CheckDigest(digest));
  std::filesystem::path parent = destination.parent_path();
  if (parent.empty()) parent = ".";
  std::filesystem::path temp =
      parent / ("." + destination.filename().string() + ".tmp-" + RandomHex(8));
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoStatus("create " + temp.string());

  Status status = Read(digest, [&](const char* data, size_t size) {
    return WriteAll(fd.get(), data, size, temp.string());
  });
  if (status.ok() && ::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) {
    status = ErrnoStatus("chmod " + temp.string());
  }
  if (status.ok() && ::fsync(fd.get()) != 0) status = ErrnoStatus("fsync " + temp.string());
  fd = UniqueFd();
  if (status.ok() && ::rename(temp.c_str(), destination.c_str()) != 0) {
    status = ErrnoStatus("rename to " + destination.string());
  }
  if (status.ok()) status = FsyncDir(parent);
  if (!status.ok()) {
    // Whatever stood at `destination` before is gone too: after a failed copy
    // nothing there can be mistaken for the blob.
    ::unlink(temp.c_str());
    ::unlink(destination.c_str());
  }
  return status;
}

Result<std::vector<BlobInfo>> BlobStore::List() const {
  std::vector<BlobInfo> blobs;
  std::error_code error;
  for (std::filesystem::directory_iterator it(root_, error), end; !error && it != end;
       it.increment(error)) {
    if (!IsShardName(it->path().filename().string())) continue;  // skips tmp and strays
    if (!it->is_directory(error) || error) {
      error.clear();
      continue;
    }
    RETURN_IF_ERROR(ListShard(it->path(), blobs));
  }
  if (error) return FileSystemStatus("list " + root_.string(), error);
  std::sort(blobs.begin(), blobs.end(),
            [](const BlobInfo& a, const BlobInfo& b) { return a.digest < b.digest; });
  return blobs;
}

Status BlobStore::Remove(std::string_view digest) {
  RETURN_IF_ERROR(CheckDigest(digest));
  std::filesystem::path path = PathFor(digest);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return ErrnoStatus("remove " + path.string());
  }
  return FsyncDir(path.parent_path());
}

}  // namespace orrery
