// BlobStore: content-addressed, durable file storage keyed by SHA-256.
//
// Layout under `root`: `<root>/<first two hex chars>/<64 hex chars>` for blobs
// and `<root>/tmp/` for writes in progress. A blob becomes visible only after
// its bytes are fsynced, renamed into place and the directory fsynced, so a
// crash never leaves a partial blob under its final name (only temp files,
// which Open() removes). Reads re-hash the bytes and fail with kDataLoss when
// they do not match the name.
//
// Ownership: the BlobStore owns nothing but its root path; BlobWriters it
// hands out are owned by the caller and must not outlive the store.
// Thread-safety: all methods are safe to call from several threads. Writing
// the same content concurrently is fine (rename is atomic, content identical).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace orrery {

// Streams one blob to a temp file while hashing it. Commit() makes it durable
// under its digest; destroying an uncommitted writer removes the temp file.
// Thread-compatible: one thread at a time.
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;
  virtual Status Append(const void* data, size_t size) = 0;
  Status Append(std::string_view data) { return Append(data.data(), data.size()); }
  // Bytes appended so far.
  virtual uint64_t size() const = 0;
  // fsync, rename to the digest's path, fsync the directory. When
  // `expected_sha256` is non-empty and differs from the content's digest, the
  // blob is discarded and kInvalidArgument names both digests.
  virtual Result<std::string> Commit(std::string_view expected_sha256 = {}) = 0;
  // The digest of the blob a failed Commit had already put in place (it
  // failed after the rename, syncing the directory): the caller's cleanup
  // must consider it. "" otherwise.
  virtual std::string placed() const = 0;
};

struct BlobInfo {
  std::string digest;  // 64 lowercase hex
  uint64_t size = 0;
  int64_t modified_at = 0;  // unix seconds, used by garbage collection grace periods
};

class BlobStore {
 public:
  // Creates `root` (mode 0700) if needed and removes leftover temp files.
  static Result<std::unique_ptr<BlobStore>> Open(const std::filesystem::path& root);

  Result<std::unique_ptr<BlobWriter>> NewWriter();
  // Writes a whole blob at once; returns its digest.
  Result<std::string> Put(std::string_view data);

  bool Exists(std::string_view digest) const;
  Result<BlobInfo> Stat(std::string_view digest) const;

  // Streams the blob to `sink` in chunks, then verifies the digest; returns
  // kDataLoss on mismatch (the sink has then seen bad bytes: callers stage
  // output and discard it on error). kNotFound if absent.
  Status Read(std::string_view digest,
              const std::function<Status(const char* data, size_t size)>& sink) const;
  // Whole blob in memory, verified.
  Result<std::string> ReadAll(std::string_view digest) const;
  // Copies the blob to `destination` (created with `mode`), verified and
  // fsynced; on any error `destination` does not exist afterwards.
  Status CopyTo(std::string_view digest, const std::filesystem::path& destination,
                unsigned mode = 0644) const;

  // Every committed blob (for garbage collection and consistency checks).
  Result<std::vector<BlobInfo>> List() const;
  // Removes a blob; removing an absent blob is OK.
  Status Remove(std::string_view digest);

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path PathFor(std::string_view digest) const;

 private:
  explicit BlobStore(std::filesystem::path root) : root_(std::move(root)) {}
  std::filesystem::path root_;
};

}  // namespace orrery
