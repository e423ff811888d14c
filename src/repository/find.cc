// Finding: list, full-text search, describe, download and materialise.
#include <cstdio>
#include <optional>

#include "core/clock.h"
#include "core/files.h"
#include "core/log.h"
#include "core/random.h"
#include "repository/rows.h"

namespace orrery {
namespace {

constexpr int64_t kMaxPerPage = 100;
constexpr size_t kMaxSearchWords = 16;

// Turns free text into an FTS5 query: each word (letters, digits, any
// non-ASCII byte) becomes a quoted prefix term, all terms must match. Every
// other character separates words, so no user text reaches FTS5 syntax.
Result<std::string> FtsQuery(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  auto flush = [&] {
    if (!word.empty() && words.size() < kMaxSearchWords) words.push_back(word);
    word.clear();
  };
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || u >= 0x80) {
      word += c;
    } else {
      flush();
    }
  }
  flush();
  if (words.empty()) return InvalidArgument("search text has no words");
  std::string query;
  for (const std::string& w : words) {
    if (!query.empty()) query += " ";
    query += "\"" + w + "\"*";
  }
  return query;
}

std::vector<std::string> SplitNonEmpty(const std::string& text, const std::string& separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(separator, start);
    if (end == std::string::npos) end = text.size();
    if (end > start) parts.push_back(text.substr(start, end - start));
    start = end + separator.size();
  }
  return parts;
}

// A blob the catalog references must exist: its absence is data loss on the
// server's side (500), not a "not found" for the caller.
Status CatalogedBlob(Status status, const std::string& digest) {
  if (status.code() == Code::kNotFound) return DataLoss("stored blob " + digest + " is missing");
  return status;
}

}  // namespace

Result<nlohmann::json> Repository::List(const Caller& caller, const ListQuery& query) {
  return ListPage(caller, query, /*search=*/false);
}

Result<nlohmann::json> Repository::Search(const Caller& caller, const ListQuery& query) {
  return ListPage(caller, query, /*search=*/true);
}

Result<nlohmann::json> Repository::ListPage(const Caller& caller, const ListQuery& query,
                                            bool search) {
  if (query.page < 1) return InvalidArgument("page must be >= 1");
  if (query.per_page < 1 || query.per_page > kMaxPerPage) {
    return InvalidArgument("per_page must be between 1 and " + std::to_string(kMaxPerPage));
  }
  std::string match;
  if (search) {
    ASSIGN_OR_RETURN(match, FtsQuery(query.text));
  }
  // Only the filters given become SQL conditions, so that SQLite can use the
  // indexes they need ("?x = '' OR ..." forms would force a scan).
  std::vector<std::string> values;
  std::string where = " WHERE o.deleted_at IS NULL AND " + VisibleToTenantSql(1);
  auto add = [&](const std::string& condition, const std::string& value) {
    if (value.empty()) return;
    values.push_back(value);
    where += " AND " + condition + " ?" + std::to_string(values.size() + 1);
  };
  add("search MATCH", match);
  add("o.kind =", query.kind ? PackageKindName(*query.kind) : "");
  add("t.name =", query.tenant);
  add("v.backend =", query.backend);
  add("v.task =", query.task);
  add("v.domain =", query.domain);
  add("v.id IN (SELECT version_id FROM version_tags WHERE tag =", query.tag);
  if (!query.tag.empty()) where += ")";
  std::string from =
      " FROM objects o JOIN tenants t ON t.id = o.tenant_id JOIN versions v ON v.id = "
      "o.latest_version_id" +
      std::string(search ? " JOIN search ON search.rowid = o.id" : "") + where;
  std::string score = search ? "bm25(search, 10.0, 5.0, 1.0, 2.0, 5.0, 5.0)" : "0.0";
  std::string limit = std::to_string(values.size() + 2);
  // The page is chosen first from ids and sort keys only; the display
  // columns (and the tag subquery) are then computed for its rows alone,
  // not for every match.
  std::string order = std::string(search ? "score, " : "") + "tenant_name, object_name";
  std::string page =
      "SELECT o.id AS object_id, v.id AS version_id, t.name AS tenant_name, "
      "o.name AS object_name, " +
      score + " AS score" + from + " ORDER BY " + order + " LIMIT ?" + limit + " OFFSET ?" +
      std::to_string(values.size() + 3);
  std::string select =
      "SELECT p.tenant_name, p.object_name, o.kind, o.visibility, v.number, v.title, "
      "v.description, v.creators, v.backend, v.task, v.domain, v.published_at, IFNULL((SELECT "
      "group_concat(tag, ' ') FROM (SELECT tag FROM version_tags WHERE version_id = v.id "
      "ORDER BY tag)), ''), p.score FROM (" +
      page +
      ") p JOIN objects o ON o.id = p.object_id "
      "JOIN versions v ON v.id = p.version_id ORDER BY " +
      order;

  ConnectionPool::Lease lease = readers_->Acquire();
  Database& db = lease.db();
  auto bind = [&](Statement& statement) {
    statement.Bind(1, caller.tenant_id);
    for (size_t i = 0; i < values.size(); ++i) statement.Bind(static_cast<int>(i) + 2, values[i]);
  };
  ASSIGN_OR_RETURN(Statement count, db.Prepare("SELECT count(*)" + from));
  bind(count);
  ASSIGN_OR_RETURN(bool counted, count.Step());
  int64_t total = counted ? count.ColumnInt(0) : 0;

  ASSIGN_OR_RETURN(Statement rows, db.Prepare(select));
  bind(rows);
  rows.Bind(static_cast<int>(values.size()) + 2, query.per_page);
  rows.Bind(static_cast<int>(values.size()) + 3, (query.page - 1) * query.per_page);
  nlohmann::json items = nlohmann::json::array();
  while (true) {
    ASSIGN_OR_RETURN(bool more, rows.Step());
    if (!more) break;
    nlohmann::json item = {
        {"tenant", rows.ColumnText(0)},
        {"name", rows.ColumnText(1)},
        {"kind", rows.ColumnText(2)},
        {"visibility", rows.ColumnText(3)},
        {"latest_version", rows.ColumnInt(4)},
        {"title", rows.ColumnText(5)},
        {"description", rows.ColumnText(6)},
        {"creators", SplitNonEmpty(rows.ColumnText(7), "; ")},
        {"backend", rows.ColumnText(8)},
        {"task", rows.ColumnText(9)},
        {"domain", rows.ColumnText(10)},
        {"updated_at", FormatUnixSeconds(rows.ColumnInt(11))},
        {"tags", SplitNonEmpty(rows.ColumnText(12), " ")},
    };
    // bm25 is lower-is-better; report higher-is-better.
    if (search) item["score"] = -std::stod(rows.ColumnText(13));
    items.push_back(std::move(item));
  }
  return nlohmann::json{
      {"items", items}, {"page", query.page}, {"per_page", query.per_page}, {"total", total}};
}

Result<nlohmann::json> Repository::Describe(const Caller& caller, PackageKind kind,
                                            const QualifiedName& name) {
  ConnectionPool::Lease lease = readers_->Acquire();
  Database& db = lease.db();
  ASSIGN_OR_RETURN(ObjectRow object, FindVisible(db, caller, kind, name));
  nlohmann::json out = {{"tenant", object.tenant},
                        {"name", object.name},
                        {"kind", PackageKindName(kind)},
                        {"visibility", object.visibility},
                        {"created_at", FormatUnixSeconds(object.created_at)},
                        {"latest_version", nullptr}};
  ASSIGN_OR_RETURN(Statement versions,
                   db.Prepare("SELECT id, number, digest, size, published_at, title FROM "
                              "versions WHERE object_id = ? AND deleted_at IS NULL "
                              "ORDER BY number"));
  versions.Bind(1, object.id);
  nlohmann::json version_list = nlohmann::json::array();
  nlohmann::json aliases = nlohmann::json::object();
  while (true) {
    ASSIGN_OR_RETURN(bool more, versions.Step());
    if (!more) break;
    if (versions.ColumnInt(0) == object.latest_version_id) {
      out["latest_version"] = versions.ColumnInt(1);
      aliases["latest"] = versions.ColumnInt(1);
    }
    version_list.push_back({{"version", versions.ColumnInt(1)},
                            {"digest", versions.ColumnText(2)},
                            {"size", versions.ColumnInt(3)},
                            {"published_at", FormatUnixSeconds(versions.ColumnInt(4))},
                            {"title", versions.ColumnText(5)}});
  }
  ASSIGN_OR_RETURN(Statement alias_rows,
                   db.Prepare("SELECT a.name, v.number FROM aliases a JOIN versions v ON "
                              "v.id = a.version_id WHERE a.object_id = ? ORDER BY a.name"));
  alias_rows.Bind(1, object.id);
  while (true) {
    ASSIGN_OR_RETURN(bool more, alias_rows.Step());
    if (!more) break;
    aliases[alias_rows.ColumnText(0)] = alias_rows.ColumnInt(1);
  }
  out["versions"] = version_list;
  out["aliases"] = aliases;
  if (object.tenant_id == caller.tenant_id) {
    ASSIGN_OR_RETURN(out["shared_with"], SharedWith(db, object.id));
  }
  return out;
}

Result<nlohmann::json> Repository::SharedWith(Database& db, int64_t object_id) {
  ASSIGN_OR_RETURN(Statement rows,
                   db.Prepare("SELECT t.name FROM shares s JOIN tenants t ON t.id = "
                              "s.tenant_id WHERE s.object_id = ? ORDER BY t.name"));
  rows.Bind(1, object_id);
  nlohmann::json names = nlohmann::json::array();
  while (true) {
    ASSIGN_OR_RETURN(bool more, rows.Step());
    if (!more) break;
    names.push_back(rows.ColumnText(0));
  }
  return names;
}

Result<nlohmann::json> Repository::DescribeVersion(const Caller& caller, PackageKind kind,
                                                   const QualifiedName& name,
                                                   const VersionRef& version) {
  ConnectionPool::Lease lease = readers_->Acquire();
  Database& db = lease.db();
  ASSIGN_OR_RETURN(ObjectRow object, FindVisible(db, caller, kind, name));
  ASSIGN_OR_RETURN(VersionRow row, ResolveVersion(db, object, version));
  ASSIGN_OR_RETURN(nlohmann::json out, VersionJson(db, object, row));
  ASSIGN_OR_RETURN(out["lineage"], LineageJson(db, caller, row.id));
  return out;
}

Status Repository::CountUsage(const char* column,
                              const std::vector<std::pair<int64_t, uint64_t>>& counts) {
  // Not a WriteLock: usage changes nothing a cache holds, so the catalog
  // generation stays (a bump would make serving resolve every name afresh).
  std::lock_guard lock(db_mutex_);
  Database& db = *db_;
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db));
  ASSIGN_OR_RETURN(Statement add,
                   db.Prepare(std::string("INSERT INTO version_usage(version_id, ") + column +
                              ") VALUES (?1, ?2) ON CONFLICT(version_id) DO UPDATE SET " + column +
                              " = " + column + " + ?2"));
  for (const auto& [version_id, count] : counts) {
    RETURN_IF_ERROR(add.Bind(1, version_id).Bind(2, static_cast<int64_t>(count)).Run());
  }
  return txn.Commit();
}

Status Repository::CountInferences(const std::vector<InferenceCount>& counts) {
  std::vector<std::pair<int64_t, uint64_t>> by_id;
  {
    ConnectionPool::Lease lease = readers_->Acquire();
    Database& db = lease.db();
    ASSIGN_OR_RETURN(Statement find,
                     db.Prepare("SELECT v.id FROM versions v JOIN objects o ON o.id = v.object_id "
                                "WHERE o.tenant_id = ? AND o.name = ? AND o.kind = 'servable' "
                                "AND v.number = ?"));
    for (const InferenceCount& count : counts) {
      find.Bind(1, count.tenant_id).Bind(2, count.name).Bind(3, count.version);
      ASSIGN_OR_RETURN(bool found, find.Step());
      if (found) by_id.emplace_back(find.ColumnInt(0), count.requests);
      find.Reset();
    }
  }
  if (by_id.empty()) return Status::Ok();
  return CountUsage("inferences", by_id);
}

Result<Repository::VersionFiles> Repository::VisibleVersionFiles(const Caller& caller,
                                                                 PackageKind kind,
                                                                 const QualifiedName& name,
                                                                 const VersionRef& version) {
  ConnectionPool::Lease lease = readers_->Acquire();
  Database& db = lease.db();
  ASSIGN_OR_RETURN(ObjectRow object, FindVisible(db, caller, kind, name));
  VersionFiles found;
  ASSIGN_OR_RETURN(found.version, ResolveVersion(db, object, version));
  ASSIGN_OR_RETURN(found.files, FilesOf(db, found.version.id));
  return found;
}

Result<std::string> Repository::ReadModelCard(const Caller& caller, PackageKind kind,
                                              const QualifiedName& name,
                                              const VersionRef& version) {
  ASSIGN_OR_RETURN(VersionFiles found, VisibleVersionFiles(caller, kind, name, version));
  std::optional<FileRow> card;
  for (FileRow& file : found.files) {
    if (file.path == kModelCardFileName) card = std::move(file);
  }
  if (!card) {
    return NotFound(name.ToString() + ":" + std::to_string(found.version.number) + " has no " +
                    kModelCardFileName);
  }
  std::string text;
  RETURN_IF_ERROR(CatalogedBlob(blobs_->Read(card->blob,
                                             [&](const char* data, size_t size) {
                                               text.append(data, size);
                                               return Status::Ok();
                                             }),
                                card->blob));
  return text;
}

Result<std::filesystem::path> Repository::ExportArchive(const Caller& caller, PackageKind kind,
                                                        const QualifiedName& name,
                                                        const VersionRef& version) {
  ASSIGN_OR_RETURN(VersionFiles found, VisibleVersionFiles(caller, kind, name, version));
  const std::vector<FileRow>& files = found.files;
  int64_t version_id = found.version.id;
  std::filesystem::path output = TempRoot() / ("export-" + RandomHex(8) + ".tar");
  Status status = [&]() -> Status {
    ASSIGN_OR_RETURN(auto writer, ArchiveWriter::Create(output, /*zstd=*/false));
    for (const FileRow& file : files) {
      RETURN_IF_ERROR(writer->AddFile(file.path, static_cast<uint64_t>(file.size), file.executable,
                                      [&](const ArchiveWriter::WriteFn& write) {
                                        return CatalogedBlob(blobs_->Read(file.blob, write),
                                                             file.blob);
                                      }));
    }
    return writer->Finish();
  }();
  if (!status.ok()) {
    std::error_code ignored;
    std::filesystem::remove(output, ignored);
    return status.WithContext("exporting " + name.ToString() + ":" + version.ToString());
  }
  Status counted = CountUsage("downloads", {{version_id, 1}});
  if (!counted.ok()) LogWarning("download not counted: " + counted.ToString());
  return output;
}

Result<std::filesystem::path> Repository::Materialize(const Caller& caller,
                                                      const QualifiedName& name,
                                                      const VersionRef& version) {
  return Materialize(caller, PackageKind::kServable, name, version);
}

Result<std::filesystem::path> Repository::Materialize(const Caller& caller, PackageKind kind,
                                                      const QualifiedName& name,
                                                      const VersionRef& version) {
  ASSIGN_OR_RETURN(VersionFiles found, VisibleVersionFiles(caller, kind, name, version));
  return MaterializeFiles(found.files, found.version.digest);
}

Result<std::filesystem::path> Repository::MaterializeFiles(const std::vector<FileRow>& files,
                                                           const std::string& digest) {
  // The directory is named by the package digest, which covers every file's
  // path and content: a present directory is the right one (it only appears
  // by an atomic rename of a complete, verified staging directory).
  std::filesystem::path work = options_.data_dir / "work";
  std::filesystem::path final_dir = work / digest;
  if (std::filesystem::is_directory(final_dir)) return final_dir;
  ASSIGN_OR_RETURN(TempDir staging, TempDir::Create(work, ".stage-"));
  for (const FileRow& file : files) {
    std::filesystem::path target = staging.path() / file.path;
    RETURN_IF_ERROR(EnsureDir(target.parent_path(), 0755));
    RETURN_IF_ERROR(
        CatalogedBlob(blobs_->CopyTo(file.blob, target, file.executable ? 0755 : 0644), file.blob));
  }
  RETURN_IF_ERROR(FsyncDir(staging.path()));
  if (std::rename(staging.path().c_str(), final_dir.c_str()) != 0) {
    // Another thread materialised it first: theirs is as good as ours.
    if (std::filesystem::is_directory(final_dir)) return final_dir;
    return ErrnoStatus("rename into " + final_dir.string());
  }
  staging.Release();
  RETURN_IF_ERROR(FsyncDir(work));
  return final_dir;
}

}  // namespace orrery

namespace orrery {

Result<Repository::ServableVersion> Repository::ResolveServable(const Caller& caller,
                                                                const QualifiedName& name,
                                                                const VersionRef& version) {
  ConnectionPool::Lease lease = readers_->Acquire();
  Database& db = lease.db();
  ASSIGN_OR_RETURN(ObjectRow object, FindVisible(db, caller, PackageKind::kServable, name));
  ASSIGN_OR_RETURN(VersionRow row, ResolveVersion(db, object, version));
  ServableVersion out;
  out.name = QualifiedName{object.tenant, object.name};
  out.tenant_id = object.tenant_id;
  out.version = row.number;
  out.digest = row.digest;
  out.size = static_cast<uint64_t>(row.size);
  out.manifest = row.manifest;
  out.visibility = object.visibility;
  ASSIGN_OR_RETURN(out.serving_override, ServingOverrideOf(db, row.id));
  ASSIGN_OR_RETURN(Statement numbers,
                   db.Prepare("SELECT number FROM versions WHERE object_id = ? AND "
                              "deleted_at IS NULL ORDER BY number"));
  numbers.Bind(1, object.id);
  while (true) {
    ASSIGN_OR_RETURN(bool more, numbers.Step());
    if (!more) break;
    out.live_versions.push_back(numbers.ColumnInt(0));
  }
  return out;
}

}  // namespace orrery
