// File sets (repository.h): files stored as blobs outside any version, such
// as a training job's uploaded code. Stored like a publish (check the whole
// archive, write and fsync the blobs, then one transaction), so that a bad
// or interrupted upload leaves nothing but unreferenced blobs that garbage
// collection removes.
#include "core/hash.h"
#include "repository/blob_sink.h"
#include "repository/rows.h"

namespace orrery {

using FileRow = Repository::FileRow;

nlohmann::json Repository::FileSet::ToJson() const {
  return {{"digest", digest}, {"size", size}, {"files", paths}};
}

Result<Repository::FileSet> Repository::StoreFileSet(const Caller& caller,
                                                     const std::filesystem::path& archive) {
  if (caller.role < Role::kPublisher) {
    return PermissionDenied("role " + std::string(RoleName(caller.role)) +
                            " cannot upload files (publisher needed)");
  }
  ASSIGN_OR_RETURN(ArchiveScan scan, ScanPackageArchive(archive, options_.archive_limits));
  if (scan.files.empty()) return InvalidArgument("the archive holds no files");
  uint64_t bytes = 0;
  for (const ArchiveEntry& entry : scan.files) bytes += entry.size;
  ASSIGN_OR_RETURN(RoomHold room, HoldRoomFor(bytes));

  BlobSinkVisitor sink(*blobs_, {});
  Result<FileSet> result = [&]() -> Result<FileSet> {
    std::shared_lock gc_lock(gc_mutex_);
    RETURN_IF_ERROR(ReadPackageArchive(archive, options_.archive_limits, sink));
    std::vector<FileRow>& files = sink.files();
    FileSet set;
    set.digest = PackageDigest(files);  // sorts by path
    for (const FileRow& file : files) {
      set.size += static_cast<uint64_t>(file.size);
      set.paths.push_back(file.path);
    }
    WriteLock lock(*this, /*may_use_ballast=*/false);
    Database& db = *db_;
    ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db));
    ASSIGN_OR_RETURN(Statement insert,
                     db.Prepare("INSERT OR IGNORE INTO file_sets(tenant_id, digest, size, "
                                "file_count, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)"));
    insert.Bind(1, caller.tenant_id).Bind(2, set.digest).Bind(3, static_cast<int64_t>(set.size));
    insert.Bind(4, static_cast<int64_t>(files.size())).Bind(5, Now()).Bind(6, caller.token_id);
    RETURN_IF_ERROR(insert.Run());
    if (db.Changes() == 0) return set;  // stored before: the same files, the same rows
    ASSIGN_OR_RETURN(Statement file_insert,
                     db.Prepare("INSERT INTO file_set_files(tenant_id, digest, path, blob, size, "
                                "executable) VALUES (?, ?, ?, ?, ?, ?)"));
    for (const FileRow& file : files) {
      file_insert.Bind(1, caller.tenant_id).Bind(2, set.digest).Bind(3, file.path);
      file_insert.Bind(4, file.blob).Bind(5, file.size).Bind(6, int64_t{file.executable ? 1 : 0});
      RETURN_IF_ERROR(file_insert.Run());
    }
    RETURN_IF_ERROR(AppendAudit(caller, "files.store", set.digest,
                                std::to_string(files.size()) + " files, " +
                                    std::to_string(set.size) + " bytes"));
    RETURN_IF_ERROR(txn.Commit());
    return set;
  }();
  if (!result.ok()) {
    std::vector<std::string> digests = sink.stray();
    for (const FileRow& file : sink.files()) digests.push_back(file.blob);
    (void)CollectBlobs(digests, 0);
  }
  return result;
}

Result<std::vector<FileRow>> Repository::FileSetFiles(Database& db, int64_t tenant_id,
                                                      const std::string& digest) {
  ASSIGN_OR_RETURN(Statement select,
                   db.Prepare("SELECT path, blob, size, executable FROM file_set_files "
                              "WHERE tenant_id = ? AND digest = ? ORDER BY path"));
  select.Bind(1, tenant_id).Bind(2, digest);
  std::vector<FileRow> rows;
  while (true) {
    ASSIGN_OR_RETURN(bool more, select.Step());
    if (!more) break;
    rows.push_back({select.ColumnText(0), select.ColumnText(1), select.ColumnInt(2),
                    select.ColumnInt(3) != 0});
  }
  if (rows.empty()) return NotFound("no uploaded files with digest " + digest);
  return rows;
}

Result<Repository::FileSet> Repository::DescribeFileSet(const Caller& caller,
                                                        const std::string& digest) {
  ConnectionPool::Lease lease = readers_->Acquire();
  ASSIGN_OR_RETURN(std::vector<FileRow> files, FileSetFiles(lease.db(), caller.tenant_id, digest));
  FileSet set;
  set.digest = digest;
  for (const FileRow& file : files) {
    set.size += static_cast<uint64_t>(file.size);
    set.paths.push_back(file.path);
  }
  return set;
}

Result<std::filesystem::path> Repository::MaterializeFileSet(const Caller& caller,
                                                             const std::string& digest) {
  std::vector<FileRow> files;
  {
    ConnectionPool::Lease lease = readers_->Acquire();
    ASSIGN_OR_RETURN(files, FileSetFiles(lease.db(), caller.tenant_id, digest));
  }
  return MaterializeFiles(files, digest);
}

}  // namespace orrery
