// Model: one servable version inside the model manager — its state
// machine, its instances, its bounded request queue and its metrics.
//
// States: kLoading -> kReady | kFailed; kReady -> kUnloading -> kUnloaded.
// A model that is still loading queues requests (up to max_queue) and runs
// them once ready; a failed one refuses them with the reason.
//
// Scheduling: an instance runs one request at a time. In-process backends
// run on the submitting thread when an instance is idle (no thread hop on
// the fast path); the thread that finishes a request takes the next queued
// one before it returns its instance. Worker backends (whose Infer waits on
// another process) get one thread per instance, so request threads never
// block on a worker. A worker instance that is free when a request arrives
// on an event-loop thread (core/reactor.h) is used without its thread: the
// request is sent at once and the loop waits for the answer (AsyncInfer),
// which spares two thread hand-offs per request; queued requests, large
// ones and those from other threads go through the instance's thread.
// A queued request whose deadline passes is failed without running: it
// is never handed to an instance (checked on submit, when it is taken off
// the queue, and when a batch is formed).
//
// Queue (manifest `queue`): at most max_size requests wait (running ones do
// not count, a batch's first request waiting for it to fill does; absent:
// Options::max_queue); one more is refused at once
// (retry_later: 503 + Retry-After). With priority_levels > 0 a request
// names a level 1 (highest) .. priority_levels, or 0 for the servable's
// default; the next request to run is the oldest of the highest non-empty
// level (request_queue.h, model_queue.cc).
//
// Batched servables (manifest `batching`, max_batch_size > 0) run every
// request through a batching thread per instance (model_batching.cc): it
// takes the next request (as above) and the compatible ones queued behind
// it, highest priority first, up to max_batch_size rows, waiting at most
// max_queue_delay_us after the oldest request of that batch arrived for
// more to come; one backend call runs the concatenated batch and its
// outputs are split back. A batch holds requests of one servable
// version only (a Model is one version).
//
// Memoized servables (manifest `cache: true`, and a manager whose response
// cache is enabled) look each request up in the shared ResponseCache first
// (model_cache.cc): a hit is answered at once on the submitting thread, with
// InferOutcome::cache_hit set, without queueing or touching an instance; a
// miss runs as usual and its successful answer is stored. Errors, timeouts
// and answers that do not match the signature are never stored.
// Composite servables (pipelines, serving/pipeline.h) have no instances: the
// manager gives their model a Composite instead of loading a backend, and
// the model hands it each accepted request whole, keeping the request
// metrics, the life cycle and the wait for requests in flight on unload.
//
// Ownership: the manager and every request in flight share a Model
// (shared_ptr): the handle that keeps the version loaded. Unload() waits for
// queued and running requests to finish before it destroys the instances.
// Thread-safety: all methods are safe from any thread; Load() and
// Unload() are called by the manager's load threads only.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backends/backend.h"
#include "repository/repository.h"
#include "serving/metrics.h"
#include "serving/request_queue.h"

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

struct InferOutcome {
  Status status;
  std::vector<Tensor> outputs;  // signature order, when status is OK
  bool retry_later = false;     // refused because the queue is full (503 + Retry-After)
  bool cache_hit = false;       // answered from the response cache, nothing ran
  // When an instance ran the job: submit -> start, and start -> end of compute.
  std::chrono::nanoseconds queued{0}, computed{0};
  // Response parameters to add to the answer (an object), or null.
  nlohmann::json parameters = nullptr;
};

// The level a request asking for `priority` runs at on a servable with
// `queue`. As in Triton, 0 and a level the servable does not have (above its
// priority_levels, or any when it has none) mean its default level;
// kInvalidArgument only for a negative priority.
Result<uint32_t> PriorityLevel(const QueueConfig& queue, int64_t priority);

struct InferJob {
  std::vector<Tensor> inputs;  // signature order, checked by BindInputs
  Deadline deadline;
  // 1 (highest) .. the servable's priority_levels; 0: its default level.
  uint32_t priority = 0;
  std::chrono::steady_clock::time_point submitted = std::chrono::steady_clock::now();
  bool report_timings = false;  // the request asked for per-step timings (pipelines)
  // The inferences it counts when it succeeds (Triton's inference_count): the
  // rows of its batch on a batched servable, else 1.
  int64_t rows = 1;
  // Called exactly once, on whichever thread finished the job.
  std::function<void(InferOutcome)> done;
};

// A servable served without instances of its own (a pipeline): its Model
// hands it every accepted request. Owned by the Model; must be thread-safe.
class Composite {
 public:
  virtual ~Composite() = default;
  // Runs the job; calls job.done exactly once, on any thread.
  virtual void Run(InferJob job) = 0;
  // "" when it can answer, else why not.
  virtual std::string NotReadyReason() const = 0;
};

class Model {
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
  const std::string& key() const { return servable_->key; }
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
  // Runs queued requests once ready (or fails them).
  void Load(Backend& backend, const LoadContext& context);
  // Instead of Load, for a composite servable: moves to kReady serving
  // through `composite`, or to kFailed with its error. Starts no threads.
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
  ServingMetrics& metrics() { return metrics_; }
  const ServingMetrics& metrics() const { return metrics_; }

 private:
  struct Slot {
    std::unique_ptr<Instance> instance;
    bool busy = false;  // GUARDED_BY(mutex_); worker backends: a request is using it
  };

  // Response cache (model_cache.cc): true when `job` was answered from the
  // cache (and finished); on a miss, wraps job.done to store the answer.
  bool AnswerFromCache(InferJob& job);
  void RunAndDrain(Slot* slot, InferJob job);
  void Execute(Slot* slot, InferJob& job);
  // The free worker slot for a request that can be sent from this thread
  // without a thread hop, or nullptr. REQUIRES(mutex_).
  Slot* AsyncSlotLocked(const InferJob& job, class Reactor** reactor);
  void ExecuteAsync(Slot* slot, InferJob job, class Reactor& reactor);
  // Records the compute time and finishes the job with the outputs or error.
  // `start`: when an instance took it; `compute`: the backend's time.
  void Settle(InferJob& job, std::chrono::steady_clock::time_point start,
              std::chrono::nanoseconds compute, Result<std::vector<Tensor>> outputs);
  // Pops the next job whose deadline has not passed; fails expired ones.
  // REQUIRES(mutex_) held by `lock`, which it may release and retake.
  bool PopNext(std::unique_lock<std::mutex>& lock, InferJob* job);
  // The queue level of `job`, whose priority Submit checked.
  uint32_t LevelOf(const InferJob& job) const {
    return job.priority != 0 ? job.priority : default_level_;
  }
  // Fails a job whose deadline passed before it could run.
  void Expire(InferJob& job, bool accepted);
  // Takes every queued job whose deadline has passed. REQUIRES(mutex_).
  std::vector<InferJob> TakeExpiredLocked();
  void WorkerLoop(Slot* slot);
  // Batched servables (model_batching.cc).
  void BatchLoop(Slot* slot);
  // Takes the next batch off the queue (waiting up to the delay for it to
  // fill); empty when only expired requests were queued. REQUIRES(mutex_)
  // held by `lock`, which it releases while it waits.
  std::vector<InferJob> TakeBatch(std::unique_lock<std::mutex>& lock);
  // Waits until the batch forming behind `first` is full, its delay bound
  // has passed, `first`'s deadline has passed, or the model stops.
  // REQUIRES(mutex_) held by `lock`, which it releases while it waits.
  void WaitToFill(std::unique_lock<std::mutex>& lock, const InferJob& first);
  // Moves the requests that join `jobs` (holding the batch's first) into it
  // and the expired ones it meets into the result; returns the batch's rows
  // in `*rows`. REQUIRES(mutex_).
  std::vector<InferJob> CollectBatchLocked(std::vector<InferJob>& jobs, int64_t* rows);
  void RunBatch(Slot* slot, std::vector<InferJob>& jobs);
  // REQUIRES(mutex_).
  void CutToPreferredSize(std::vector<InferJob>& jobs, int64_t rows);
  // kInvalidArgument when `job` cannot be batched (see Submit).
  Status CheckBatchable(const InferJob& job) const;
  // Rows that make a batch worth running at once: max_batch_size, or the
  // largest preferred batch size.
  int64_t FullBatchRows() const;
  int64_t QueuedRowsLocked() const;  // REQUIRES(mutex_)
  // Calls job.done; `accepted`: the job was counted in in_flight_.
  void Finish(InferJob& job, InferOutcome outcome, bool accepted);
  // kLoading -> kFailed: fails the queued jobs (with retry_later when
  // `retry_later`). `lock` holds mutex_; released.
  void FailLoad(std::unique_lock<std::mutex>& lock, const Status& status, bool retry_later = false);
  // Hands an accepted job (counted in in_flight_) to `composite`.
  void RunComposite(Composite& composite, InferJob job);
  void CheckInstancesAlive();
  Status WarmUp();

  const std::shared_ptr<const ResolvedServable> servable_;
  const Options options_;
  const size_t max_queue_;       // manifest queue.max_size, else options_.max_queue
  const uint32_t default_level_;  // manifest queue.DefaultLevel()
  ServingMetrics metrics_;
  std::atomic<int> in_flight_{0};
  std::atomic<uint64_t> last_use_{0};
  std::atomic<bool> retry_later_{false};

  mutable std::mutex mutex_;
  std::condition_variable work_;     // a job was queued, or stopping
  std::condition_variable drained_;  // a job finished
  ModelState state_ = ModelState::kLoading;  // GUARDED_BY(mutex_)
  std::string reason_ = "loading";          // GUARDED_BY(mutex_)
  bool stopping_ = false;                    // GUARDED_BY(mutex_)
  RequestQueue<InferJob> queue_;             // GUARDED_BY(mutex_)
  size_t forming_ = 0;  // GUARDED_BY(mutex_): requests a batch waits to fill behind
  std::vector<Slot*> idle_;                  // GUARDED_BY(mutex_), in-process only
  std::vector<std::unique_ptr<Slot>> slots_;  // written by Load/Unload only
  std::vector<std::thread> threads_;         // worker backends: one per slot
  bool worker_backed_ = false;               // GUARDED_BY(mutex_): instances are workers
  const bool batched_;                       // the manifest enables batching
  std::unique_ptr<Composite> composite_;     // GUARDED_BY(mutex_); set by LoadComposite
  std::vector<std::function<void()>> settled_callbacks_;  // GUARDED_BY(mutex_), OnSettled's
  bool settled_ = false;  // GUARDED_BY(mutex_): the load ended and on_settled ran
  void RunSettled();
};

}  // namespace orrery
