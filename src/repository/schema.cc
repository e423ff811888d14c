// The catalog schema. Migrations are append-only: a released migration is
// never edited; a change is a new entry at the end.
#include "repository/repository.h"
#include "repository/rows.h"

namespace orrery {

const std::vector<std::string>& CatalogMigrations() {
  static const std::vector<std::string> kMigrations = {
      // 1: tenants, tokens, objects, versions, files, aliases, shares, audit, search.
      R"sql(
CREATE TABLE tenants(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL);

CREATE TABLE tokens(
  id INTEGER PRIMARY KEY,
  tenant_id INTEGER NOT NULL REFERENCES tenants(id),
  role TEXT NOT NULL CHECK (role IN ('reader', 'publisher', 'admin')),
  hash TEXT NOT NULL UNIQUE,          -- SHA-256 of the token; the token itself is never stored
  description TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  revoked_at INTEGER);

CREATE TABLE objects(
  id INTEGER PRIMARY KEY,
  tenant_id INTEGER NOT NULL REFERENCES tenants(id),
  name TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('servable', 'dataset')),
  visibility TEXT NOT NULL CHECK (visibility IN ('private', 'public', 'shared')),
  created_at INTEGER NOT NULL,
  next_version INTEGER NOT NULL DEFAULT 1,
  latest_version_id INTEGER REFERENCES versions(id),  -- NULL when no live version
  deleted_at INTEGER,
  deleted_by INTEGER REFERENCES tokens(id),
  UNIQUE (tenant_id, name));

CREATE TABLE versions(
  id INTEGER PRIMARY KEY,
  object_id INTEGER NOT NULL REFERENCES objects(id),
  number INTEGER NOT NULL,
  digest TEXT NOT NULL,               -- SHA-256 of the sorted "<sha256>  <path>\n" lines
  size INTEGER NOT NULL,
  file_count INTEGER NOT NULL,
  manifest TEXT NOT NULL,             -- canonical JSON
  title TEXT NOT NULL,
  description TEXT NOT NULL,
  creators TEXT NOT NULL,             -- names joined with "; "
  backend TEXT NOT NULL,
  task TEXT NOT NULL,
  domain TEXT NOT NULL,
  published_at INTEGER NOT NULL,
  published_by INTEGER NOT NULL REFERENCES tokens(id),
  deleted_at INTEGER,
  deleted_by INTEGER REFERENCES tokens(id),
  UNIQUE (object_id, number));

CREATE TABLE version_tags(
  version_id INTEGER NOT NULL REFERENCES versions(id),
  tag TEXT NOT NULL,
  PRIMARY KEY (version_id, tag));
CREATE INDEX version_tags_by_tag ON version_tags(tag);

CREATE TABLE files(
  version_id INTEGER NOT NULL REFERENCES versions(id),
  path TEXT NOT NULL,
  blob TEXT NOT NULL,                 -- SHA-256 of the content: the blob's name
  size INTEGER NOT NULL,
  executable INTEGER NOT NULL,
  PRIMARY KEY (version_id, path));
CREATE INDEX files_by_blob ON files(blob);

CREATE TABLE aliases(
  object_id INTEGER NOT NULL REFERENCES objects(id),
  name TEXT NOT NULL,
  version_id INTEGER NOT NULL REFERENCES versions(id),
  PRIMARY KEY (object_id, name));

CREATE TABLE shares(
  object_id INTEGER NOT NULL REFERENCES objects(id),
  tenant_id INTEGER NOT NULL REFERENCES tenants(id),
  PRIMARY KEY (object_id, tenant_id));
CREATE INDEX shares_by_tenant ON shares(tenant_id);

CREATE TABLE audit(
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  tenant_id INTEGER REFERENCES tenants(id),
  token_id INTEGER REFERENCES tokens(id),
  action TEXT NOT NULL,
  object TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '');

-- One row per object with a live version (rowid = objects.id), holding the
-- latest live version's searchable text.
CREATE VIRTUAL TABLE search USING fts5(name, title, description, creators, tags,
                                       tokenize = 'unicode61');
)sql",
      // 2: tag (and other filter) lookups go from a version to its object.
      R"sql(
CREATE INDEX objects_by_latest ON objects(latest_version_id);
)sql",
      // 3: an admin's override of a servable version's serving settings
      // (manifest sections `batching`, `cache`); removed with the version.
      R"sql(
CREATE TABLE serving_overrides(
  version_id INTEGER PRIMARY KEY REFERENCES versions(id),
  settings TEXT NOT NULL,             -- JSON object of manifest sections, checked against the manifest
  updated_at INTEGER NOT NULL,
  updated_by INTEGER NOT NULL REFERENCES tokens(id));
)sql",
      // 4: whether publishing ran the servable's checks (1), was told to
      // skip them (0), or none apply (NULL: datasets, pipelines, versions
      // published before checks existed); and per-version usage counts.
      R"sql(
ALTER TABLE versions ADD COLUMN checked INTEGER;
CREATE TABLE version_usage(
  version_id INTEGER PRIMARY KEY REFERENCES versions(id),
  downloads INTEGER NOT NULL DEFAULT 0,
  inferences INTEGER NOT NULL DEFAULT 0);
)sql",
      // 5: search also finds identifiers (DOIs, URLs, arXiv ids, ...) and
      // ORCID iDs: the table gains a column, so it is rebuilt.
      std::string(R"sql(
DROP TABLE search;
CREATE VIRTUAL TABLE search USING fts5(name, title, description, creators, tags, identifiers,
                                       tokenize = 'unicode61');
INSERT INTO search(rowid, name, title, description, creators, tags, identifiers)
  SELECT o.id, o.name, v.title, v.description, v.creators,
         IFNULL((SELECT group_concat(tag, ' ') FROM version_tags WHERE version_id = v.id), ''),
)sql") + kSearchIdentifiersSql + R"sql(
  FROM objects o JOIN versions v ON v.id = o.latest_version_id WHERE o.deleted_at IS NULL;
)sql",
      // 6: file sets: files stored as blobs outside any version (a training
      // job's uploaded code), per tenant, named by their package digest.
      R"sql(
CREATE TABLE file_sets(
  tenant_id INTEGER NOT NULL REFERENCES tenants(id),
  digest TEXT NOT NULL,
  size INTEGER NOT NULL,
  file_count INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  created_by INTEGER NOT NULL REFERENCES tokens(id),
  PRIMARY KEY (tenant_id, digest));
CREATE TABLE file_set_files(
  tenant_id INTEGER NOT NULL,
  digest TEXT NOT NULL,
  path TEXT NOT NULL,
  blob TEXT NOT NULL,
  size INTEGER NOT NULL,
  executable INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, digest, path),
  FOREIGN KEY (tenant_id, digest) REFERENCES file_sets(tenant_id, digest));
CREATE INDEX file_set_files_by_blob ON file_set_files(blob);
)sql",
      // 7: lineage: what a version was made from (a training job, its code
      // and inputs), and the reverse (what was made from a version).
      R"sql(
CREATE TABLE lineage(
  version_id INTEGER PRIMARY KEY REFERENCES versions(id),
  made_by TEXT NOT NULL);             -- JSON: the job, its command, env, final metrics
CREATE TABLE lineage_inputs(
  version_id INTEGER NOT NULL REFERENCES versions(id),
  role TEXT NOT NULL CHECK (role IN ('code', 'input')),
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  ref TEXT NOT NULL,                  -- tenant/name:number
  digest TEXT NOT NULL,
  input_version_id INTEGER REFERENCES versions(id));  -- NULL: uploaded code
CREATE INDEX lineage_inputs_by_version ON lineage_inputs(version_id);
CREATE INDEX lineage_inputs_by_input ON lineage_inputs(input_version_id);
)sql",
  };
  return kMigrations;
}

}  // namespace orrery
