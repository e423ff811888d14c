// Repository: opening, bootstrap, catalog lookups shared by every operation,
// garbage collection and the consistency check.
#include "repository/repository.h"

#include <set>

#include "core/clock.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/random.h"
#include "repository/rows.h"

namespace orrery {

const char* RoleName(Role role) {
  switch (role) {
    case Role::kReader: return "reader";
    case Role::kPublisher: return "publisher";
    case Role::kAdmin: return "admin";
  }
  return "reader";
}

Result<Role> ParseRole(std::string_view text) {
  if (text == "reader") return Role::kReader;
  if (text == "publisher") return Role::kPublisher;
  if (text == "admin") return Role::kAdmin;
  return InvalidArgument("unknown role '" + std::string(text) +
                         "' (expected reader, publisher or admin)");
}

std::string VisibleToTenantSql(int p) {
  std::string n = std::to_string(p);
  return "(o.tenant_id = ?" + n + " OR o.visibility = 'public' OR (o.visibility = 'shared' AND " +
         "EXISTS (SELECT 1 FROM shares s WHERE s.object_id = o.id AND s.tenant_id = ?" + n + ")))";
}

Status ObjectNotFound(PackageKind kind, const QualifiedName& name) {
  return NotFound(std::string(PackageKindName(kind)) + " " + name.ToString() + " not found");
}

Repository::Repository(Options options, std::unique_ptr<Database> db,
                       std::unique_ptr<ConnectionPool> readers, std::unique_ptr<BlobStore> blobs)
    : options_(std::move(options)),
      db_(std::move(db)),
      readers_(std::move(readers)),
      blobs_(std::move(blobs)) {}

Repository::~Repository() = default;

std::filesystem::path Repository::AdminTokenPath() const {
  return options_.data_dir / "admin.token";
}

std::filesystem::path Repository::TempRoot() const {
  return options_.data_dir / "tmp";
}

Result<std::unique_ptr<Repository>> Repository::Open(const Options& options) {
  RETURN_IF_ERROR(EnsureDir(options.data_dir, 0700));
  // tmp/ holds uploads and exports in flight; whatever a crash left is garbage.
  std::error_code ignored;
  std::filesystem::remove_all(options.data_dir / "tmp", ignored);
  RETURN_IF_ERROR(EnsureDir(options.data_dir / "tmp", 0700));
  RETURN_IF_ERROR(EnsureDir(options.data_dir / "work", 0700));
  ASSIGN_OR_RETURN(auto blobs, BlobStore::Open(options.data_dir / "blobs"));
  ASSIGN_OR_RETURN(auto db, Database::Open({.path = options.data_dir / "catalog.db"}));
  RETURN_IF_ERROR(db->Migrate(CatalogMigrations()));
  // Readers open after the migration: they never see an older schema.
  ASSIGN_OR_RETURN(auto readers, ConnectionPool::Open({.path = options.data_dir / "catalog.db"},
                                                      options.read_connections));
  std::unique_ptr<Repository> repository(
      new Repository(options, std::move(db), std::move(readers), std::move(blobs)));
  RETURN_IF_ERROR(repository->Bootstrap());
  // Blobs of publishes a crash interrupted before their commit.
  RETURN_IF_ERROR(repository->CollectAllBlobs(options.gc_min_age_s).status());
  repository->RestoreBallast();
  return repository;
}

// First start (or --reset-admin-token): the hub tenant and an admin token,
// written where the CLI on this machine finds it.
Status Repository::Bootstrap() {
  WriteLock lock(*this);
  Database& db = *db_;
  ASSIGN_OR_RETURN(Statement find, db.Prepare("SELECT id FROM tenants WHERE name = ?"));
  find.Bind(1, kHubTenant);
  ASSIGN_OR_RETURN(bool exists, find.Step());
  if (exists && !options_.reset_admin_token) return Status::Ok();
  int64_t hub_id = exists ? find.ColumnInt(0) : 0;
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db));
  if (!exists) {
    ASSIGN_OR_RETURN(Statement tenant,
                     db.Prepare("INSERT INTO tenants(name, created_at) VALUES (?, ?)"));
    RETURN_IF_ERROR(tenant.Bind(1, kHubTenant).Bind(2, Now()).Run());
    hub_id = db.LastInsertId();
  }
  RETURN_IF_ERROR(
      WriteAdminToken(hub_id, exists ? "hub admin (reset at start)" : "hub admin (bootstrap)"));
  RETURN_IF_ERROR(txn.Commit());
  if (exists) {
    LogWarning("--reset-admin-token: new hub admin token written to " + AdminTokenPath().string() +
               "; older tokens stay valid until revoked");
  } else {
    LogInfo("first start: hub admin token written to " + AdminTokenPath().string());
  }
  return Status::Ok();
}

// The file first, then the row (in the caller's transaction): a crash in
// between leaves a file whose token the catalog does not know, which the
// next start replaces, never a valid token nobody holds.
Status Repository::WriteAdminToken(int64_t hub_tenant_id, std::string_view description) {
  Database& db = *db_;
  std::string token = "orr_" + RandomHex(32);
  RETURN_IF_ERROR(WriteFileAtomic(AdminTokenPath(), token + "\n", 0600));
  ASSIGN_OR_RETURN(Statement insert,
                   db.Prepare("INSERT INTO tokens(tenant_id, role, hash, description, "
                              "created_at) VALUES (?, 'admin', ?, ?, ?)"));
  insert.Bind(1, hub_tenant_id).Bind(2, Sha256Hex(token)).Bind(3, description);
  RETURN_IF_ERROR(insert.Bind(4, Now()).Run());
  Caller operator_caller{hub_tenant_id, kHubTenant, Role::kAdmin, db.LastInsertId()};
  return AppendAudit(operator_caller, "token.create", kHubTenant, description);
}

Result<int64_t> Repository::TenantId(Database& db, std::string_view tenant) {
  ASSIGN_OR_RETURN(Statement find, db.Prepare("SELECT id FROM tenants WHERE name = ?"));
  find.Bind(1, tenant);
  ASSIGN_OR_RETURN(bool found, find.Step());
  if (!found) return NotFound("tenant " + std::string(tenant) + " not found");
  return find.ColumnInt(0);
}

Result<Repository::ObjectRow> Repository::FindVisible(Database& db, const Caller& caller,
                                                      PackageKind kind, const QualifiedName& name) {
  ASSIGN_OR_RETURN(
      Statement find,
      db.Prepare("SELECT o.id, o.tenant_id, o.visibility, o.created_at, "
                 "IFNULL(o.latest_version_id, 0) FROM objects o JOIN tenants t ON t.id = "
                 "o.tenant_id WHERE t.name = ?2 AND o.name = ?3 AND o.kind = ?4 AND "
                 "o.deleted_at IS NULL AND " +
                 VisibleToTenantSql(1)));
  find.Bind(1, caller.tenant_id).Bind(2, name.tenant).Bind(3, name.name);
  find.Bind(4, PackageKindName(kind));
  ASSIGN_OR_RETURN(bool found, find.Step());
  if (!found) return ObjectNotFound(kind, name);
  ObjectRow row;
  row.id = find.ColumnInt(0);
  row.tenant_id = find.ColumnInt(1);
  row.tenant = name.tenant;
  row.name = name.name;
  row.kind = kind;
  row.visibility = find.ColumnText(2);
  row.created_at = find.ColumnInt(3);
  row.latest_version_id = find.ColumnInt(4);
  return row;
}

Result<Repository::ObjectRow> Repository::FindOwned(Database& db, const Caller& caller,
                                                    PackageKind kind, const QualifiedName& name) {
  ASSIGN_OR_RETURN(ObjectRow row, FindVisible(db, caller, kind, name));
  if (row.tenant_id != caller.tenant_id) {
    return PermissionDenied(std::string(PackageKindName(kind)) + " " + name.ToString() +
                            " belongs to tenant " + name.tenant);
  }
  if (caller.role < Role::kPublisher) {
    return PermissionDenied("role " + std::string(RoleName(caller.role)) +
                            " cannot change objects (publisher needed)");
  }
  return row;
}

Result<Repository::VersionRow> Repository::ResolveVersion(Database& db, const ObjectRow& object,
                                                          const VersionRef& version) {
  std::string where;
  if (version.is_number()) {
    where = "v.number = ?2";
  } else if (version.alias == "latest") {
    where = "v.id = (SELECT latest_version_id FROM objects WHERE id = ?1)";
  } else {
    where = "v.id = (SELECT version_id FROM aliases WHERE object_id = ?1 AND name = ?3)";
  }
  ASSIGN_OR_RETURN(
      Statement find,
      db.Prepare(
          "SELECT v.id, v.number, v.digest, v.size, v.file_count, v.manifest, v.title, "
          "v.published_at, IFNULL(t.name, ''), v.checked FROM versions v LEFT JOIN tokens k ON "
          "k.id = v.published_by LEFT JOIN tenants t ON t.id = k.tenant_id WHERE "
          "v.object_id = ?1 AND v.deleted_at IS NULL AND " +
          where));
  find.Bind(1, object.id);
  if (version.is_number())
    find.Bind(2, version.number);
  else if (version.alias != "latest")
    find.Bind(3, version.alias);
  ASSIGN_OR_RETURN(bool found, find.Step());
  if (!found) {
    return NotFound("version " + version.ToString() + " of " + object.Qualified() + " not found");
  }
  VersionRow row;
  row.id = find.ColumnInt(0);
  row.number = find.ColumnInt(1);
  row.digest = find.ColumnText(2);
  row.size = find.ColumnInt(3);
  row.file_count = find.ColumnInt(4);
  row.manifest = find.ColumnText(5);
  row.title = find.ColumnText(6);
  row.published_at = find.ColumnInt(7);
  row.published_by = find.ColumnText(8);
  if (!find.ColumnIsNull(9)) row.checked = find.ColumnInt(9) != 0;
  return row;
}

Result<std::vector<Repository::FileRow>> Repository::FilesOf(Database& db, int64_t version_id) {
  ASSIGN_OR_RETURN(Statement files, db.Prepare("SELECT path, blob, size, executable FROM files "
                                               "WHERE version_id = ? ORDER BY path"));
  files.Bind(1, version_id);
  std::vector<FileRow> rows;
  while (true) {
    ASSIGN_OR_RETURN(bool more, files.Step());
    if (!more) break;
    rows.push_back(
        {files.ColumnText(0), files.ColumnText(1), files.ColumnInt(2), files.ColumnInt(3) != 0});
  }
  return rows;
}

Result<nlohmann::json> Repository::VersionJson(Database& db, const ObjectRow& object,
                                               const VersionRow& version) {
  nlohmann::json out = {
      {"tenant", object.tenant},
      {"name", object.name},
      {"kind", PackageKindName(object.kind)},
      {"version", version.number},
      {"digest", version.digest},
      {"size", version.size},
      {"published_at", FormatUnixSeconds(version.published_at)},
      {"published_by", version.published_by},
      {"manifest", nlohmann::json::parse(version.manifest, nullptr, false)},
      {"checked", version.checked ? nlohmann::json(*version.checked) : nlohmann::json()},
  };
  ASSIGN_OR_RETURN(std::vector<FileRow> files, FilesOf(db, version.id));
  out["files"] = nlohmann::json::array();
  out["readme"] = false;  // a model card to read (Repository::ReadModelCard)
  for (const FileRow& file : files) {
    if (file.path == kModelCardFileName) out["readme"] = true;
    out["files"].push_back({{"path", file.path},
                            {"sha256", file.blob},
                            {"size", file.size},
                            {"executable", file.executable}});
  }
  std::vector<std::string> aliases;
  if (version.id == object.latest_version_id) aliases.push_back("latest");
  ASSIGN_OR_RETURN(Statement alias_rows,
                   db.Prepare("SELECT name FROM aliases WHERE version_id = ? ORDER BY name"));
  alias_rows.Bind(1, version.id);
  while (true) {
    ASSIGN_OR_RETURN(bool more, alias_rows.Step());
    if (!more) break;
    aliases.push_back(alias_rows.ColumnText(0));
  }
  out["aliases"] = aliases;
  ASSIGN_OR_RETURN(Statement usage, db.Prepare("SELECT downloads, inferences FROM version_usage "
                                               "WHERE version_id = ?"));
  usage.Bind(1, version.id);
  ASSIGN_OR_RETURN(bool counted, usage.Step());
  out["usage"] = {{"downloads", counted ? usage.ColumnInt(0) : 0},
                  {"inferences", counted ? usage.ColumnInt(1) : 0}};
  return out;
}

Status Repository::AppendAudit(const Caller& caller, std::string_view action,
                               std::string_view object, std::string_view detail) {
  Database& db = *db_;
  ASSIGN_OR_RETURN(Statement insert,
                   db.Prepare("INSERT INTO audit(at, tenant_id, token_id, action, object, "
                              "detail) VALUES (?, ?, ?, ?, ?, ?)"));
  insert.Bind(1, Now()).Bind(2, caller.tenant_id).Bind(3, caller.token_id);
  insert.Bind(4, action).Bind(5, object).Bind(6, detail);
  return insert.Run();
}

Status Repository::AppendAuditEntry(const Caller& caller, std::string_view action,
                                    std::string_view object, std::string_view detail) {
  WriteLock lock(*this);
  return AppendAudit(caller, action, object, detail);
}

Status Repository::RefreshLatest(int64_t object_id) {
  Database& db = *db_;
  ASSIGN_OR_RETURN(
      Statement update,
      db.Prepare("UPDATE objects SET latest_version_id = (SELECT id FROM versions WHERE "
                 "object_id = ?1 AND deleted_at IS NULL ORDER BY number DESC LIMIT 1) "
                 "WHERE id = ?1"));
  RETURN_IF_ERROR(update.Bind(1, object_id).Run());
  ASSIGN_OR_RETURN(Statement remove, db.Prepare("DELETE FROM search WHERE rowid = ?"));
  RETURN_IF_ERROR(remove.Bind(1, object_id).Run());
  ASSIGN_OR_RETURN(
      Statement insert,
      db.Prepare(std::string("INSERT INTO search(rowid, name, title, description, creators, tags, "
                             "identifiers) SELECT o.id, o.name, v.title, v.description, "
                             "v.creators, IFNULL((SELECT group_concat(tag, ' ') FROM "
                             "version_tags WHERE version_id = v.id), ''), ") +
                 kSearchIdentifiersSql +
                 " FROM objects o JOIN versions v ON v.id = o.latest_version_id "
                 "WHERE o.id = ? AND o.deleted_at IS NULL"));
  return insert.Bind(1, object_id).Run();
}

Result<bool> Repository::BlobReferenced(const std::string& digest) {
  Database& db = *db_;
  ASSIGN_OR_RETURN(Statement find,
                   db.Prepare("SELECT 1 FROM files f JOIN versions v ON v.id = f.version_id "
                              "WHERE f.blob = ? AND v.deleted_at IS NULL "
                              "UNION ALL SELECT 1 FROM file_set_files WHERE blob = ? LIMIT 1"));
  find.Bind(1, digest).Bind(2, digest);
  return find.Step();
}

Result<nlohmann::json> Repository::CollectBlobs(const std::vector<std::string>& digests,
                                                int64_t min_age_s) {
  // Exclusive: no publish is between writing its blobs and committing them.
  std::unique_lock gc_lock(gc_mutex_);
  int64_t removed = 0;
  int64_t bytes = 0;
  int64_t cutoff = NowUnixSeconds() - min_age_s;  // against file mtimes: the system clock
  for (const std::string& digest : digests) {
    Result<BlobInfo> info = blobs_->Stat(digest);
    if (!info.ok()) continue;  // already gone
    if (min_age_s > 0 && info->modified_at > cutoff) continue;
    bool referenced = false;
    {
      WriteLock lock(*this);
      ASSIGN_OR_RETURN(referenced, BlobReferenced(digest));
    }
    if (referenced) continue;
    RETURN_IF_ERROR(blobs_->Remove(digest));
    ++removed;
    bytes += static_cast<int64_t>(info->size);
  }
  if (removed > 0) RestoreBallast();
  return nlohmann::json{{"removed", removed}, {"bytes", bytes}};
}

Result<nlohmann::json> Repository::CollectGarbage(const Caller& caller, int64_t min_age_s) {
  if (!caller.IsHubAdmin()) return PermissionDenied("garbage collection needs the hub admin");
  if (min_age_s < 0) return InvalidArgument("min_age_s must be >= 0");
  return CollectAllBlobs(min_age_s);
}

Result<nlohmann::json> Repository::CollectAllBlobs(int64_t min_age_s) {
  ASSIGN_OR_RETURN(std::vector<BlobInfo> all, blobs_->List());
  std::vector<std::string> digests;
  for (const BlobInfo& blob : all) digests.push_back(blob.digest);
  ASSIGN_OR_RETURN(nlohmann::json result, CollectBlobs(digests, min_age_s));
  if (result["removed"] == 0) return result;
  LogInfo("gc: removed " + result["removed"].dump() + " unreferenced blobs (" +
          result["bytes"].dump() + " bytes)");
  return result;
}

Result<nlohmann::json> Repository::Check(const Caller& caller) {
  if (!caller.IsHubAdmin()) return PermissionDenied("the consistency check needs the hub admin");
  std::vector<std::string> problems;
  std::set<std::string> blobs;
  {
    ConnectionPool::Lease lease = readers_->Acquire();
    Database& db = lease.db();
    ASSIGN_OR_RETURN(Statement files,
                     db.Prepare("SELECT DISTINCT f.blob FROM files f JOIN versions v ON v.id "
                                "= f.version_id WHERE v.deleted_at IS NULL "
                                "UNION SELECT blob FROM file_set_files"));
    while (true) {
      ASSIGN_OR_RETURN(bool more, files.Step());
      if (!more) break;
      blobs.insert(files.ColumnText(0));
    }
    ASSIGN_OR_RETURN(Statement counts,
                     db.Prepare("SELECT v.id, v.file_count, (SELECT count(*) FROM files f WHERE "
                                "f.version_id = v.id) FROM versions v WHERE v.deleted_at IS NULL"));
    while (true) {
      ASSIGN_OR_RETURN(bool more, counts.Step());
      if (!more) break;
      if (counts.ColumnInt(1) != counts.ColumnInt(2)) {
        problems.push_back("version row " + std::to_string(counts.ColumnInt(0)) + " has " +
                           std::to_string(counts.ColumnInt(2)) + " files, expected " +
                           std::to_string(counts.ColumnInt(1)));
      }
    }
    ASSIGN_OR_RETURN(
        Statement latest,
        db.Prepare("SELECT o.id FROM objects o WHERE o.deleted_at IS NULL AND "
                   "IFNULL(o.latest_version_id, 0) != IFNULL((SELECT id FROM versions WHERE "
                   "object_id = o.id AND deleted_at IS NULL ORDER BY number DESC LIMIT 1), 0)"));
    while (true) {
      ASSIGN_OR_RETURN(bool more, latest.Step());
      if (!more) break;
      problems.push_back("object row " + std::to_string(latest.ColumnInt(0)) +
                         ": latest does not point at its highest live version");
    }
    RETURN_IF_ERROR(CheckServingOverrides(db, &problems));
  }
  for (const std::string& digest : blobs) {
    Status read = blobs_->Read(digest, [](const char*, size_t) { return Status::Ok(); });
    if (!read.ok()) problems.push_back("blob " + digest + ": " + read.message());
  }
  return nlohmann::json{
      {"ok", problems.empty()}, {"problems", problems}, {"blobs_checked", blobs.size()}};
}

}  // namespace orrery
