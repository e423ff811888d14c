// Serving overrides: an admin's replacement of a servable version's serving
// settings (manifest sections `batching`, `cache`), stored beside the
// immutable version in `serving_overrides` and applied where serving
// resolves the version (ResolveServable carries it; ModelManager applies it).
//
// Who: an admin of the servable's tenant, or the hub admin (the operator)
// for any servable it can see. Private servables of other tenants stay
// kNotFound, as everywhere.
#include "core/clock.h"
#include "repository/rows.h"

namespace orrery {
namespace {

using nlohmann::json;

// The answer of every serving-override call: the stored override, the
// manifest's settings and the effective ones.
Result<json> OverrideAnswer(const QualifiedName& name, int64_t version,
                            const std::string& manifest_text, const std::string& stored) {
  ASSIGN_OR_RETURN(Manifest manifest, ParseManifest(manifest_text));
  json override = stored.empty() ? json::object() : json::parse(stored, nullptr, false);
  if (override.is_discarded()) {
    return Internal("stored serving override of " + name.ToString() + " is not JSON");
  }
  ASSIGN_OR_RETURN(Manifest effective, ApplyServingOverride(manifest, override));
  return json{{"servable", name.ToString() + ":" + std::to_string(version)},
              {"tenant", name.tenant},
              {"name", name.name},
              {"version", version},
              {"override", override},
              {"manifest", ServingSettingsJson(manifest)},
              {"effective", ServingSettingsJson(effective)}};
}

}  // namespace

Status CheckServingOverrides(Database& db, std::vector<std::string>* problems) {
  ASSIGN_OR_RETURN(Statement rows,
                   db.Prepare("SELECT s.version_id, s.settings, v.manifest, v.deleted_at IS NOT "
                              "NULL FROM serving_overrides s JOIN versions v ON v.id = "
                              "s.version_id ORDER BY s.version_id"));
  while (true) {
    ASSIGN_OR_RETURN(bool more, rows.Step());
    if (!more) break;
    std::string where = "serving override of version row " + std::to_string(rows.ColumnInt(0));
    if (rows.ColumnInt(3) != 0) {
      problems->push_back(where + ": the version is deleted");
      continue;
    }
    json override = json::parse(rows.ColumnText(1), nullptr, false);
    Result<Manifest> manifest = ParseManifest(rows.ColumnText(2));
    Status applies =
        manifest.ok() ? ApplyServingOverride(*manifest, override).status() : manifest.status();
    if (!applies.ok()) problems->push_back(where + ": " + applies.message());
  }
  return Status::Ok();
}

Result<Repository::ObjectRow> Repository::FindTunable(Database& db, const Caller& caller,
                                                      const QualifiedName& name) {
  if (caller.role != Role::kAdmin) {
    return PermissionDenied("serving overrides need an admin token (role " +
                            std::string(RoleName(caller.role)) + ")");
  }
  ASSIGN_OR_RETURN(ObjectRow object, FindVisible(db, caller, PackageKind::kServable, name));
  if (object.tenant_id != caller.tenant_id && !caller.IsHubAdmin()) {
    return PermissionDenied("servable " + name.ToString() + " belongs to tenant " + name.tenant +
                            ": only its admins or the hub admin may override its serving");
  }
  return object;
}

Result<std::string> Repository::ServingOverrideOf(Database& db, int64_t version_id) {
  ASSIGN_OR_RETURN(Statement find,
                   db.Prepare("SELECT settings FROM serving_overrides WHERE version_id = ?"));
  find.Bind(1, version_id);
  ASSIGN_OR_RETURN(bool found, find.Step());
  return found ? find.ColumnText(0) : std::string();
}

Result<json> Repository::GetServingOverride(const Caller& caller, const QualifiedName& name,
                                            const VersionRef& version) {
  ConnectionPool::Lease lease = readers_->Acquire();
  Database& db = lease.db();
  ASSIGN_OR_RETURN(ObjectRow object, FindTunable(db, caller, name));
  ASSIGN_OR_RETURN(VersionRow row, ResolveVersion(db, object, version));
  ASSIGN_OR_RETURN(std::string stored, ServingOverrideOf(db, row.id));
  return OverrideAnswer(name, row.number, row.manifest, stored);
}

Result<json> Repository::SetServingOverride(const Caller& caller, const QualifiedName& name,
                                            const VersionRef& version, const json& override) {
  WriteLock lock(*this);
  Database& db = *db_;
  ASSIGN_OR_RETURN(ObjectRow object, FindTunable(db, caller, name));
  ASSIGN_OR_RETURN(VersionRow row, ResolveVersion(db, object, version));
  ASSIGN_OR_RETURN(Manifest manifest, ParseManifest(row.manifest));
  RETURN_IF_ERROR(ApplyServingOverride(manifest, override).status());
  json canonical = CanonicalServingOverride(override);
  std::string stored = canonical.empty() ? std::string() : canonical.dump();
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db));
  if (stored.empty()) {
    ASSIGN_OR_RETURN(Statement remove,
                     db.Prepare("DELETE FROM serving_overrides WHERE version_id = ?"));
    RETURN_IF_ERROR(remove.Bind(1, row.id).Run());
  } else {
    ASSIGN_OR_RETURN(Statement upsert,
                     db.Prepare("INSERT INTO serving_overrides(version_id, settings, updated_at, "
                                "updated_by) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(version_id) DO "
                                "UPDATE SET settings = ?2, updated_at = ?3, updated_by = ?4"));
    upsert.Bind(1, row.id).Bind(2, stored).Bind(3, Now());
    RETURN_IF_ERROR(upsert.Bind(4, caller.token_id).Run());
  }
  RETURN_IF_ERROR(AppendAudit(caller, "serving.set", name.ToString(),
                              "version " + std::to_string(row.number) + ": " + canonical.dump()));
  RETURN_IF_ERROR(txn.Commit());
  return OverrideAnswer(name, row.number, row.manifest, stored);
}

Result<json> Repository::ClearServingOverride(const Caller& caller, const QualifiedName& name,
                                              const VersionRef& version) {
  WriteLock lock(*this);
  Database& db = *db_;
  ASSIGN_OR_RETURN(ObjectRow object, FindTunable(db, caller, name));
  ASSIGN_OR_RETURN(VersionRow row, ResolveVersion(db, object, version));
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db));
  ASSIGN_OR_RETURN(Statement remove,
                   db.Prepare("DELETE FROM serving_overrides WHERE version_id = ?"));
  RETURN_IF_ERROR(remove.Bind(1, row.id).Run());
  std::string key = name.ToString() + ":" + std::to_string(row.number);
  if (db.Changes() == 0) return NotFound("servable " + key + " has no serving override");
  RETURN_IF_ERROR(AppendAudit(caller, "serving.clear", name.ToString(),
                              "version " + std::to_string(row.number)));
  RETURN_IF_ERROR(txn.Commit());
  return OverrideAnswer(name, row.number, row.manifest, "");
}

}  // namespace orrery
