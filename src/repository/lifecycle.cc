// Lifecycle: aliases, visibility and shares, tombstone deletes, the audit log.
#include "core/clock.h"
#include "repository/rows.h"

namespace orrery {
namespace {

Result<std::vector<std::string>> BlobsOfVersions(Database& db, const std::string& where,
                                                 int64_t id) {
  ASSIGN_OR_RETURN(Statement rows,
                   db.Prepare("SELECT DISTINCT f.blob FROM files f JOIN versions v ON v.id = "
                              "f.version_id WHERE " +
                              where));
  rows.Bind(1, id);
  std::vector<std::string> digests;
  while (true) {
    ASSIGN_OR_RETURN(bool more, rows.Step());
    if (!more) break;
    digests.push_back(rows.ColumnText(0));
  }
  return digests;
}

}  // namespace

Result<nlohmann::json> Repository::SetAlias(const Caller& caller, PackageKind kind,
                                            const QualifiedName& name, std::string_view alias,
                                            int64_t version) {
  RETURN_IF_ERROR(ValidateAliasName(alias));
  if (version < 1) return InvalidArgument("version must be a positive number");
  WriteLock lock(*this);
  Database& db = *db_;
  ASSIGN_OR_RETURN(ObjectRow object, FindOwned(db, caller, kind, name));
  ASSIGN_OR_RETURN(VersionRow row, ResolveVersion(db, object, VersionRef{version, ""}));
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db));
  ASSIGN_OR_RETURN(Statement upsert,
                   db.Prepare("INSERT INTO aliases(object_id, name, version_id) VALUES "
                              "(?1, ?2, ?3) ON CONFLICT(object_id, name) DO UPDATE SET "
                              "version_id = ?3"));
  RETURN_IF_ERROR(upsert.Bind(1, object.id).Bind(2, alias).Bind(3, row.id).Run());
  RETURN_IF_ERROR(AppendAudit(caller, "alias.set", name.ToString(),
                              std::string(alias) + " -> " + std::to_string(version)));
  RETURN_IF_ERROR(txn.Commit());
  return nlohmann::json{{"alias", alias}, {"version", version}};
}

Result<nlohmann::json> Repository::DeleteAlias(const Caller& caller, PackageKind kind,
                                               const QualifiedName& name, std::string_view alias) {
  RETURN_IF_ERROR(ValidateAliasName(alias));
  WriteLock lock(*this);
  Database& db = *db_;
  ASSIGN_OR_RETURN(ObjectRow object, FindOwned(db, caller, kind, name));
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db));
  ASSIGN_OR_RETURN(Statement remove,
                   db.Prepare("DELETE FROM aliases WHERE object_id = ? AND name = ?"));
  RETURN_IF_ERROR(remove.Bind(1, object.id).Bind(2, alias).Run());
  if (db.Changes() == 0) {
    return NotFound("alias " + std::string(alias) + " of " + name.ToString() + " not found");
  }
  RETURN_IF_ERROR(AppendAudit(caller, "alias.delete", name.ToString(), alias));
  RETURN_IF_ERROR(txn.Commit());
  return nlohmann::json{{"alias", alias}, {"deleted", true}};
}

Result<nlohmann::json> Repository::SetVisibility(const Caller& caller, PackageKind kind,
                                                 const QualifiedName& name,
                                                 std::string_view visibility) {
  if (visibility != "private" && visibility != "public" && visibility != "shared") {
    return InvalidArgument("visibility must be private, public or shared");
  }
  WriteLock lock(*this);
  Database& db = *db_;
  ASSIGN_OR_RETURN(ObjectRow object, FindOwned(db, caller, kind, name));
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db));
  ASSIGN_OR_RETURN(Statement update, db.Prepare("UPDATE objects SET visibility = ? WHERE id = ?"));
  RETURN_IF_ERROR(update.Bind(1, visibility).Bind(2, object.id).Run());
  if (visibility == "private") {
    ASSIGN_OR_RETURN(Statement unshare, db.Prepare("DELETE FROM shares WHERE object_id = ?"));
    RETURN_IF_ERROR(unshare.Bind(1, object.id).Run());
  }
  RETURN_IF_ERROR(AppendAudit(caller, "visibility.set", name.ToString(), visibility));
  ASSIGN_OR_RETURN(nlohmann::json shared_with, SharedWith(db, object.id));
  RETURN_IF_ERROR(txn.Commit());
  return nlohmann::json{{"visibility", visibility}, {"shared_with", shared_with}};
}

Result<nlohmann::json> Repository::AddShare(const Caller& caller, PackageKind kind,
                                            const QualifiedName& name, std::string_view tenant) {
  RETURN_IF_ERROR(ValidateTenantName(tenant));
  WriteLock lock(*this);
  Database& db = *db_;
  ASSIGN_OR_RETURN(ObjectRow object, FindOwned(db, caller, kind, name));
  ASSIGN_OR_RETURN(int64_t tenant_id, TenantId(db, tenant));
  if (tenant_id == object.tenant_id)
    return InvalidArgument("an object is always visible to its own tenant");
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db));
  ASSIGN_OR_RETURN(Statement insert,
                   db.Prepare("INSERT OR IGNORE INTO shares(object_id, tenant_id) VALUES (?, ?)"));
  RETURN_IF_ERROR(insert.Bind(1, object.id).Bind(2, tenant_id).Run());
  std::string visibility = object.visibility == "public" ? "public" : "shared";
  ASSIGN_OR_RETURN(Statement update, db.Prepare("UPDATE objects SET visibility = ? WHERE id = ?"));
  RETURN_IF_ERROR(update.Bind(1, visibility).Bind(2, object.id).Run());
  RETURN_IF_ERROR(AppendAudit(caller, "share.add", name.ToString(), tenant));
  ASSIGN_OR_RETURN(nlohmann::json shared_with, SharedWith(db, object.id));
  RETURN_IF_ERROR(txn.Commit());
  return nlohmann::json{{"visibility", visibility}, {"shared_with", shared_with}};
}

Result<nlohmann::json> Repository::RemoveShare(const Caller& caller, PackageKind kind,
                                               const QualifiedName& name, std::string_view tenant) {
  RETURN_IF_ERROR(ValidateTenantName(tenant));
  WriteLock lock(*this);
  Database& db = *db_;
  ASSIGN_OR_RETURN(ObjectRow object, FindOwned(db, caller, kind, name));
  ASSIGN_OR_RETURN(int64_t tenant_id, TenantId(db, tenant));
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db));
  ASSIGN_OR_RETURN(Statement remove,
                   db.Prepare("DELETE FROM shares WHERE object_id = ? AND tenant_id = ?"));
  RETURN_IF_ERROR(remove.Bind(1, object.id).Bind(2, tenant_id).Run());
  if (db.Changes() == 0) {
    return NotFound(name.ToString() + " is not shared with " + std::string(tenant));
  }
  RETURN_IF_ERROR(AppendAudit(caller, "share.remove", name.ToString(), tenant));
  ASSIGN_OR_RETURN(nlohmann::json shared_with, SharedWith(db, object.id));
  std::string visibility = object.visibility;
  if (visibility == "shared" && shared_with.empty()) {
    visibility = "private";
    ASSIGN_OR_RETURN(Statement update,
                     db.Prepare("UPDATE objects SET visibility = 'private' WHERE id = ?"));
    RETURN_IF_ERROR(update.Bind(1, object.id).Run());
  }
  RETURN_IF_ERROR(txn.Commit());
  return nlohmann::json{{"visibility", visibility}, {"shared_with", shared_with}};
}

Result<nlohmann::json> Repository::DeleteVersion(const Caller& caller, PackageKind kind,
                                                 const QualifiedName& name,
                                                 const VersionRef& version) {
  std::vector<std::string> digests;
  int64_t number = 0;
  {
    WriteLock lock(*this);
    Database& db = *db_;
    ASSIGN_OR_RETURN(ObjectRow object, FindOwned(db, caller, kind, name));
    ASSIGN_OR_RETURN(VersionRow row, ResolveVersion(db, object, version));
    number = row.number;
    ASSIGN_OR_RETURN(digests, BlobsOfVersions(*db_, "v.id = ?1", row.id));
    ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db));
    ASSIGN_OR_RETURN(Statement tombstone,
                     db.Prepare("UPDATE versions SET deleted_at = ?, deleted_by = ? "
                                "WHERE id = ?"));
    RETURN_IF_ERROR(
        tombstone.Bind(1, Now()).Bind(2, caller.token_id).Bind(3, row.id).Run());
    ASSIGN_OR_RETURN(Statement unalias, db.Prepare("DELETE FROM aliases WHERE version_id = ?"));
    RETURN_IF_ERROR(unalias.Bind(1, row.id).Run());
    ASSIGN_OR_RETURN(Statement unoverride,
                     db.Prepare("DELETE FROM serving_overrides WHERE version_id = ?"));
    RETURN_IF_ERROR(unoverride.Bind(1, row.id).Run());
    RETURN_IF_ERROR(RefreshLatest(object.id));
    RETURN_IF_ERROR(AppendAudit(caller, "delete.version", name.ToString(),
                                "version " + std::to_string(number)));
    RETURN_IF_ERROR(txn.Commit());
  }
  NotifyDeleted(kind, name, number);
  RETURN_IF_ERROR(CollectBlobs(digests, 0).status());
  return nlohmann::json{{"deleted", name.ToString() + ":" + std::to_string(number)}};
}

Result<nlohmann::json> Repository::DeleteObject(const Caller& caller, PackageKind kind,
                                                const QualifiedName& name) {
  std::vector<std::string> digests;
  {
    WriteLock lock(*this);
    Database& db = *db_;
    ASSIGN_OR_RETURN(ObjectRow object, FindOwned(db, caller, kind, name));
    ASSIGN_OR_RETURN(digests,
                     BlobsOfVersions(*db_, "v.object_id = ?1 AND v.deleted_at IS NULL", object.id));
    int64_t now = Now();
    ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db));
    ASSIGN_OR_RETURN(Statement versions,
                     db.Prepare("UPDATE versions SET deleted_at = ?1, deleted_by = ?2 "
                                "WHERE object_id = ?3 AND deleted_at IS NULL"));
    RETURN_IF_ERROR(versions.Bind(1, now).Bind(2, caller.token_id).Bind(3, object.id).Run());
    ASSIGN_OR_RETURN(Statement tombstone,
                     db.Prepare("UPDATE objects SET deleted_at = ?1, deleted_by = ?2, "
                                "latest_version_id = NULL WHERE id = ?3"));
    RETURN_IF_ERROR(tombstone.Bind(1, now).Bind(2, caller.token_id).Bind(3, object.id).Run());
    ASSIGN_OR_RETURN(Statement unalias, db.Prepare("DELETE FROM aliases WHERE object_id = ?"));
    RETURN_IF_ERROR(unalias.Bind(1, object.id).Run());
    ASSIGN_OR_RETURN(Statement unoverride,
                     db.Prepare("DELETE FROM serving_overrides WHERE version_id IN "
                                "(SELECT id FROM versions WHERE object_id = ?)"));
    RETURN_IF_ERROR(unoverride.Bind(1, object.id).Run());
    ASSIGN_OR_RETURN(Statement unsearch, db.Prepare("DELETE FROM search WHERE rowid = ?"));
    RETURN_IF_ERROR(unsearch.Bind(1, object.id).Run());
    RETURN_IF_ERROR(AppendAudit(caller, "delete.object", name.ToString(), ""));
    RETURN_IF_ERROR(txn.Commit());
  }
  NotifyDeleted(kind, name, 0);
  RETURN_IF_ERROR(CollectBlobs(digests, 0).status());
  return nlohmann::json{{"deleted", name.ToString()}};
}

int Repository::AddDeleteListener(DeleteListener listener) {
  std::lock_guard lock(listeners_mutex_);
  int id = next_listener_id_++;
  delete_listeners_.emplace(id, std::move(listener));
  return id;
}

void Repository::RemoveDeleteListener(int id) {
  std::lock_guard lock(listeners_mutex_);
  delete_listeners_.erase(id);
}

void Repository::NotifyDeleted(PackageKind kind, const QualifiedName& name, int64_t version) {
  if (kind != PackageKind::kServable) return;
  std::lock_guard lock(listeners_mutex_);
  for (const auto& [id, listener] : delete_listeners_) listener(name, version);
}

Result<nlohmann::json> Repository::Audit(const Caller& caller, int64_t limit) {
  if (caller.role != Role::kAdmin) return PermissionDenied("the audit log needs an admin token");
  if (limit < 1 || limit > 10000) return InvalidArgument("limit must be between 1 and 10000");
  ConnectionPool::Lease lease = readers_->Acquire();
  Database& db = lease.db();
  ASSIGN_OR_RETURN(
      Statement rows,
      db.Prepare("SELECT a.id, a.at, IFNULL(t.name, ''), IFNULL(a.token_id, 0), a.action, "
                 "a.object, a.detail FROM audit a LEFT JOIN tenants t ON t.id = a.tenant_id "
                 "WHERE ?1 OR a.tenant_id = ?2 ORDER BY a.id DESC LIMIT ?3"));
  rows.Bind(1, int64_t{caller.IsHubAdmin() ? 1 : 0}).Bind(2, caller.tenant_id).Bind(3, limit);
  nlohmann::json entries = nlohmann::json::array();
  while (true) {
    ASSIGN_OR_RETURN(bool more, rows.Step());
    if (!more) break;
    entries.push_back({{"id", rows.ColumnInt(0)},
                       {"at", FormatUnixSeconds(rows.ColumnInt(1))},
                       {"tenant", rows.ColumnText(2)},
                       {"token_id", rows.ColumnInt(3)},
                       {"action", rows.ColumnText(4)},
                       {"object", rows.ColumnText(5)},
                       {"detail", rows.ColumnText(6)}});
  }
  return nlohmann::json{{"entries", entries}};
}

}  // namespace orrery
