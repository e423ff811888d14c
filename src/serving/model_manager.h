// ModelManager: decides which servable versions are loaded, resolves the
// names requests use, and hands requests the Model that serves them.
//
// - Resolution: (caller's tenant, "tenant/name", version or alias) -> the
//   version the caller may see, cached while the catalog is unchanged
//   (Repository::CatalogGeneration) and for at most a few seconds. Its
//   manifest carries the effective serving settings: the manifest's, with an
//   admin's serving override applied (manifest.h). A loaded model made with
//   older settings than a request's resolution is replaced.
// - Loading: on first request or explicitly; loads and unloads run on the
//   manager's load threads, never on request threads, so a slow load never
//   stalls another model's requests. A request to a loading model waits in
//   that model's queue.
// - The request path never takes the manager's lock: the map of models is
//   an immutable snapshot swapped atomically (read-copy-update).
// - Memory budget, a bound (model_manager_budget.cc): a load is admitted
//   only when its expected bytes (the version's last measured size, else
//   Backend::EstimateMemoryBytes) fit beside what loaded and loading models
//   are charged; to make room, idle ready models are unloaded least
//   recently used first, and their charge is released once their unload has
//   finished. Loads that do not fit wait in arrival order; a request whose
//   deadline passes while its model waits, and a load still waiting after
//   timeout_ms, fail with 503 + Retry-After. A loaded model is charged its
//   measured bytes (never less than a later measurement), so a model that
//   grows past its estimate makes idle ones go.
// - Response cache: one ResponseCache of cache_bytes for every version,
//   shared with the models, which consult it for servables whose manifest
//   says `cache: true`. Its entries are keyed by version and digest, so they
//   outlive an unload and serve the same version when it is loaded again.
// - Pipelines (backend `pipeline`): "loading" one builds its Pipeline
//   (serving/pipeline.h), which reaches its steps through this manager
//   with the pipeline owner's identity; it holds no instances or memory.
//
// - Publishing: a servable's package is loaded and its examples run before
//   its version becomes visible (CheckPublished, asked by the Repository).
// - Usage: every version's inference requests are added to the catalog
//   every usage_flush_ms and when its model unloads (version "usage").
// - Deletes: a deleted version (or servable) is unloaded at once, as if
//   Unload were called, and its response cache entries are dropped
//   (ForgetDeleted, told by the Repository).
//
// Ownership: borrows the Repository (must outlive the manager); owns the
// models (shared with requests in flight) and the load threads.
// Thread-safety: all public methods are safe from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "backends/backend.h"
#include "core/task_pool.h"
#include "repository/repository.h"
#include "serving/model.h"
#include "serving/response_cache.h"

namespace orrery {

class ModelManager {
 public:
  struct Options {
    uint64_t memory_budget_bytes = 8ull << 30;  // loaded models beyond it: LRU idle ones unloaded
    int instances = 1;                  // per version, unless config.instances says (1..8)
    size_t max_queue = 128;             // per version: more waiting requests get 503
    int64_t timeout_ms = 30'000;        // per request; the `timeout` parameter can only shorten it
    std::map<std::string, int64_t> servable_timeout_ms;  // "tenant/name": instead of timeout_ms
    bool warmup = true;                 // run the manifest's examples after each load
    int load_threads = 2;
    uint64_t cache_bytes = 256ull << 20;  // response cache capacity; 0 disables caching
    int pipeline_threads = 4;           // run independent in-process pipeline steps side by side
    SandboxOptions sandbox;             // worker processes (python, untrusted native)
    std::set<std::string> trusted;      // "tenant/name": native code allowed in process
    std::set<std::string> network;      // "tenant/name": may open connections if it asks
    // How worker processes are isolated here ("bubblewrap" or "fallback"),
    // as the server's probe found it; shown on /metrics.
    std::string worker_isolation;
    int64_t usage_flush_ms = 5000;  // inference counts reach the catalog this often
  };

  static Result<std::unique_ptr<ModelManager>> Create(Repository& repository, Options options);
  ~ModelManager();  // unloads every model, stops the load threads

  const Options& options() const { return options_; }
  // The longest a request to `servable` may take: its servable_timeout_ms,
  // else timeout_ms.
  int64_t TimeoutMsFor(const QualifiedName& servable) const {
    auto it = options_.servable_timeout_ms.find(servable.ToString());
    return it == options_.servable_timeout_ms.end() ? options_.timeout_ms : it->second;
  }
  // The response cache (disabled when cache_bytes is 0); never null.
  const ResponseCache& cache() const { return *cache_; }

  // The servable version `caller` names, visible to it.
  Result<std::shared_ptr<const ResolvedServable>> Resolve(const Caller& caller,
                                                          const QualifiedName& name,
                                                          const VersionRef& version);
  // The model for `servable`, starting its load when it is not loaded (or
  // unloaded); never blocks on a load.
  std::shared_ptr<Model> Acquire(const Caller& caller,
                                 const std::shared_ptr<const ResolvedServable>& servable);
  // Explicit load: like Acquire, but a failed model (or one whose workers
  // all gave up restarting) is loaded afresh. Use Model::OnSettled to learn
  // the outcome.
  std::shared_ptr<Model> Load(const Caller& caller,
                              const std::shared_ptr<const ResolvedServable>& servable);
  // Unloads the version (waits for its requests); NotFound when not loaded.
  Status Unload(const std::string& key);
  // The model of `key` if loaded or loading; nullptr otherwise.
  std::shared_ptr<Model> Find(const std::string& key) const;
  // Every model the manager knows (loading, ready, failed), by key.
  std::vector<std::shared_ptr<Model>> Models() const;

  // The recent worker output of the version `key` ("tenant/name:N"), or
  // nullptr when none of its workers has run since the server started.
  std::shared_ptr<const OutputRing> Output(const std::string& key) const;

  // How many instances a load of `servable` starts (its config.instances,
  // else Options::instances).
  int InstancesFor(const ResolvedServable& servable) const;

  // Prometheus text for the models whose owner is `tenant` (all for "").
  std::string RenderMetrics(const std::string& tenant) const;

  // The memory budget's accounts (model_manager_budget.cc).
  struct MemoryStats {
    uint64_t budget_bytes = 0;
    uint64_t reserved_bytes = 0;   // loads admitted, not yet measured
    uint64_t accounted_bytes = 0;  // loaded models (and those still unloading)
    uint64_t high_water_bytes = 0; // the most reserved + accounted ever was
    uint64_t waiting_loads = 0;
    uint64_t evictions = 0;        // idle models unloaded to make room
    uint64_t underestimates = 0;   // loads that measured more than they reserved
  };
  MemoryStats memory_stats() const;

 private:
  using ModelMap = std::unordered_map<std::string, std::shared_ptr<Model>>;
  struct CachedResolution {
    std::shared_ptr<const ResolvedServable> servable;
    uint64_t generation = 0;
    int64_t cached_at_ms = 0;
  };

  ModelManager(Repository& repository, Options options);
  std::shared_ptr<Model> StartLoad(const Caller& caller,
                                   const std::shared_ptr<const ResolvedServable>& servable,
                                   bool replace_failed);
  void RunLoad(std::shared_ptr<Model> model, Caller caller);
  // The Pipeline serving `servable` (backend pipeline).
  Result<std::unique_ptr<Composite>> LoadPipeline(const ResolvedServable& servable);
  void Publish(ModelMap map);  // REQUIRES(control_mutex_)
  // Takes `model` out of the map if it is still there; true when it was.
  bool Detach(const std::shared_ptr<Model>& model);
  // Unloads `model` on a load thread, runs `then` (if any), then releases
  // its memory charge.
  void UnloadLater(std::shared_ptr<Model> model, std::function<void()> then = nullptr);
  // The Repository's delete listener: unloads the deleted versions (their
  // requests in flight finish), which frees their workers, memory charge
  // and metrics series, and drops their response cache entries.
  void ForgetDeleted(const QualifiedName& servable, int64_t version);
  // The Repository's publish check: loads the package in `dir` as serving
  // would (sandbox, trust and network as for the servable) and runs its
  // examples (serving/publish_check.h).
  Status CheckPublished(const Manifest& manifest, const std::filesystem::path& dir,
                        const QualifiedName& servable) const;
  LoadContext ContextFor(const ResolvedServable& servable);  // without dir
  LoadContext ContextFor(const Manifest& manifest, const QualifiedName& servable,
                         std::string label) const;

  // Memory budget (model_manager_budget.cc).
  uint64_t ExpectedBytes(const ResolvedServable& servable) const;
  // Queues the load of `model` for admission (or starts it, when it needs
  // no memory).
  void Admit(std::shared_ptr<Model> model, Caller caller);
  // Starts the waiting loads that fit; unloads idle models to make room.
  void TryAdmit();
  // After RunLoad: the model's charge becomes what it measures.
  void Settle(Model& model);
  // After a model's unload has finished: its charge goes.
  void Release(const Model& model);
  // A waiting `model` leaves the queue (its load will not start).
  void CancelWaiting(const std::shared_ptr<Model>& model);
  void AdmissionLoop();
  void RenderMemoryMetrics(std::string& out) const;
  // Appends the response cache's part of /metrics (model_manager_metrics.cc).
  void RenderCacheMetrics(const std::vector<std::shared_ptr<Model>>& models,
                          const std::vector<std::string>& labels, bool totals,
                          std::string& out) const;
  // Appends the data directory's free space (hub admin only).
  void RenderStorageMetrics(std::string& out) const;

  Repository& repository_;
  const Options options_;
  const std::shared_ptr<ResponseCache> cache_;  // shared with every Model

  std::atomic<std::shared_ptr<const ModelMap>> models_;  // the RCU snapshot
  mutable std::mutex control_mutex_;                     // serialises map updates

  std::mutex cache_mutex_;
  std::unordered_map<std::string, CachedResolution> resolutions_;  // GUARDED_BY(cache_mutex_)
  std::atomic<uint64_t> resolutions_begun_{0};  // numbers ResolvedServable::sequence

  // The memory budget's accounts; GUARDED_BY(budget_mutex_).
  struct Charge {
    uint64_t bytes = 0;
    bool measured = false;  // false: a reservation (the load has not finished)
    bool evicting = false;  // chosen to make room; released when unloaded
  };
  struct WaitingLoad {
    std::shared_ptr<Model> model;
    Caller caller;
    uint64_t need = 0;
    std::chrono::steady_clock::time_point since;
  };
  mutable std::mutex budget_mutex_;
  std::condition_variable budget_changed_;
  std::unordered_map<const Model*, Charge> charges_;
  std::deque<WaitingLoad> waiting_;
  std::unordered_map<std::string, uint64_t> measured_;  // key -> bytes per instance
  uint64_t reserved_ = 0, accounted_ = 0, high_water_ = 0;
  uint64_t evictions_ = 0, underestimates_ = 0;
  bool stopping_ = false;
  std::thread admission_;  // expires and re-admits waiting loads

  int delete_listener_ = 0;  // the Repository's id for ForgetDeleted

  // Worker output per version key, kept across loads and unloads, dropped
  // with the version (ForgetDeleted).
  std::shared_ptr<OutputRing> OutputFor(const std::string& key);
  mutable std::mutex outputs_mutex_;
  std::unordered_map<std::string, std::shared_ptr<OutputRing>> outputs_;  // GUARDED_BY

  // Usage counts (model_manager_usage.cc): each model's requests already
  // added to the catalog.
  void FlushUsage(const std::vector<std::shared_ptr<Model>>& models, bool forget);
  void UsageLoop();
  void StopUsage();  // joins the loop, then flushes once more
  std::mutex usage_mutex_;
  std::map<std::weak_ptr<Model>, uint64_t, std::owner_less<>> usage_flushed_;  // GUARDED_BY
  std::mutex usage_stop_mutex_;
  std::condition_variable usage_wake_;
  bool usage_stopping_ = false;  // GUARDED_BY(usage_stop_mutex_)
  std::thread usage_thread_;

  TaskPool fanout_;  // pipelines' independent steps
  TaskPool loads_;   // loads and unloads; last, so destroyed (drained) first
};

}  // namespace orrery
