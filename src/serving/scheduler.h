// Scheduler: how the requests of a ready Model reach what computes them.
//
// A Model (model.h) owns a servable version's life cycle: its states, the
// wait for its load, the response cache in front, the drain on unload. Once
// it is loaded it hands every request it accepts to its Scheduler, which
// owns the instances and the queue in front of them, and decides where and
// when each request runs:
//   - direct (instance_scheduler_direct.cc): in-process instances; a request
//     runs on the submitting thread when an instance is idle (no thread hop
//     on the fast path), and the thread that finishes a request takes the
//     next queued one before it returns its instance.
//   - worker (instance_scheduler_worker.cc): instances whose Infer waits on
//     another process get a thread each, so request threads never block on
//     a worker; a request arriving on an event-loop thread (core/reactor.h)
//     while an instance is free is sent at once and the loop waits for the
//     answer (AsyncInfer), sparing two thread hand-offs.
//   - batched (instance_scheduler_batch.cc): a thread per instance joins the
//     compatible queued requests into one backend call (manifest `batching`).
//   - composite (composite_scheduler.cc): a pipeline (pipeline.h) has no
//     instances; each request goes to it whole.
//
// The queue (manifest `queue`): at most max_size requests wait (running ones
// do not count, a batch's first request waiting for it to fill does); one
// more is refused at once (retry_later: 503 + Retry-After). The next to run
// is the oldest of the highest non-empty priority level (request_queue.h).
// A queued request whose deadline passes is failed without running: it never
// reaches an instance (checked when it is taken off the queue, when a batch
// is formed, and before one more is refused for want of room).
//
// The instances' seam is narrow on purpose: an autoscaler adds a loaded
// instance or takes an idle one out, and reads how many serve.
//
// Thread-safety: all methods are safe from any thread. A scheduler calls
// its host without holding any lock of its own.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "serving/infer_job.h"
#include "serving/metrics.h"
#include "serving/request_queue.h"

namespace orrery {

// What a scheduler needs from the Model it serves. Every job a scheduler
// receives was accepted by the model (counted as in flight), and leaves
// through Finish or Expire exactly once.
class SchedulerHost {
 public:
  virtual ~SchedulerHost() = default;
  virtual const std::string& key() const = 0;  // "tenant/name:version"
  virtual const Manifest& manifest() const = 0;
  virtual ServingMetrics& metrics() = 0;
  // Records the job's metrics, calls its done, and ends it in flight.
  virtual void Finish(InferJob& job, InferOutcome outcome) = 0;
  // Fails a job whose deadline passed before it could run.
  virtual void Expire(InferJob& job) = 0;
  // An instance answered kUnavailable: the model checks whether any is left.
  virtual void InstanceFailed() = 0;
};

// A servable served without instances of its own (a pipeline): its Model
// hands it every accepted request. Must be thread-safe.
class Composite {
 public:
  virtual ~Composite() = default;
  // Runs the job; calls job.done exactly once, on any thread.
  virtual void Run(InferJob job) = 0;
  // "" when it can answer, else why not.
  virtual std::string NotReadyReason() const = 0;
};

class Scheduler {
 public:
  virtual ~Scheduler() = default;  // joins its threads, destroys its instances

  // Starts serving: runs or wakes for the requests it was created with.
  // Called once, by the thread that loaded the model.
  virtual void Start() = 0;
  // Runs the job now, queues it, or fails it (queue full); never blocks on
  // the job's computation unless it runs it on this thread.
  virtual void Submit(InferJob job) = 0;
  // The model is unloading: nothing more will be submitted; threads finish
  // what is queued (a forming batch runs at once), then end.
  virtual void Stop() = 0;

  // Requests waiting, per priority level (index 0: level 1).
  virtual std::vector<size_t> QueueLengths() const = 0;
  // True when Submit may run the job on the calling thread before it returns.
  virtual bool RunsOnCaller() const = 0;

  // "" when at least one instance (or the composite) can answer, else why not.
  virtual std::string NotReadyReason() const = 0;
  virtual int ReadyInstances() const = 0;
  // Every instance's worker gave up restarting (false without instances).
  virtual bool AllGaveUp() const = 0;
  virtual uint64_t MemoryBytes() const = 0;
  // Worker restarts per instance; empty when no instance is a worker.
  virtual std::vector<uint64_t> WorkerRestarts() const = 0;

  // The autoscaler's seam. Instances serving now (retiring ones excluded).
  virtual int Instances() const = 0;
  // Serves with one more instance, loaded by the caller. It may run
  // queued requests on it before returning (direct scheduling).
  virtual Status AddInstance(std::unique_ptr<Instance> instance) = 0;
  // Takes one instance out once it is idle, and returns it (the caller
  // destroys it). Never the last one: kConflict.
  virtual Result<std::unique_ptr<Instance>> RemoveInstance() = 0;
};

// How a model with instances schedules them.
enum class SchedulingKind { kDirect, kWorker, kBatched };
// Batched when the manifest batches; else worker unless the backend
// computes on the calling thread.
SchedulingKind SchedulingFor(const Manifest& manifest, bool in_process);

// A scheduler over `instances` (at least one), starting with the requests
// in `waiting` (queued while the model loaded, at their levels); at most
// `max_queue` requests wait.
std::unique_ptr<Scheduler> MakeInstanceScheduler(SchedulingKind kind, SchedulerHost& host,
                                                 std::vector<std::unique_ptr<Instance>> instances,
                                                 RequestQueue<InferJob> waiting,
                                                 size_t max_queue);
// A scheduler that hands each request to `composite`, starting with `waiting`.
std::unique_ptr<Scheduler> MakeCompositeScheduler(SchedulerHost& host,
                                                  std::unique_ptr<Composite> composite,
                                                  RequestQueue<InferJob> waiting);

// Takes every job of `queue` whose deadline has passed, in queue order.
std::vector<InferJob> TakeExpired(RequestQueue<InferJob>& queue);
// The refusal of one request more than `max_queue` waiting (retry later).
Status QueueFull(const std::string& key, size_t max_queue);

// kInvalidArgument when `job` cannot join a batch of a servable batching as
// `batching` says (checked before a request is queued, even while loading).
Status CheckBatchable(const BatchingConfig& batching, const InferJob& job);

}  // namespace orrery
