// The second reading of tar headers (tar_headers.h). It follows the layout
// of POSIX ustar/pax and GNU tar: 512-byte blocks; a header holds the name
// (0, 100 bytes), size (124, 12: octal, or base-256 when the first byte has
// its high bit set), checksum (148, 8), type (156), magic (257: "ustar\0"
// for POSIX, "ustar  \0" for GNU) and, for POSIX only, a name prefix (345,
// 155). Data follows, padded to whole blocks; a block of zeros ends the
// archive (as libarchive reads it).
#include "repository/tar_headers.h"

#include <archive.h>

#include <cstring>
#include <memory>

#include "core/text.h"

namespace orrery {
namespace {

constexpr size_t kBlock = 512;
// PAX records and GNU long names are read whole; libarchive refuses bigger.
constexpr uint64_t kMaxExtensionBytes = 1 << 20;

uint64_t Padded(uint64_t size) {
  return (size + kBlock - 1) / kBlock * kBlock;
}

std::string_view Field(const char* block, size_t offset, size_t size) {
  return std::string_view(block + offset, ::strnlen(block + offset, size));
}

// An octal field (leading spaces, then digits, ended by a space or NUL), or
// a base-256 one; -1 when malformed or negative.
int64_t Number(const char* block, size_t offset, size_t size) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(block + offset);
  if (bytes[0] & 0x80) {
    if (bytes[0] == 0xff) return -1;  // negative
    uint64_t value = bytes[0] & 0x7f;
    for (size_t i = 1; i < size; ++i) {
      if (value >> 55) return -1;  // beyond int64
      value = value << 8 | bytes[i];
    }
    return static_cast<int64_t>(value);
  }
  size_t i = 0;
  while (i < size && bytes[i] == ' ') ++i;
  uint64_t value = 0;
  size_t digits = 0;
  for (; i < size && bytes[i] >= '0' && bytes[i] <= '7'; ++i, ++digits)
    value = value * 8 + (bytes[i] - '0');
  if (i < size && bytes[i] != ' ' && bytes[i] != '\0') return -1;
  return digits == 0 ? 0 : static_cast<int64_t>(value);
}

bool ChecksumMatches(const char* block) {
  int64_t stored = Number(block, 148, 8);
  if (stored < 0) return false;
  int64_t unsigned_sum = 0, signed_sum = 0;
  for (size_t i = 0; i < kBlock; ++i) {
    bool in_field = i >= 148 && i < 156;
    unsigned_sum += in_field ? ' ' : static_cast<unsigned char>(block[i]);
    signed_sum += in_field ? ' ' : static_cast<signed char>(block[i]);
  }
  return stored == unsigned_sum || stored == signed_sum;
}

bool AllZero(const char* block) {
  for (size_t i = 0; i < kBlock; ++i) {
    if (block[i] != 0) return false;
  }
  return true;
}

// A GNU long name: its bytes up to a NUL, which only NULs may follow.
bool CleanLongName(std::string_view data) {
  size_t nul = data.find('\0');
  return nul == std::string_view::npos ||
         data.find_first_not_of('\0', nul) == std::string_view::npos;
}

}  // namespace

TarHeaderWalker::TarHeaderWalker(uint64_t max_entries) : max_entries_(max_entries) {}

Status TarHeaderWalker::Refuse(const std::string& name, const std::string& what) {
  failed_ = InvalidArgument("archive entry '" + PrintableText(name) + "': " + what);
  state_ = State::kDone;
  return failed_;
}

Status TarHeaderWalker::Corrupt(const std::string& what) {
  failed_ = InvalidArgument("corrupt archive: " + what);
  state_ = State::kDone;
  return failed_;
}

Status TarHeaderWalker::Feed(const char* data, size_t size) {
  while (size > 0 && failed_.ok()) {
    switch (state_) {
      case State::kDone: return Status::Ok();
      case State::kSkip: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(skip_, size));
        skip_ -= n, data += n, size -= n;
        if (skip_ == 0) state_ = State::kHeader;
        break;
      }
      case State::kExtension: {
        if (extension_left_ > 0) {
          size_t n = static_cast<size_t>(std::min<uint64_t>(extension_left_, size));
          extension_.append(data, n);
          extension_left_ -= n, data += n, size -= n;
        }
        if (extension_left_ == 0) {
          RETURN_IF_ERROR(ExtensionDone());
          skip_ = extension_padding_;
          state_ = skip_ > 0 ? State::kSkip : State::kHeader;
        }
        break;
      }
      case State::kHeader: {
        size_t n = std::min(kBlock - block_.size(), size);
        block_.append(data, n);
        data += n, size -= n;
        if (block_.size() == kBlock) {
          std::string block = std::move(block_);
          block_.clear();
          RETURN_IF_ERROR(Header(block.data()));
        }
        break;
      }
    }
  }
  return failed_;
}

Status TarHeaderWalker::Header(const char* block) {
  if (AllZero(block)) {
    state_ = State::kDone;
    return Status::Ok();
  }
  if (!ChecksumMatches(block)) {
    if (headers_ > 0) return Corrupt("a damaged tar header");
    failed_ = InvalidArgument("not a tar archive");
    state_ = State::kDone;
    return failed_;
  }
  ++headers_;
  char type = block[156];
  int64_t size = Number(block, 124, 12);
  if (size < 0) return Refuse(std::string(Field(block, 0, 100)), "invalid size");
  std::string name(Field(block, 0, 100));
  bool posix = std::memcmp(block + 257, "ustar\0", 6) == 0;
  std::string_view prefix = posix ? Field(block, 345, 155) : std::string_view();
  if (!prefix.empty()) name = std::string(prefix) + (prefix.back() == '/' ? "" : "/") + name;

  if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
    if (static_cast<uint64_t>(size) > kMaxExtensionBytes) {
      return Refuse(name,
                    "extended header larger than " + std::to_string(kMaxExtensionBytes) + " bytes");
    }
    extension_type_ = type;
    extension_.clear();
    extension_left_ = static_cast<uint64_t>(size);
    extension_padding_ = Padded(extension_left_) - extension_left_;
    state_ = State::kExtension;
    if (extension_left_ == 0) {
      RETURN_IF_ERROR(ExtensionDone());
      state_ = State::kHeader;
    }
    return Status::Ok();
  }

  if (has_pax_path_) {
    name = pax_path_;
  } else if (has_long_name_) {
    name = long_name_;
  }
  if (sparse_pending_ || type == 'S') return Refuse(name, "sparse files are not allowed");
  uint64_t data = 0;
  switch (type) {
    case '0':
    case '\0':
    case '7':  // regular (and contiguous) files
      data = static_cast<uint64_t>(pax_size_ >= 0 ? pax_size_ : size);
      break;
    case '5':  // directories: libarchive ignores the header's size
      data = static_cast<uint64_t>(pax_size_ >= 0 ? pax_size_ : 0);
      break;
    case '1':
    case '2':
    case '3':
    case '4':
    case '6':
      // Links, devices and FIFOs: the caller refuses this entry, so the
      // walk ends here.
      names_.push_back(std::move(name));
      state_ = State::kDone;
      return Status::Ok();
    default:
      return Refuse(name, "unsupported entry type '" + PrintableText(std::string(1, type)) + "'");
  }
  // The root directory ("./") is no entry of the package; a cap on all
  // names still bounds the memory an archive of nothing but roots takes.
  bool root = type == '5' && (name == "." || name == "./");
  uint64_t cap = max_entries_ > UINT64_MAX / 4 ? UINT64_MAX : 2 * max_entries_ + 2;
  if ((!root && ++counted_ > max_entries_) || names_.size() > cap) {
    failed_ = TooLarge("archive has more than " + std::to_string(max_entries_) + " entries");
    state_ = State::kDone;
    return failed_;
  }
  names_.push_back(std::move(name));
  has_pax_path_ = has_long_name_ = false;
  pax_path_.clear();
  long_name_.clear();
  pax_size_ = -1;
  skip_ = Padded(data);
  state_ = skip_ > 0 ? State::kSkip : State::kHeader;
  return Status::Ok();
}

// A PAX record is "<length> <key>=<value>\n", the length counting the whole
// record; a GNU long name is the name, NUL-terminated.
Status TarHeaderWalker::ExtensionDone() {
  if (extension_type_ == 'L' || extension_type_ == 'K') {
    std::string_view data = extension_;
    if (!CleanLongName(data)) {
      return Refuse(std::string(data.substr(0, data.find_last_not_of('\0') + 1)),
                    std::string("its GNU long ") + (extension_type_ == 'L' ? "name" : "link name") +
                        " holds a NUL byte");
    }
    if (extension_type_ == 'L') {
      long_name_ = std::string(data.substr(0, data.find('\0')));
      has_long_name_ = true;
    }
    return Status::Ok();
  }
  std::string_view records = extension_;
  while (!records.empty()) {
    size_t space = records.find(' ');
    uint64_t length = 0;
    bool digits = space != std::string_view::npos && space > 0 && space < 8;
    for (size_t i = 0; digits && i < space; ++i) {
      digits = records[i] >= '0' && records[i] <= '9';
      length = length * 10 + static_cast<uint64_t>(records[i] - '0');
    }
    if (!digits || length <= space + 1 || length > records.size() || records[length - 1] != '\n') {
      return Corrupt("a malformed PAX extended header");
    }
    std::string_view record = records.substr(space + 1, length - space - 2);
    records.remove_prefix(length);
    size_t equals = record.find('=');
    if (equals == std::string_view::npos || equals == 0) {
      return Corrupt("a malformed PAX extended header");
    }
    std::string_view key = record.substr(0, equals), value = record.substr(equals + 1);
    if ((key == "path" || key == "linkpath") && value.find('\0') != std::string_view::npos) {
      return Refuse(std::string(value), "its PAX " + std::string(key) + " holds a NUL byte");
    }
    if (key.rfind("GNU.sparse.", 0) == 0) sparse_pending_ = true;
    if (extension_type_ != 'x') continue;  // a global header ('g') names no entry
    if (key == "path") {
      pax_path_ = std::string(value);
      has_pax_path_ = true;
    } else if (key == "size") {
      int64_t size = 0;
      bool ok = !value.empty() && value.size() < 19;
      // Stop at the first non-digit: adding it would overflow before the check fails.
      for (size_t i = 0; ok && i < value.size(); ++i) {
        ok = value[i] >= '0' && value[i] <= '9';
        if (ok) size = size * 10 + (value[i] - '0');
      }
      if (!ok) return Corrupt("an invalid PAX size");
      pax_size_ = size;
    }
  }
  return Status::Ok();
}

Result<std::vector<std::string>> TarHeaderWalker::Finish() {
  if (!failed_.ok()) return failed_;
  if (headers_ == 0) return InvalidArgument("not a tar archive");
  // Like libarchive, an archive may end without its end-of-archive blocks,
  // but not inside a header or an entry's data.
  if (state_ != State::kDone && !(state_ == State::kHeader && block_.empty())) {
    return InvalidArgument("corrupt archive: it ends inside an entry");
  }
  return names_;
}

Result<std::vector<std::string>> ReadTarEntryNames(const std::filesystem::path& archive_path,
                                                   uint64_t max_entries) {
  struct Deleter {
    void operator()(archive* handle) const { archive_read_free(handle); }
  };
  std::unique_ptr<archive, Deleter> handle(archive_read_new());
  if (!handle) return Internal("archive_read_new failed");
  // The same filters as the tar reader; "raw" hands over the decompressed bytes.
  archive_read_support_filter_none(handle.get());
  archive_read_support_filter_zstd(handle.get());
  archive_read_support_format_raw(handle.get());
  if (archive_read_open_filename(handle.get(), archive_path.c_str(), 256 * 1024) != ARCHIVE_OK) {
    return InvalidArgument("not a tar archive");  // e.g. empty: nothing to read
  }
  archive_entry* entry = nullptr;
  if (archive_read_next_header(handle.get(), &entry) != ARCHIVE_OK) {
    return InvalidArgument("not a tar archive");
  }
  TarHeaderWalker walker(max_entries);
  std::vector<char> buffer(256 * 1024);
  while (true) {
    la_ssize_t n = archive_read_data(handle.get(), buffer.data(), buffer.size());
    if (n == 0) break;
    if (n < 0) {
      const char* message = archive_error_string(handle.get());
      return InvalidArgument(std::string("corrupt archive: ") + (message ? message : "read error"));
    }
    Status fed = walker.Feed(buffer.data(), static_cast<size_t>(n));
    if (!fed.ok()) return fed;
    if (walker.done()) break;
  }
  return walker.Finish();
}

}  // namespace orrery
