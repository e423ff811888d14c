// Model: one servable version inside the model manager: its life cycle
// (states, load, drain, unload), the response cache in front of it, and its
// metrics. How its requests reach its instances is its Scheduler's
// (scheduler.h): direct, worker, batched, or a pipeline's composite.
//
// States: kLoading -> kReady | kFailed; kReady -> kUnloading -> kUnloaded.
// A model that is still loading queues requests (up to max_queue, at their
// priority levels) and hands them to its scheduler once ready; a failed one
// refuses them with the reason. A request that arrives after its deadline
// is failed without running (pipelines excepted: their steps say which one
// it missed).
//
// Queue (manifest `queue`): at most max_size requests wait (absent:
// Options::max_queue); one more is refused at once (retry_later: 503 +
// Retry-After). With priority_levels > 0 a request names a level 1
// (highest) .. priority_levels, or 0 (or a level the servable lacks) for its
// default (PriorityLevel).
//
// Memoized servables (manifest `cache: true`, and a manager whose response
// cache is enabled) look each request up in the shared ResponseCache first
// (model_cache.cc): a hit is answered at once on the submitting thread, with
// InferOutcome::cache_hit set, without queueing or touching an instance; a
// miss runs as usual and its successful answer is stored. Errors, timeouts
// and answers that do not match the signature are never stored.
//
// Instances: Options::instances are loaded; an autoscaler may then add a
// loaded instance or take one out (AddInstance, RemoveInstance), which the
// scheduler does without stopping requests.
//
// Ownership: the manager and every request in flight share a Model
// (shared_ptr): the handle that keeps the version loaded. Unload() waits for
// queued and running requests (and instance changes) to finish before it
// destroys the scheduler and its instances.
// Thread-safety: all methods are safe from any thread; Load() and
// Unload() are called by the manager's load threads only.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "repository/repository.h"
#include "serving/infer_job.h"
#include "serving/metrics.h"
#include "serving/request_queue.h"
#include "serving/scheduler.h"

namespace orrery {

class ResponseCache;

enum class ModelState { kLoading, kReady, kFailed, kUnloading, kUnloaded };
// Triton's names: LOADING, READY, UNAVAILABLE (failed), UNLOADING, UNAVAILABLE.
const char* ModelStateName(ModelState state);

// A servable version as resolved from the catalog, with its parsed manifest.
struct ResolvedServable {
  Repository::ServableVersion info;
  Manifest manifest;      // with the version's serving override applied (info.serving_override)
  std::string key;        // "tenant/name:version", the manager's map key
  uint64_t sequence = 0;  // resolutions begun before this one (ModelManager::Resolve)
};

class Model final : private SchedulerHost {
 public:
  struct Options {
    int instances = 1;       // loaded copies; requests run in parallel across them
    size_t max_queue = 128;  // waiting requests beyond this are refused (503), unless
                             // the manifest's queue.max_size says otherwise
    bool warmup = true;      // run the manifest's examples once after load
    // The manager's response cache, shared by its models; consulted only
    // when the manifest says `cache: true`. nullptr: no caching.
    std::shared_ptr<ResponseCache> cache;
    // Called once the model has left kLoading, before the OnSettled
    // callbacks (the manager's accounts are right when they run).
    std::function<void(Model&)> on_settled;
  };

  Model(std::shared_ptr<const ResolvedServable> servable, Options options);
  ~Model();

  const ResolvedServable& servable() const { return *servable_; }
  const std::string& key() const override { return servable_->key; }
  ModelState state() const;
  // Why the model is not ready ("" when ready).
  std::string reason() const;
  // Ready to answer: loaded and at least one instance healthy.
  bool Ready() const;
  // Loaded, but every instance's worker gave up restarting: only a new load
  // brings it back.
  bool GaveUp() const;
  // Unload() was called (while loading: it takes effect when the load ends).
  bool stopping() const;

  // Creates the instances with `backend` and moves to kReady or kFailed.
  // Runs queued requests once ready (or fails them), through the scheduler
  // SchedulingFor(manifest, backend.InProcess(context)) names.
  void Load(Backend& backend, const LoadContext& context);
  // Instead of Load, for a composite servable: moves to kReady serving
  // through `composite` (MakeCompositeScheduler), or to kFailed with its
  // error. Starts no threads.
  void LoadComposite(Result<std::unique_ptr<Composite>> composite);
  // kReady/kFailed -> kUnloading -> kUnloaded; waits for queued and running
  // requests, then destroys the instances. Idempotent.
  void Unload();

  // Instead of Load, for a model whose load never started (it waited for
  // memory in vain): kLoading -> kFailed with `status`; its queued requests
  // fail with retry_later (503 + Retry-After). No-op once it left kLoading.
  void FailWaiting(const Status& status);
  // Fails the queued requests whose deadline passed with retry_later (503 +
  // Retry-After): they waited for the model's memory, not for an instance.
  void ExpireWaiting();
  // While kLoading: what it waits for (shown as its reason).
  void NoteWaiting(std::string why);
  // The load failed for want of memory (FailWaiting): worth retrying later.
  bool retry_later() const { return retry_later_.load(std::memory_order_relaxed); }

  // Calls `callback` once the model has left kLoading and Options::on_settled
  // ran (at once if so), on the thread that finished the load.
  void OnSettled(std::function<void()> callback);

  // Runs the job now, later, or fails it; job.done is always called.
  void Submit(InferJob job);

  // Requests waiting, per priority level (index 0: level 1; one entry
  // without priority levels).
  std::vector<size_t> QueueLengths() const;
  // True when Submit may run the job on the calling thread before it
  // returns (ready in-process instances, no batching): a caller starting
  // several jobs at once hands such ones to other threads.
  bool RunsOnCaller() const;

  // Requests queued or running.
  int InFlight() const { return in_flight_.load(std::memory_order_relaxed); }
  // When the model was last used, as a process-wide sequence number (its
  // creation, its load ending, or its latest request): larger is more
  // recent, never equal.
  uint64_t LastUse() const { return last_use_.load(std::memory_order_relaxed); }
  // Marks the model used now (LastUse).
  void Touch();
  uint64_t MemoryBytes() const;
  int ReadyInstances() const;
  // Worker process restarts, one entry per instance; empty for in-process backends.
  std::vector<uint64_t> WorkerRestarts() const;

  // The autoscaler's seam (scheduler.h). Instances serving now (0 unless ready).
  int Instances() const;
  // Serves with one more instance, loaded by the caller from the model's
  // backend; kConflict unless ready (and for a pipeline). Queued requests
  // may run on it before this returns (in-process backends).
  Status AddInstance(std::unique_ptr<Instance> instance);
  // Takes one instance out once it has finished its request and returns it
  // (the caller destroys it, which stops its worker). Never the last one,
  // and never unless ready: kConflict.
  Result<std::unique_ptr<Instance>> RemoveInstance();
  ServingMetrics& metrics() override { return metrics_; }
  const ServingMetrics& metrics() const { return metrics_; }

 private:
  // SchedulerHost: what the scheduler reports back.
  const Manifest& manifest() const override { return servable_->manifest; }
  void Finish(InferJob& job, InferOutcome outcome) override {
    Finish(job, std::move(outcome), /*accepted=*/true);
  }
  void Expire(InferJob& job) override { Expire(job, /*accepted=*/true); }
  void InstanceFailed() override;  // every instance gave up: kReady -> kFailed

  // Response cache (model_cache.cc): true when `job` was answered from the
  // cache (and finished); on a miss, wraps job.done to store the answer.
  bool AnswerFromCache(InferJob& job);
  // Queues `job` (priority resolved) while the model loads, or refuses it.
  // REQUIRES(mutex_) held by `lock`; released.
  void WaitForLoad(std::unique_lock<std::mutex>& lock, InferJob job);
  // Fails a job whose deadline passed before it could run.
  void Expire(InferJob& job, bool accepted);
  // Calls job.done; `accepted`: the job was counted in in_flight_.
  void Finish(InferJob& job, InferOutcome outcome, bool accepted);
  // Ends something counted in in_flight_ (a request, an instance change).
  void EndInFlight();
  // Runs `change` on the scheduler of a ready model (model.cc).
  template <typename Change>
  auto ChangeInstances(Change change) -> decltype(change(std::declval<Scheduler&>()));
  // kLoading -> kReady with `scheduler`, which takes the waiting requests
  // and starts. `lock` holds mutex_; released.
  void BecomeReady(std::unique_lock<std::mutex>& lock, std::unique_ptr<Scheduler> scheduler);
  // kLoading -> kFailed: fails the waiting jobs (with retry_later when
  // `retry_later`). `lock` holds mutex_; released.
  void FailLoad(std::unique_lock<std::mutex>& lock, const Status& status, bool retry_later = false);
  Status WarmUp(const std::vector<std::unique_ptr<Instance>>& instances);
  void RunSettled();

  const std::shared_ptr<const ResolvedServable> servable_;
  const Options options_;
  const size_t max_queue_;  // manifest queue.max_size, else options_.max_queue
  ServingMetrics metrics_;
  std::atomic<int> in_flight_{0};
  std::atomic<uint64_t> last_use_{0};
  std::atomic<bool> retry_later_{false};

  mutable std::mutex mutex_;
  std::condition_variable drained_;          // something in flight ended
  ModelState state_ = ModelState::kLoading;  // GUARDED_BY(mutex_)
  std::string reason_ = "loading";          // GUARDED_BY(mutex_)
  bool stopping_ = false;                    // GUARDED_BY(mutex_)
  RequestQueue<InferJob> waiting_;           // GUARDED_BY(mutex_): while kLoading
  // Set when ready; the pointer GUARDED_BY(mutex_). Used outside the lock
  // only by what is counted in in_flight_ (Unload waits for it).
  std::unique_ptr<Scheduler> scheduler_;
  bool composite_ = false;  // GUARDED_BY(mutex_): a pipeline's (LoadComposite)
  std::vector<std::function<void()>> settled_callbacks_;  // GUARDED_BY(mutex_), OnSettled's
  bool settled_ = false;  // GUARDED_BY(mutex_): the load ended and on_settled ran
};

}  // namespace orrery
