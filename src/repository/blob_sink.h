// Storing an archive's files as blobs (publish.cc, file_sets.cc). Private
// to src/repository/.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "repository/archive.h"
#include "repository/repository.h"
#include "repository/rows.h"
#include "storage/blob_store.h"

namespace orrery {

// Streams each archive file into a blob, checking `declared` digests (path
// -> sha256, e.g. from a manifest). Thread-compatible.
class BlobSinkVisitor : public ArchiveVisitor {
 public:
  BlobSinkVisitor(BlobStore& blobs, std::map<std::string, std::string> declared)
      : blobs_(blobs), declared_(std::move(declared)) {}

  Status BeginFile(const ArchiveEntry& entry) override;
  Status Data(const char* data, size_t size) override;
  Status EndFile() override;

  std::vector<Repository::FileRow>& files() { return files_; }
  // Blobs put in place by a file whose commit then failed.
  const std::vector<std::string>& stray() const { return stray_; }

 private:
  BlobStore& blobs_;
  std::map<std::string, std::string> declared_;  // path -> sha256 from the manifest
  ArchiveEntry current_;
  std::unique_ptr<BlobWriter> writer_;
  std::vector<Repository::FileRow> files_;
  std::vector<std::string> stray_;
};

// The package digest: SHA-256 over "<sha256>  <path>\n" lines sorted by path,
// i.e. over what `sha256sum` prints for the package's files. Sorts `files`.
std::string PackageDigest(std::vector<Repository::FileRow>& files);

}  // namespace orrery
