// A second, independent reading of a package archive's tar headers, for
// what libarchive reads leniently (archive_read.cc uses both):
// - a name holding a NUL byte (in a PAX `path`/`linkpath` record or a GNU
//   long name) would be cut at the NUL by libarchive and stored under the
//   shorter name;
// - GNU sparse entries (type 'S', PAX `GNU.sparse.*`) would be stored as
//   regular files of their expanded contents;
// - entries of a type libarchive does not know would be stored as regular
//   files (POSIX says to).
// Each of these is refused (kInvalidArgument naming the entry). The names it
// reads are returned so that the caller can check that libarchive read the
// same entries: if the two readings ever disagree, the archive is refused.
//
// Thread-safe: no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace orrery {

// The full name of every entry (extension headers applied: PAX path, GNU
// long name, ustar prefix), in archive order, up to and including the first
// link, device or FIFO entry (which the caller refuses). The archive is a
// tar, optionally zstd-compressed; "not a tar archive" when its first
// header is no tar header.
// More than `max_entries` entries (but a "./" root) is kTooLarge.
Result<std::vector<std::string>> ReadTarEntryNames(const std::filesystem::path& archive,
                                                   uint64_t max_entries);

// The walker itself, fed the decompressed tar stream in pieces of any size.
// Not thread-safe.
class TarHeaderWalker {
 public:
  explicit TarHeaderWalker(uint64_t max_entries);
  // True once the rest of the stream does not matter (its end, a refusal,
  // or an entry the caller refuses).
  bool done() const { return state_ == State::kDone; }
  // The first refusal; later calls return it again.
  Status Feed(const char* data, size_t size);
  // After the last Feed: the names, or why the stream is refused.
  Result<std::vector<std::string>> Finish();

 private:
  Status Header(const char* block);
  Status ExtensionDone();
  Status Refuse(const std::string& name, const std::string& what);
  Status Corrupt(const std::string& what);

  enum class State { kHeader, kSkip, kExtension, kDone };
  State state_ = State::kHeader;
  Status failed_;
  std::string block_;        // a header block being gathered (< 512 bytes)
  uint64_t skip_ = 0;        // data and padding bytes still to pass over
  char extension_type_ = 0;  // 'x', 'g', 'L' or 'K' while gathering one
  std::string extension_;    // its data
  uint64_t extension_left_ = 0;
  uint64_t extension_padding_ = 0;
  // What the extension headers say of the next entry.
  std::string long_name_, pax_path_;
  bool has_long_name_ = false, has_pax_path_ = false;
  int64_t pax_size_ = -1;
  bool sparse_pending_ = false;
  uint64_t headers_ = 0;
  uint64_t counted_ = 0;  // entries but the root directory
  const uint64_t max_entries_;
  std::vector<std::string> names_;
};

}  // namespace orrery
