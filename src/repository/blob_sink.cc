#include "repository/blob_sink.h"

#include <algorithm>

#include "core/hash.h"

namespace orrery {

using FileRow = Repository::FileRow;

Status BlobSinkVisitor::BeginFile(const ArchiveEntry& entry) {
  current_ = entry;
  ASSIGN_OR_RETURN(writer_, blobs_.NewWriter());
  return Status::Ok();
}

Status BlobSinkVisitor::Data(const char* data, size_t size) {
  Status status = writer_->Append(data, size);
  return status.ok() ? status : status.WithContext("file " + current_.path);
}

Status BlobSinkVisitor::EndFile() {
  auto declared = declared_.find(current_.path);
  std::string expected = declared == declared_.end() ? "" : declared->second;
  Result<std::string> digest = writer_->Commit(expected);
  std::string placed = writer_->placed();
  writer_.reset();
  if (!digest.ok()) {
    if (!placed.empty()) stray_.push_back(placed);
    return digest.status().WithContext("file " + current_.path);
  }
  files_.push_back(
      {current_.path, *digest, static_cast<int64_t>(current_.size), current_.executable});
  return Status::Ok();
}

std::string PackageDigest(std::vector<FileRow>& files) {
  std::sort(files.begin(), files.end(),
            [](const FileRow& a, const FileRow& b) { return a.path < b.path; });
  Sha256 hasher;
  for (const FileRow& file : files) hasher.Update(file.blob + "  " + file.path + "\n");
  return hasher.FinishHex();
}

}  // namespace orrery
