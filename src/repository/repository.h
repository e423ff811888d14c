// Repository: the catalog of tenants, tokens, servables, datasets, versions
// and aliases, on top of a BlobStore (file contents) and a Database (SQLite
// catalog). It enforces every access rule of docs/api.md: the API layer only
// authenticates the token and forwards.
//
// Results are JSON documents in the shapes docs/api.md gives; the API layer
// sends them as they are. Errors are Status values whose Code maps onto the
// HTTP status, with messages safe to show the caller. An object the caller
// may not see is always kNotFound with the same text as an absent one.
//
// Durability: a publish writes and fsyncs every blob before one catalog
// transaction makes the version visible, so a crash leaves either the whole
// version or none of it (plus unreferenced blobs, removed by GC).
//
// Ownership: owns the Database and the BlobStore.
// Thread-safety: all public methods are safe to call concurrently. Catalog
// writes are serialised by `db_mutex_` on the one writing connection; reads
// (auth, list, search, describe, download) lease a connection of `readers_`
// and run in parallel, each seeing the last commit (WAL). Blob writes of
// publishes run outside both, concurrently with each other; `gc_mutex_` keeps garbage collection
// from removing blobs a publish has written but not yet committed.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/status.h"
#include "repository/archive.h"
#include "repository/manifest.h"
#include "repository/names.h"
#include "storage/blob_store.h"
#include "storage/connection_pool.h"
#include "storage/database.h"

namespace orrery {

enum class Role { kReader = 0, kPublisher = 1, kAdmin = 2 };
const char* RoleName(Role role);
Result<Role> ParseRole(std::string_view text);

// The tenant whose admins operate the hub (created on first start).
constexpr const char* kHubTenant = "hub";

// Who is calling: the result of authenticating a token.
struct Caller {
  int64_t tenant_id = 0;
  std::string tenant;
  Role role = Role::kReader;
  int64_t token_id = 0;
  bool IsHubAdmin() const { return tenant == kHubTenant && role == Role::kAdmin; }
};

// What a version was made from (a training job's output): recorded when it
// is published, shown both ways (repository/lineage.cc).
struct LineageInput {
  std::string role;  // "code" or "input"
  std::string name;  // the input's name in the job ("" for the code)
  PackageKind kind = PackageKind::kDataset;
  QualifiedName object;
  int64_t version = 0;
  std::string digest;  // the version's package digest (or the uploaded code's)
  std::string Ref() const { return object.ToString() + ":" + std::to_string(version); }
};
struct Lineage {
  nlohmann::json made_by;  // the job: {"job", "name", "command", "env", "metrics", ...}
  std::vector<LineageInput> inputs;  // servable and dataset versions it used
};

struct PublishOptions {
  std::string expected_sha256;         // of the whole archive; empty = not checked
  std::string visibility = "private";  // for a new (or revived) object
  bool if_changed = false;             // identical to latest -> no new version
  // Servables (not pipelines): run the publish check (SetPublishCheck) before
  // the version becomes visible. False: skipped, the version is marked
  // unchecked ("checked": false).
  bool check = true;
  // Run every check, store nothing; the answer describes what would be published.
  bool dry_run = false;
  // Recorded with the version (a job's output); shown by DescribeVersion.
  std::optional<Lineage> lineage;
};

struct PublishResult {
  nlohmann::json version;  // the version object
  bool created = false;    // false when if_changed found identical content
};

// Filters of list and search; empty strings mean "any".
struct ListQuery {
  std::optional<PackageKind> kind;
  std::string tenant, backend, task, domain, tag;
  std::string text;  // search words (search only)
  int64_t page = 1;
  int64_t per_page = 20;
};

class Repository {
 public:
  struct Options {
    std::filesystem::path data_dir = "orrery-data";
    ArchiveLimits archive_limits;
    int64_t gc_min_age_s = 600;      // full GC spares blobs younger than this
    bool reset_admin_token = false;  // write a new hub admin token even if the hub exists
    int read_connections = 4;        // catalog readers used in parallel (lists, auth, ...)
    // Free space a publish must leave in the data directory's file system
    // (507 otherwise, refused before anything is written), so that the
    // catalog's own writes (deletes, tokens, tenants) always find room.
    uint64_t min_free_bytes = 64ull << 20;
    // The wall clock (unix seconds) of timestamps and token expiry; tests
    // set their own. Default: the system clock.
    std::function<int64_t()> clock;
  };

  // Opens or creates the data directory, migrates the catalog, removes
  // leftover temp files, and on first start (or with reset_admin_token)
  // creates the hub tenant and writes an admin token to
  // <data_dir>/admin.token (mode 0600).
  static Result<std::unique_ptr<Repository>> Open(const Options& options);
  ~Repository();

  // Path of the admin token file written on first start.
  std::filesystem::path AdminTokenPath() const;
  // Scratch directory for uploads and exports (same filesystem as blobs).
  std::filesystem::path TempRoot() const;

  // ---- tenants and tokens (tenants.cc)
  Result<Caller> Authenticate(std::string_view token);
  Result<nlohmann::json> CreateTenant(const Caller& caller, std::string_view name);
  Result<nlohmann::json> ListTenants(const Caller& caller);
  // The id of tenant `name`; kNotFound when there is none. (For other parts
  // of the hub keeping per-tenant state, e.g. job limits; no access check.)
  Result<int64_t> FindTenantId(std::string_view name);
  // `tenant` empty = the caller's; `expires_in_s` 0 = never.
  Result<nlohmann::json> CreateToken(const Caller& caller, std::string_view tenant, Role role,
                                     int64_t expires_in_s, std::string_view description);
  Result<nlohmann::json> ListTokens(const Caller& caller, std::string_view tenant);
  Result<nlohmann::json> RevokeToken(const Caller& caller, int64_t token_id);

  // ---- publishing (publish.cc). `archive` is a tar or tar.zst file.
  Result<PublishResult> Publish(const Caller& caller, PackageKind kind, const QualifiedName& name,
                                const std::filesystem::path& archive,
                                const PublishOptions& options);

  // ---- finding (find.cc)
  Result<nlohmann::json> List(const Caller& caller, const ListQuery& query);
  Result<nlohmann::json> Search(const Caller& caller, const ListQuery& query);
  Result<nlohmann::json> Describe(const Caller& caller, PackageKind kind,
                                  const QualifiedName& name);
  // A version; with "lineage": {"made_from": what it was made from (null
  // when it was published directly), "derived": the versions made from it
  // that the caller can see}. An input the caller cannot see is shown by its
  // digest only.
  Result<nlohmann::json> DescribeVersion(const Caller& caller, PackageKind kind,
                                         const QualifiedName& name, const VersionRef& version);
  // Usage counts (shown in each version object as "usage"): downloads are
  // counted by ExportArchive; serving reports inferences in batches.
  struct InferenceCount {
    int64_t tenant_id = 0;  // the owner's
    std::string name;
    int64_t version = 0;
    uint64_t requests = 0;
  };
  Status CountInferences(const std::vector<InferenceCount>& counts);

  // The version's model card (its root README.md), as stored; kNotFound when
  // it has none (and for what the caller cannot see).
  Result<std::string> ReadModelCard(const Caller& caller, PackageKind kind,
                                    const QualifiedName& name, const VersionRef& version);
  // Writes the version's package as a tar under TempRoot(), every blob
  // verified; the caller sends and then removes the returned file.
  Result<std::filesystem::path> ExportArchive(const Caller& caller, PackageKind kind,
                                              const QualifiedName& name, const VersionRef& version);
  // Unpacks the version into <data_dir>/work/<package digest>/ (verified,
  // complete or absent, reused when present) and returns that directory:
  // what a serving backend loads from.
  Result<std::filesystem::path> Materialize(const Caller& caller, const QualifiedName& name,
                                            const VersionRef& version);
  // The same for a servable or dataset version.
  Result<std::filesystem::path> Materialize(const Caller& caller, PackageKind kind,
                                            const QualifiedName& name, const VersionRef& version);

  // ---- file sets (file_sets.cc): files stored as blobs outside any
  // version, such as a training job's uploaded code. A set belongs to the
  // caller's tenant and is named by its package digest (the same digest a
  // version of the same files would have); storing the same files again
  // returns the same set. Its blobs are kept from garbage collection.
  struct FileSet {
    std::string digest;
    uint64_t size = 0;
    std::vector<std::string> paths;
    nlohmann::json ToJson() const;
  };
  // Publishers of their tenant. `archive` is checked as a publish's is
  // (paths, types, limits); it needs no manifest.
  Result<FileSet> StoreFileSet(const Caller& caller, const std::filesystem::path& archive);
  // kNotFound when the caller's tenant has no set of that digest.
  Result<FileSet> DescribeFileSet(const Caller& caller, const std::string& digest);
  // Unpacks the set like Materialize (work/<digest>/, shared with a version
  // of the same files).
  Result<std::filesystem::path> MaterializeFileSet(const Caller& caller, const std::string& digest);

  // What serving needs to know of a servable version the caller may see:
  // resolves an alias to its number. kNotFound as for Describe.
  struct ServableVersion {
    QualifiedName name;        // the owner's tenant and the servable's name
    int64_t tenant_id = 0;     // the owner's tenant id
    int64_t version = 0;       // the number `version` resolved to
    std::string digest;        // package digest (names the Materialize directory)
    uint64_t size = 0;         // bytes of the package's files
    std::string manifest;      // canonical manifest JSON
    std::string visibility;    // private | public | shared
    std::vector<int64_t> live_versions;  // every live version number, ascending
    std::string serving_override;        // an admin's override (canonical JSON), "" when none
  };
  Result<ServableVersion> ResolveServable(const Caller& caller, const QualifiedName& name,
                                          const VersionRef& version);

  // Increases after every catalog write of this process. Caches of catalog
  // answers (auth, name resolution) compare it to drop stale entries; read
  // it before the catalog read whose answer you cache.
  uint64_t CatalogGeneration() const { return generation_.load(std::memory_order_acquire); }

  // ---- lifecycle (lifecycle.cc)
  Result<nlohmann::json> SetAlias(const Caller& caller, PackageKind kind, const QualifiedName& name,
                                  std::string_view alias, int64_t version);
  Result<nlohmann::json> DeleteAlias(const Caller& caller, PackageKind kind,
                                     const QualifiedName& name, std::string_view alias);
  Result<nlohmann::json> SetVisibility(const Caller& caller, PackageKind kind,
                                       const QualifiedName& name, std::string_view visibility);
  Result<nlohmann::json> AddShare(const Caller& caller, PackageKind kind, const QualifiedName& name,
                                  std::string_view tenant);
  Result<nlohmann::json> RemoveShare(const Caller& caller, PackageKind kind,
                                     const QualifiedName& name, std::string_view tenant);
  Result<nlohmann::json> DeleteVersion(const Caller& caller, PackageKind kind,
                                       const QualifiedName& name, const VersionRef& version);
  Result<nlohmann::json> DeleteObject(const Caller& caller, PackageKind kind,
                                      const QualifiedName& name);
  Result<nlohmann::json> Audit(const Caller& caller, int64_t limit);
  // Adds an entry to the audit log for what another part of the hub did on
  // the caller's behalf (a training job's submit, halt, cancel, ...).
  Status AppendAuditEntry(const Caller& caller, std::string_view action, std::string_view object,
                          std::string_view detail);

  // Called after a servable's version (`version` > 0) or the whole servable
  // (`version` == 0) was deleted, once the delete has committed, on the
  // deleting thread and outside the catalog lock. Serving uses it to unload
  // what was deleted. Listeners must not call back into the Repository's
  // writes, nor add or remove listeners.
  // Serving's check of a servable package before publish makes it visible
  // (serving/publish_check.h): given its manifest and the package unpacked
  // in `dir`; an error refuses the publish with that status. Without one
  // (a Repository used alone), versions are published with "checked": null.
  using PublishCheck = std::function<Status(
      const Manifest& manifest, const std::filesystem::path& dir, const QualifiedName& servable)>;
  void SetPublishCheck(PublishCheck check);

  using DeleteListener = std::function<void(const QualifiedName& servable, int64_t version)>;
  // Returns an id for RemoveDeleteListener.
  int AddDeleteListener(DeleteListener listener);
  void RemoveDeleteListener(int id);

  // ---- serving overrides (serving_overrides.cc)
  // An admin's override of a servable version's serving settings (manifest.h,
  // ApplyServingOverride): admins of the owning tenant, and the hub admin for
  // servables it can see. Each answers {"servable": "tenant/name:N",
  // "override", "manifest", "effective"}: the stored override ({} when none),
  // the manifest's settings and the settings serving uses. Setting an
  // all-null override removes it; clearing an absent one is kNotFound.
  // Changes are audited (serving.set, serving.clear) and bump the catalog
  // generation, so that serving resolves the version afresh.
  Result<nlohmann::json> GetServingOverride(const Caller& caller, const QualifiedName& name,
                                            const VersionRef& version);
  Result<nlohmann::json> SetServingOverride(const Caller& caller, const QualifiedName& name,
                                            const VersionRef& version,
                                            const nlohmann::json& override);
  Result<nlohmann::json> ClearServingOverride(const Caller& caller, const QualifiedName& name,
                                              const VersionRef& version);

  // ---- storage space (storage_space.cc)
  // The data directory's file system: what is free (to this process), its
  // size, and Options::min_free_bytes.
  struct StorageSpace {
    uint64_t free_bytes = 0;
    uint64_t total_bytes = 0;
    uint64_t reserve_bytes = 0;
  };
  Result<StorageSpace> Space() const;
  // OK when `bytes` more can be written, besides what publishes under way
  // hold (HoldRoomFor), and the reserve still be free; kInsufficientStorage
  // otherwise.
  Status CheckRoomFor(uint64_t bytes) const;
  // CheckRoomFor, and `bytes` held for the caller until the hold is
  // destroyed: publishes running side by side cannot each pass the check
  // and together eat the reserve.
  class RoomHold {
   public:
    RoomHold(RoomHold&& other) noexcept
        : repository_(std::exchange(other.repository_, nullptr)), bytes_(other.bytes_) {}
    RoomHold(const RoomHold&) = delete;
    ~RoomHold();

   private:
    friend class Repository;
    RoomHold(Repository* repository, uint64_t bytes) : repository_(repository), bytes_(bytes) {}
    Repository* repository_;
    uint64_t bytes_;
  };
  Result<RoomHold> HoldRoomFor(uint64_t bytes);

  // ---- maintenance (repository.cc)
  // Removes blobs no live version references and older than `min_age_s`.
  Result<nlohmann::json> CollectGarbage(const Caller& caller, int64_t min_age_s);
  // Verifies every live file's blob (existence and digest) and catalog
  // invariants; {"ok": bool, "problems": [...]}.
  Result<nlohmann::json> Check(const Caller& caller);

 private:
  struct ObjectRow;
  struct VersionRow;

 public:
  struct FileRow;  // public so that implementation helpers can name it

 private:
  Repository(Options options, std::unique_ptr<Database> db, std::unique_ptr<ConnectionPool> readers,
             std::unique_ptr<BlobStore> blobs);
  // Unix seconds by Options::clock.
  int64_t Now() const { return options_.clock ? options_.clock() : NowUnixSeconds(); }
  // CheckRoomFor's test. REQUIRES(room_mutex_).
  Status CheckRoomLocked(uint64_t bytes) const;
  Status Bootstrap();
  // Creates a hub admin token and writes it to AdminTokenPath().
  // REQUIRES(db_mutex_), inside a transaction.
  Status WriteAdminToken(int64_t hub_tenant_id, std::string_view description);

  // Catalog helpers; each REQUIRES(db_mutex_).
  Result<ObjectRow> FindVisible(Database& db, const Caller& caller, PackageKind kind,
                                const QualifiedName& name);
  Result<ObjectRow> FindOwned(Database& db, const Caller& caller, PackageKind kind,
                              const QualifiedName& name);
  // The servable an admin may tune the serving of (serving_overrides.cc).
  Result<ObjectRow> FindTunable(Database& db, const Caller& caller, const QualifiedName& name);
  Result<std::string> ServingOverrideOf(Database& db, int64_t version_id);
  Result<VersionRow> ResolveVersion(Database& db, const ObjectRow& object,
                                    const VersionRef& version);
  Result<std::vector<FileRow>> FilesOf(Database& db, int64_t version_id);
  // Unpacks `files` into work/<digest>/ (verified, complete or absent).
  Result<std::filesystem::path> MaterializeFiles(const std::vector<FileRow>& files,
                                                 const std::string& digest);
  Result<std::vector<FileRow>> FileSetFiles(Database& db, int64_t tenant_id,
                                            const std::string& digest);
  // lineage.cc. REQUIRES(db_mutex_), in the publish's transaction.
  Status InsertLineage(Database& db, int64_t version_id, const Lineage& lineage);
  Result<nlohmann::json> LineageJson(Database& db, const Caller& caller, int64_t version_id);
  // A version `caller` can see, with its files, in one read (a reader lease).
  struct VersionFiles;
  Result<VersionFiles> VisibleVersionFiles(const Caller& caller, PackageKind kind,
                                           const QualifiedName& name, const VersionRef& version);
  Result<nlohmann::json> VersionJson(Database& db, const ObjectRow& object,
                                     const VersionRow& version);
  Result<int64_t> TenantId(Database& db, std::string_view tenant);
  Status AppendAudit(const Caller& caller, std::string_view action, std::string_view object,
                     std::string_view detail);
  // Points `latest` at the highest live version and refreshes the search row.
  Status RefreshLatest(int64_t object_id);
  Result<bool> BlobReferenced(const std::string& digest);
  Result<PublishResult> CommitVersion(const Caller& caller, PackageKind kind,
                                      const QualifiedName& name, const Manifest& manifest,
                                      const PublishOptions& options, std::vector<FileRow>& files,
                                      std::optional<bool> checked);
  Result<int64_t> UpsertObject(const Caller& caller, PackageKind kind, const QualifiedName& name,
                               const std::string& visibility);
  Result<nlohmann::json> SharedWith(Database& db, int64_t object_id);
  Result<nlohmann::json> ListPage(const Caller& caller, const ListQuery& query, bool search);

  // Removes those of `digests` that no live version references; takes
  // gc_mutex_ exclusively. Returns {removed, bytes}.
  Result<nlohmann::json> CollectBlobs(const std::vector<std::string>& digests, int64_t min_age_s);
  Result<nlohmann::json> CollectAllBlobs(int64_t min_age_s);

  // The ballast file (storage_space.cc): given up when a catalog write finds
  // the disk (almost) full, restored once there is room again.
  std::filesystem::path BallastPath() const;
  void GiveUpBallastIfFull();
  void RestoreBallast();

  // Holds db_mutex_ and bumps generation_ when released, after the write's
  // transaction (declared after it) has committed or rolled back. Makes
  // room for the write on a full disk (GiveUpBallastIfFull), unless told not
  // to (a publish: the ballast is for deletes).
  class WriteLock {
   public:
    explicit WriteLock(Repository& repository, bool may_use_ballast = true)
        : repository_(repository), lock_(repository.db_mutex_) {
      if (may_use_ballast) repository.GiveUpBallastIfFull();
    }
    ~WriteLock() { repository_.generation_.fetch_add(1, std::memory_order_acq_rel); }

   private:
    Repository& repository_;
    std::lock_guard<std::mutex> lock_;
  };

  // Authenticated tokens, so that a request does not query the catalog;
  // an entry holds while the catalog generation is unchanged and for at
  // most kAuthCacheSeconds (other processes' writes).
  struct CachedCaller {
    Caller caller;
    std::optional<int64_t> expires_at;
    uint64_t generation = 0;
    int64_t cached_at = 0;
  };
  Result<Caller> AuthenticateUncached(std::string_view token, std::optional<int64_t>* expires);

  Options options_;
  std::atomic<uint64_t> generation_{1};
  std::mutex auth_cache_mutex_;
  std::unordered_map<std::string, CachedCaller> auth_cache_;  // GUARDED_BY(auth_cache_mutex_)
  std::mutex db_mutex_;
  std::unique_ptr<Database> db_;             // GUARDED_BY(db_mutex_)
  std::unique_ptr<ConnectionPool> readers_;  // read-only catalog connections
  std::unique_ptr<BlobStore> blobs_;
  // Publishes hold it shared from their first blob write to their commit;
  // garbage collection holds it exclusively.
  std::shared_mutex gc_mutex_;
  // Held across a room check (a statvfs) and HoldRoomFor's hold, so that a
  // check and the hold that follows it are one step.
  mutable std::mutex room_mutex_;
  uint64_t held_bytes_ = 0;  // GUARDED_BY(room_mutex_): HoldRoomFor's holds
  // Adds to `column` (downloads | inferences) of version_usage (find.cc).
  Status CountUsage(const char* column, const std::vector<std::pair<int64_t, uint64_t>>& counts);
  // Unpacks `archive` and runs the publish check on it (publish.cc).
  Status RunPublishCheck(const std::filesystem::path& archive, const Manifest& manifest,
                         const QualifiedName& name);
  std::mutex check_mutex_;
  PublishCheck publish_check_;  // GUARDED_BY(check_mutex_)
  // After a servable delete has committed: tells the listeners.
  void NotifyDeleted(PackageKind kind, const QualifiedName& name, int64_t version);
  std::mutex listeners_mutex_;
  std::map<int, DeleteListener> delete_listeners_;  // GUARDED_BY(listeners_mutex_)
  int next_listener_id_ = 1;                        // GUARDED_BY(listeners_mutex_)
};

// The catalog schema, one SQL script per migration (schema.cc).
const std::vector<std::string>& CatalogMigrations();

}  // namespace orrery
