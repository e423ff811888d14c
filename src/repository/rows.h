// Catalog rows as the Repository's implementation files see them. Private to
// src/repository/; not part of the Repository's interface.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "repository/repository.h"

namespace orrery {

struct Repository::ObjectRow {
  int64_t id = 0;
  int64_t tenant_id = 0;
  std::string tenant;
  std::string name;
  PackageKind kind = PackageKind::kServable;
  std::string visibility;
  int64_t created_at = 0;
  int64_t latest_version_id = 0;  // 0 when no live version
  std::string Qualified() const { return tenant + "/" + name; }
};

struct Repository::VersionRow {
  int64_t id = 0;
  int64_t number = 0;
  std::string digest;
  int64_t size = 0;
  int64_t file_count = 0;
  std::string manifest;  // canonical JSON text
  std::string title;
  int64_t published_at = 0;
  std::string published_by;  // tenant of the publishing token
  std::optional<bool> checked;  // PublishOptions::check; nullopt: no check applies
};

struct Repository::FileRow {
  std::string path;
  std::string blob;
  int64_t size = 0;
  bool executable = false;
};

struct Repository::VersionFiles {
  VersionRow version;
  std::vector<FileRow> files;
};

// SQL expression: the searchable identifiers of version `v`: the values of
// its manifest's identifiers and related identifiers and its creators'
// ORCID iDs, space-separated (the search table's `identifiers` column).
// Catalog migration 5 uses it: change it only together with a new migration.
inline constexpr const char* kSearchIdentifiersSql =
    "(SELECT IFNULL(group_concat(x, ' '), '') FROM ("
    "SELECT json_extract(value, '$.value') AS x FROM json_each(v.manifest, '$.identifiers') "
    "UNION ALL SELECT json_extract(value, '$.value') FROM "
    "json_each(v.manifest, '$.related_identifiers') "
    "UNION ALL SELECT json_extract(value, '$.orcid') FROM json_each(v.manifest, '$.creators') "
    "WHERE json_extract(value, '$.orcid') IS NOT NULL))";

// SQL fragment: true when object `o` is visible to the tenant bound at `?N`.
// Used by every query that reads objects for a caller.
std::string VisibleToTenantSql(int parameter_index);

// "servable acme/x not found": the one answer for absent and invisible objects.
Status ObjectNotFound(PackageKind kind, const QualifiedName& name);

// Check()'s look at serving overrides (serving_overrides.cc): each must sit
// on a live version and still apply to its manifest; appends what is wrong.
Status CheckServingOverrides(Database& db, std::vector<std::string>* problems);

}  // namespace orrery
