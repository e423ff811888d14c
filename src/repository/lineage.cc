// Lineage (repository.h): recorded with a job's published output, shown
// both ways by DescribeVersion. The reverse direction, and an input's name,
// are shown only where the caller can see the other version: lineage never
// makes an invisible object visible.
#include "repository/rows.h"

namespace orrery {

using nlohmann::json;

Status Repository::InsertLineage(Database& db, int64_t version_id, const Lineage& lineage) {
  ASSIGN_OR_RETURN(Statement made,
                   db.Prepare("INSERT INTO lineage(version_id, made_by) VALUES (?, ?)"));
  RETURN_IF_ERROR(made.Bind(1, version_id).Bind(2, lineage.made_by.dump()).Run());
  ASSIGN_OR_RETURN(Statement find,
                   db.Prepare("SELECT v.id FROM versions v JOIN objects o ON o.id = v.object_id "
                              "JOIN tenants t ON t.id = o.tenant_id WHERE t.name = ? AND "
                              "o.name = ? AND o.kind = ? AND v.number = ?"));
  ASSIGN_OR_RETURN(Statement insert,
                   db.Prepare("INSERT INTO lineage_inputs(version_id, role, name, kind, ref, "
                              "digest, input_version_id) VALUES (?, ?, ?, ?, ?, ?, ?)"));
  for (const LineageInput& input : lineage.inputs) {
    std::optional<int64_t> input_version;
    if (input.version > 0) {
      find.Bind(1, input.object.tenant).Bind(2, input.object.name);
      find.Bind(3, PackageKindName(input.kind)).Bind(4, input.version);
      ASSIGN_OR_RETURN(bool found, find.Step());
      if (found) input_version = find.ColumnInt(0);
      find.Reset();
    }
    insert.Bind(1, version_id).Bind(2, input.role).Bind(3, input.name);
    insert.Bind(4, PackageKindName(input.kind)).Bind(5, input.version > 0 ? input.Ref() : "");
    insert.Bind(6, input.digest).Bind(7, input_version);
    RETURN_IF_ERROR(insert.Run());
  }
  return Status::Ok();
}

Result<json> Repository::LineageJson(Database& db, const Caller& caller, int64_t version_id) {
  json out = {{"made_from", nullptr}, {"derived", json::array()}};
  ASSIGN_OR_RETURN(Statement made, db.Prepare("SELECT made_by FROM lineage WHERE version_id = ?"));
  made.Bind(1, version_id);
  ASSIGN_OR_RETURN(bool has_lineage, made.Step());
  if (has_lineage) {
    json from = json::parse(made.ColumnText(0), nullptr, false);
    if (from.is_discarded()) from = json::object();
    // Each input with its ref when the caller can see it (its own, public or
    // shared), else by digest alone.
    ASSIGN_OR_RETURN(
        Statement inputs,
        db.Prepare("SELECT i.role, i.name, i.kind, i.ref, i.digest, (i.input_version_id IS NULL "
                   "OR EXISTS (SELECT 1 FROM versions v JOIN objects o ON o.id = v.object_id "
                   "WHERE v.id = i.input_version_id AND " +
                   VisibleToTenantSql(2) + ")) FROM lineage_inputs i WHERE i.version_id = ?1 "
                   "ORDER BY i.role, i.name"));
    inputs.Bind(1, version_id).Bind(2, caller.tenant_id);
    json list = json::array();
    while (true) {
      ASSIGN_OR_RETURN(bool more, inputs.Step());
      if (!more) break;
      bool visible = inputs.ColumnInt(5) != 0;
      list.push_back({{"role", inputs.ColumnText(0)},
                      {"name", inputs.ColumnText(1)},
                      {"kind", inputs.ColumnText(2)},
                      {"ref", visible && !inputs.ColumnText(3).empty() ? json(inputs.ColumnText(3))
                                                                       : json()},
                      {"digest", inputs.ColumnText(4)}});
    }
    from["inputs"] = list;
    out["made_from"] = from;
  }
  // What was made from this version, where the caller can see it.
  ASSIGN_OR_RETURN(
      Statement derived,
      db.Prepare("SELECT DISTINCT t.name, o.name, o.kind, v.number, i.role FROM lineage_inputs i "
                 "JOIN versions v ON v.id = i.version_id JOIN objects o ON o.id = v.object_id "
                 "JOIN tenants t ON t.id = o.tenant_id WHERE i.input_version_id = ?1 AND "
                 "v.deleted_at IS NULL AND o.deleted_at IS NULL AND " +
                 VisibleToTenantSql(2) + " ORDER BY t.name, o.name, v.number"));
  derived.Bind(1, version_id).Bind(2, caller.tenant_id);
  while (true) {
    ASSIGN_OR_RETURN(bool more, derived.Step());
    if (!more) break;
    out["derived"].push_back(
        {{"ref", derived.ColumnText(0) + "/" + derived.ColumnText(1) + ":" +
                     std::to_string(derived.ColumnInt(3))},
         {"kind", derived.ColumnText(2)},
         {"as", derived.ColumnText(4)}});
  }
  return out;
}

}  // namespace orrery
