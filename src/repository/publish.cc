// Publishing a package: check the archive, store its files as blobs, then
// make the version visible in one catalog transaction.
//
// Order (why): (1) everything about the archive and the manifest is checked
// before any byte is stored, so bad input changes nothing; (2) blobs are
// written and fsynced; (3) one transaction inserts the version, its files and
// the audit row and moves `latest`. A crash before (3) commits leaves only
// unreferenced blobs, which GC removes; a failure after (2) removes the blobs
// this publish added at once.
#include <algorithm>
#include <map>

#include "core/clock.h"
#include "core/hash.h"
#include "core/random.h"
#include "repository/blob_sink.h"
#include "repository/pipeline_publish.h"
#include "repository/rows.h"

namespace orrery {
namespace {

using FileRow = Repository::FileRow;

std::string JoinCreators(const Manifest& manifest) {
  std::string joined;
  for (const Creator& creator : manifest.creators) {
    if (!joined.empty()) joined += "; ";
    joined += creator.name;
  }
  return joined;
}

// Parses and checks the manifest found by the scan against the route.
Result<Manifest> CheckedManifest(const ArchiveScan& scan, PackageKind kind,
                                 const QualifiedName& name) {
  if (!scan.has_manifest) {
    return Unprocessable(std::string("package has no ") + kManifestFileName + " at its root");
  }
  ASSIGN_OR_RETURN(Manifest manifest, ParseManifest(scan.manifest_text));
  if (manifest.name != name.name) {
    return Unprocessable("manifest name '" + manifest.name + "' does not match '" + name.name +
                         "' in the URL");
  }
  if (manifest.kind != kind) {
    return Unprocessable(std::string("manifest kind is ") + PackageKindName(manifest.kind) +
                         ", but the URL publishes a " + PackageKindName(kind));
  }
  std::set<std::string> paths;
  for (const ArchiveEntry& entry : scan.files) {
    paths.insert(entry.path);
    if (entry.path == kModelCardFileName && entry.size > kMaxModelCardBytes) {
      return Unprocessable(std::string(kModelCardFileName) + " (the model card) is " +
                           std::to_string(entry.size) + " bytes, more than the " +
                           std::to_string(kMaxModelCardBytes) + " allowed");
    }
  }
  RETURN_IF_ERROR(CheckManifestFiles(manifest, paths));
  return manifest;
}

}  // namespace

Result<PublishResult> Repository::CommitVersion(const Caller& caller, PackageKind kind,
                                                const QualifiedName& name, const Manifest& manifest,
                                                const PublishOptions& options,
                                                std::vector<FileRow>& files,
                                                std::optional<bool> checked) {
  std::string digest = PackageDigest(files);
  int64_t total_size = 0;
  for (const FileRow& file : files) total_size += file.size;
  WriteLock lock(*this, /*may_use_ballast=*/false);  // the ballast is for deletes
  Database& db = *db_;
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db));
  ASSIGN_OR_RETURN(int64_t object_id, UpsertObject(caller, kind, name, options.visibility));
  ASSIGN_OR_RETURN(ObjectRow object, FindVisible(db, caller, kind, name));
  if (options.if_changed && object.latest_version_id != 0) {
    ASSIGN_OR_RETURN(VersionRow latest, ResolveVersion(db, object, VersionRef{0, "latest"}));
    if (latest.digest == digest) {
      ASSIGN_OR_RETURN(nlohmann::json unchanged, VersionJson(db, object, latest));
      unchanged["unchanged"] = true;
      return PublishResult{unchanged, false};
    }
  }
  ASSIGN_OR_RETURN(Statement next, db.Prepare("SELECT next_version FROM objects WHERE id = ?"));
  next.Bind(1, object_id);
  ASSIGN_OR_RETURN(bool stepped, next.Step());
  if (!stepped) return Internal("object row vanished during publish");
  int64_t number = next.ColumnInt(0);
  ASSIGN_OR_RETURN(Statement bump, db.Prepare("UPDATE objects SET next_version = ? WHERE id = ?"));
  RETURN_IF_ERROR(bump.Bind(1, number + 1).Bind(2, object_id).Run());

  ASSIGN_OR_RETURN(
      Statement version,
      db.Prepare("INSERT INTO versions(object_id, number, digest, size, file_count, manifest, "
                 "title, description, creators, backend, task, domain, published_at, "
                 "published_by, checked) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  version.Bind(1, object_id).Bind(2, number).Bind(3, digest).Bind(4, total_size);
  version.Bind(5, static_cast<int64_t>(files.size())).Bind(6, manifest.ToJson().dump());
  version.Bind(7, manifest.title).Bind(8, manifest.description).Bind(9, JoinCreators(manifest));
  version.Bind(10, manifest.backend).Bind(11, manifest.task).Bind(12, manifest.domain);
  version.Bind(13, Now()).Bind(14, caller.token_id);
  if (checked) version.Bind(15, int64_t{*checked ? 1 : 0});  // else NULL: no check applies
  RETURN_IF_ERROR(version.Run());
  int64_t version_id = db.LastInsertId();
  if (options.lineage) RETURN_IF_ERROR(InsertLineage(db, version_id, *options.lineage));

  ASSIGN_OR_RETURN(Statement file_insert,
                   db.Prepare("INSERT INTO files(version_id, path, blob, size, executable) "
                              "VALUES (?, ?, ?, ?, ?)"));
  for (const FileRow& file : files) {
    file_insert.Bind(1, version_id).Bind(2, file.path).Bind(3, file.blob).Bind(4, file.size);
    RETURN_IF_ERROR(file_insert.Bind(5, int64_t{file.executable ? 1 : 0}).Run());
  }
  ASSIGN_OR_RETURN(Statement tag_insert,
                   db.Prepare("INSERT OR IGNORE INTO version_tags(version_id, tag) "
                              "VALUES (?, ?)"));
  for (const std::string& tag : manifest.tags) {
    RETURN_IF_ERROR(tag_insert.Bind(1, version_id).Bind(2, tag).Run());
  }
  RETURN_IF_ERROR(RefreshLatest(object_id));
  RETURN_IF_ERROR(AppendAudit(caller, "publish", name.ToString(),
                              "version " + std::to_string(number) + " digest " + digest));
  ASSIGN_OR_RETURN(object, FindVisible(db, caller, kind, name));
  ASSIGN_OR_RETURN(VersionRow row, ResolveVersion(db, object, VersionRef{number, ""}));
  ASSIGN_OR_RETURN(nlohmann::json out, VersionJson(db, object, row));
  RETURN_IF_ERROR(txn.Commit());
  return PublishResult{out, true};
}

// Creates the object, or revives a deleted one (new visibility, no shares;
// version numbers continue). Returns its id. REQUIRES(db_mutex_), in a transaction.
Result<int64_t> Repository::UpsertObject(const Caller& caller, PackageKind kind,
                                         const QualifiedName& name, const std::string& visibility) {
  Database& db = *db_;
  ASSIGN_OR_RETURN(Statement find,
                   db.Prepare("SELECT id, deleted_at IS NOT NULL, kind FROM objects "
                              "WHERE tenant_id = ? AND name = ?"));
  find.Bind(1, caller.tenant_id).Bind(2, name.name);
  ASSIGN_OR_RETURN(bool found, find.Step());
  if (!found) {
    ASSIGN_OR_RETURN(Statement insert,
                     db.Prepare("INSERT INTO objects(tenant_id, name, kind, visibility, "
                                "created_at) VALUES (?, ?, ?, ?, ?)"));
    insert.Bind(1, caller.tenant_id).Bind(2, name.name).Bind(3, PackageKindName(kind));
    RETURN_IF_ERROR(insert.Bind(4, visibility).Bind(5, Now()).Run());
    return db.LastInsertId();
  }
  int64_t id = find.ColumnInt(0);
  bool deleted = find.ColumnInt(1) != 0;
  // Checked before the blobs were written too; this catches a concurrent publish.
  if (!deleted && find.ColumnText(2) != PackageKindName(kind)) {
    return Conflict(name.ToString() + " already exists as a " + find.ColumnText(2));
  }
  if (deleted) {
    ASSIGN_OR_RETURN(Statement revive,
                     db.Prepare("UPDATE objects SET deleted_at = NULL, deleted_by = NULL, "
                                "kind = ?, visibility = ? WHERE id = ?"));
    RETURN_IF_ERROR(revive.Bind(1, PackageKindName(kind)).Bind(2, visibility).Bind(3, id).Run());
    ASSIGN_OR_RETURN(Statement unshare, db.Prepare("DELETE FROM shares WHERE object_id = ?"));
    RETURN_IF_ERROR(unshare.Bind(1, id).Run());
  }
  return id;
}

Result<PublishResult> Repository::Publish(const Caller& caller, PackageKind kind,
                                          const QualifiedName& name,
                                          const std::filesystem::path& archive,
                                          const PublishOptions& options) {
  RETURN_IF_ERROR(ValidateTenantName(name.tenant));
  RETURN_IF_ERROR(ValidateObjectName(name.name));
  if (options.visibility != "private" && options.visibility != "public") {
    return InvalidArgument("visibility must be private or public when publishing");
  }
  if (name.tenant != caller.tenant) {
    ConnectionPool::Lease lease = readers_->Acquire();
    RETURN_IF_ERROR(TenantId(lease.db(), name.tenant).status());
    return PermissionDenied("a token of tenant " + caller.tenant + " cannot publish into " +
                            name.tenant);
  }
  if (caller.role < Role::kPublisher) {
    return PermissionDenied("role " + std::string(RoleName(caller.role)) +
                            " cannot publish (publisher needed)");
  }
  if (!options.expected_sha256.empty()) {
    ASSIGN_OR_RETURN(std::string actual, Sha256OfFile(archive));
    if (actual != options.expected_sha256) {
      return InvalidArgument("body digest mismatch: X-Orrery-Sha256 says " +
                             options.expected_sha256 + ", the body has " + actual);
    }
  }
  ASSIGN_OR_RETURN(ArchiveScan scan, ScanPackageArchive(archive, options_.archive_limits));
  ASSIGN_OR_RETURN(Manifest manifest, CheckedManifest(scan, kind, name));
  uint64_t unpacked_bytes = 0;
  for (const ArchiveEntry& entry : scan.files) unpacked_bytes += entry.size;
  ASSIGN_OR_RETURN(RoomHold room, HoldRoomFor(unpacked_bytes));  // until this publish ends
  if (manifest.backend == "pipeline") RETURN_IF_ERROR(PinPipelineSteps(*this, caller, manifest));
  {
    // A name is one object per tenant, whatever its kind. A read is enough
    // here: UpsertObject checks again under the writer lock.
    ConnectionPool::Lease lease = readers_->Acquire();
    ASSIGN_OR_RETURN(Statement other,
                     lease.db().Prepare("SELECT kind FROM objects WHERE tenant_id = ? AND name = ? "
                                        "AND deleted_at IS NULL AND kind != ?"));
    other.Bind(1, caller.tenant_id).Bind(2, name.name).Bind(3, PackageKindName(kind));
    ASSIGN_OR_RETURN(bool clash, other.Step());
    if (clash) {
      return Conflict(name.ToString() + " already exists as a " + other.ColumnText(0));
    }
  }

  // The publish check (servables but pipelines, whose steps were checked).
  std::optional<bool> checked;
  bool checkable = kind == PackageKind::kServable && manifest.backend != "pipeline";
  if (checkable) {
    std::lock_guard lock(check_mutex_);
    if (publish_check_) checked = options.check;
  }
  if (checked.value_or(false)) RETURN_IF_ERROR(RunPublishCheck(archive, manifest, name));
  if (options.dry_run) {
    nlohmann::json files = nlohmann::json::array();
    for (const ArchiveEntry& entry : scan.files) {
      files.push_back(
          {{"path", entry.path}, {"size", entry.size}, {"executable", entry.executable}});
    }
    nlohmann::json answer = {{"dry_run", true},
                             {"tenant", name.tenant},
                             {"name", name.name},
                             {"kind", PackageKindName(kind)},
                             {"size", unpacked_bytes},
                             {"checked", checked ? nlohmann::json(*checked) : nlohmann::json()},
                             {"files", files},
                             {"manifest", manifest.ToJson()}};
    return PublishResult{answer, false};
  }

  std::map<std::string, std::string> declared;
  for (const ManifestFile& file : manifest.files) {
    if (!file.sha256.empty()) declared[file.path] = file.sha256;
  }
  BlobSinkVisitor sink(*blobs_, declared);
  Result<PublishResult> result = [&]() -> Result<PublishResult> {
    std::shared_lock gc_lock(gc_mutex_);
    RETURN_IF_ERROR(ReadPackageArchive(archive, options_.archive_limits, sink));
    return CommitVersion(caller, kind, name, manifest, options, sink.files(), checked);
  }();
  if (!result.ok()) {
    // The blobs this publish wrote that nothing references go now (after the
    // shared lock is released: collection takes it exclusively).
    std::vector<std::string> digests = sink.stray();
    for (const FileRow& file : sink.files()) digests.push_back(file.blob);
    (void)CollectBlobs(digests, 0);
  }
  return result;
}

void Repository::SetPublishCheck(PublishCheck check) {
  std::lock_guard lock(check_mutex_);
  publish_check_ = std::move(check);
}

Status Repository::RunPublishCheck(const std::filesystem::path& archive, const Manifest& manifest,
                                   const QualifiedName& name) {
  PublishCheck check;
  {
    std::lock_guard lock(check_mutex_);
    check = publish_check_;
  }
  std::filesystem::path dir = TempRoot() / ("check-" + RandomHex(8));
  Status status = ExtractPackageArchive(archive, dir, options_.archive_limits);
  if (status.ok()) status = check(manifest, dir, name);
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return status;
}

}  // namespace orrery
