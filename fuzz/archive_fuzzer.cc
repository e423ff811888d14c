// libFuzzer target: the package archive reader (src/repository/archive.h):
// tar or tar.zst from a client, through libarchive and Orrery's own entry
// rules. Both passes must agree: the files the scan lists are the files the
// read streams, with the sizes it declared, and every path is a safe,
// relative one.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "repository/archive.h"
#include "fuzz_util.h"

using orrery::fuzz::Require;

namespace {

class Collect final : public orrery::ArchiveVisitor {
 public:
  orrery::Status BeginFile(const orrery::ArchiveEntry& entry) override {
    files.push_back(entry);
    bytes.push_back(0);
    return orrery::Status::Ok();
  }
  orrery::Status Data(const char*, size_t size) override {
    bytes.back() += size;
    return orrery::Status::Ok();
  }
  orrery::Status EndFile() override { return orrery::Status::Ok(); }
  std::vector<orrery::ArchiveEntry> files;
  std::vector<uint64_t> bytes;
};

bool SafePath(const std::string& path) {
  if (path.empty() || path.front() == '/' || path.find('\0') != std::string::npos) return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace orrery;
  // The reader takes a file, as it does the staged upload: a memfd is one.
  int fd = ::memfd_create("archive", MFD_CLOEXEC);
  Require(fd >= 0);
  Require(::write(fd, data, size) == static_cast<ssize_t>(size));
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  ArchiveLimits limits;
  limits.max_entries = 64;
  limits.max_total_bytes = 1 << 20;
  limits.max_manifest_bytes = 64 * 1024;
  Result<ArchiveScan> scan = ScanPackageArchive(path, limits);
  if (scan.ok()) {
    for (const ArchiveEntry& entry : scan->files) Require(SafePath(entry.path));
    Collect read;
    Status streamed = ReadPackageArchive(path, limits, read);
    Require(streamed.ok());
    Require(read.files.size() == scan->files.size());
    for (size_t i = 0; i < read.files.size(); ++i) {
      Require(read.files[i].path == scan->files[i].path);
      Require(read.bytes[i] == scan->files[i].size);
    }
  }
  ::close(fd);
  return 0;
}
