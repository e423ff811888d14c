// Package archives: tar, optionally zstd-compressed, read and written with
// libarchive.
//
// Reading is defensive: an archive comes from a client. Every entry's path is
// checked with ValidatePackagePath; only regular files and directories are
// accepted (symlinks, hard links, devices, FIFOs and sockets are refused);
// duplicate paths, too many entries and too many bytes are refused. All of
// these are kInvalidArgument (limits: kTooLarge) naming the entry, and are
// detected by ScanPackageArchive before the caller writes anything.
// A leading "./" on entry names (as GNU tar writes them) is stripped; a
// directory entry "./" itself is ignored.
//
// Thread-safe: no shared state; each call opens its own archive handle.
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

struct ArchiveLimits {
  uint64_t max_entries = 10000;           // files + directories
  uint64_t max_total_bytes = 4ull << 30;  // sum of file sizes, uncompressed
  uint64_t max_manifest_bytes = 1 << 20;  // orrery.yaml
};

struct ArchiveEntry {
  std::string path;  // validated, normalised (no "./" prefix)
  uint64_t size = 0;
  bool executable = false;  // any x bit set in the entry's mode
};

struct ArchiveScan {
  std::vector<ArchiveEntry> files;  // regular files, in archive order
  std::string manifest_text;        // content of the root orrery.yaml; empty if absent
  bool has_manifest = false;
};

// Pass 1: checks every header and reads orrery.yaml; file data is skipped.
Result<ArchiveScan> ScanPackageArchive(const std::filesystem::path& archive,
                                       const ArchiveLimits& limits);

// Receives the regular files of an archive, in archive order.
class ArchiveVisitor {
 public:
  virtual ~ArchiveVisitor() = default;
  virtual Status BeginFile(const ArchiveEntry& entry) = 0;
  virtual Status Data(const char* data, size_t size) = 0;
  virtual Status EndFile() = 0;
};

// Pass 2: streams each regular file's bytes to `visitor`, with the same checks
// as the scan. The first error from the visitor stops the read and is returned.
Status ReadPackageArchive(const std::filesystem::path& archive, const ArchiveLimits& limits,
                          ArchiveVisitor& visitor);

// Extracts into `destination`, which must not exist: files are written into a
// temp directory beside it that is renamed to `destination` only when the
// whole archive extracted; on error nothing is left behind.
Status ExtractPackageArchive(const std::filesystem::path& archive,
                             const std::filesystem::path& destination, const ArchiveLimits& limits);

// Writes a tar (pax format), zstd-compressed when `zstd`.
// Thread-compatible.
class ArchiveWriter {
 public:
  static Result<std::unique_ptr<ArchiveWriter>> Create(const std::filesystem::path& output,
                                                       bool zstd);
  virtual ~ArchiveWriter() = default;
  // Adds one regular file of exactly `size` bytes; `fill` must call `write`
  // with exactly that many bytes in total.
  using WriteFn = std::function<Status(const char* data, size_t size)>;
  virtual Status AddFile(std::string_view path, uint64_t size, bool executable,
                         const std::function<Status(const WriteFn& write)>& fill) = 0;
  // Flushes and closes; the archive is complete only after this returns OK.
  virtual Status Finish() = 0;
};

// Packs `selection` (paths relative to `directory`: a file, or a directory
// with everything under it but __pycache__, .ipynb_checkpoints and .git
// directories) into `output`, sorted by path; returns the paths packed.
// kNotFound naming an item that is not there; symlinks and special files are
// refused, naming the path.
Result<std::vector<std::string>> PackSelection(const std::filesystem::path& directory,
                                               const std::vector<std::string>& selection,
                                               const std::filesystem::path& output, bool zstd);

// Packs the regular files under `directory` (recursively, sorted by path) into
// `output`. Symlinks and special files are refused, naming the path.
Status PackDirectory(const std::filesystem::path& directory, const std::filesystem::path& output,
                     bool zstd);

}  // namespace orrery
