// The schedulers of models with instances (scheduler.h). InstanceScheduler
// holds what the three kinds share: the instances ("slots"), the bounded
// queue in front of them, running a job on an instance, expiry, and the
// autoscaler's seam. Each kind decides how a request reaches a slot:
//   DirectScheduler (instance_scheduler_direct.cc)  on the submitting thread
//   WorkerScheduler (instance_scheduler_worker.cc)  a thread per slot, or an event loop
//   BatchScheduler  (instance_scheduler_batch.cc)   a thread per slot, batching
//
// The invariant that keeps it simple: a Slot is owned by exactly one party
// at a time — the idle list or the thread running a job on it (direct); its
// own thread, or the event loop that set its `busy` flag (worker); its own
// thread (batched). A slot is taken out (RemoveInstance) only once its owner
// has let it go.
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>

#include "serving/scheduler.h"

namespace orrery {

class InstanceScheduler : public Scheduler {
 public:
  InstanceScheduler(SchedulerHost& host, std::vector<std::unique_ptr<Instance>> instances,
                    RequestQueue<InferJob> waiting, size_t max_queue);
  // Subclasses with threads call JoinThreads() in their own destructor.
  ~InstanceScheduler() override = default;

  void Start() override;
  void Submit(InferJob job) override;
  void Stop() override;
  std::vector<size_t> QueueLengths() const override;
  bool RunsOnCaller() const override { return false; }
  std::string NotReadyReason() const override;
  int ReadyInstances() const override;
  bool AllGaveUp() const override;
  uint64_t MemoryBytes() const override;
  std::vector<uint64_t> WorkerRestarts() const override;
  int Instances() const override;
  Status AddInstance(std::unique_ptr<Instance> instance) override;
  Result<std::unique_ptr<Instance>> RemoveInstance() override;

 protected:
  struct Slot {
    std::unique_ptr<Instance> instance;
    bool busy = false;      // GUARDED_BY(mutex_); worker: a request is using it
    bool retiring = false;  // GUARDED_BY(mutex_): RemoveInstance is taking it out
    std::thread thread;     // the slot's own thread (worker, batched)
  };

  // --- What each kind decides.
  // Runs `job` at once when a slot is free for it: releases `lock` and
  // returns true. REQUIRES(mutex_) held by `lock`.
  virtual bool RunNowLocked(std::unique_lock<std::mutex>& lock, InferJob& job) = 0;
  // Whether a request just queued needs the threads woken. REQUIRES(mutex_).
  virtual bool WakeForQueuedLocked() const { return true; }
  // Puts a new slot to work (Start, AddInstance), without the lock.
  virtual void Serve(Slot* slot) = 0;
  // Picks a slot to take out and waits until no one uses it; nullptr when
  // the scheduler stops meanwhile. REQUIRES(mutex_) held by `lock`, at
  // least two slots serving. Default (threaded kinds): the last serving
  // slot, once its thread has ended.
  virtual Slot* RetireLocked(std::unique_lock<std::mutex>& lock);
  // Instances are worker processes whose restarts are reported.
  virtual bool ReportsRestarts() const { return true; }

  // --- Shared by the kinds.
  // Pops the next job whose deadline has not passed; fails expired ones.
  // REQUIRES(mutex_) held by `lock`, which it may release and retake.
  bool PopNext(std::unique_lock<std::mutex>& lock, InferJob* job);
  // Runs `job` on `slot` on this thread and finishes it.
  void Execute(Slot* slot, InferJob& job);
  // Records the compute time and finishes the job with the outputs or error.
  // `start`: when an instance took it; `compute`: the backend's time.
  void Settle(InferJob& job, std::chrono::steady_clock::time_point start,
              std::chrono::nanoseconds compute, Result<std::vector<Tensor>> outputs);
  // Starts the slot's own thread running `body`. REQUIRES(mutex_) not held.
  void StartThread(Slot* slot, std::function<void()> body);
  // Waits for the slot's thread to end. REQUIRES(mutex_) held by `lock`,
  // released while it waits.
  void JoinLocked(std::unique_lock<std::mutex>& lock, Slot* slot);
  // Joins every slot's thread (destructors of threaded kinds).
  void JoinThreads();
  int ServingLocked() const;  // slots not retiring; REQUIRES(mutex_)

  SchedulerHost& host_;
  const size_t max_queue_;
  mutable std::mutex mutex_;
  std::condition_variable work_;  // a job was queued, a slot freed, or stopping
  bool stopping_ = false;                     // GUARDED_BY(mutex_)
  RequestQueue<InferJob> queue_;              // GUARDED_BY(mutex_)
  size_t forming_ = 0;  // GUARDED_BY(mutex_): requests a batch waits to fill behind
  std::vector<std::unique_ptr<Slot>> slots_;  // GUARDED_BY(mutex_)
};

// In-process instances: the submitting thread runs the request.
class DirectScheduler final : public InstanceScheduler {
 public:
  using InstanceScheduler::InstanceScheduler;
  bool RunsOnCaller() const override { return true; }
  void Stop() override;

 private:
  bool RunNowLocked(std::unique_lock<std::mutex>& lock, InferJob& job) override;
  void Serve(Slot* slot) override;
  Slot* RetireLocked(std::unique_lock<std::mutex>& lock) override;
  bool ReportsRestarts() const override { return false; }
  // Runs `job`, then every queued one, on `slot`; then the slot goes idle.
  void RunAndDrain(Slot* slot, InferJob job);

  std::vector<Slot*> idle_;  // GUARDED_BY(mutex_)
  std::condition_variable slot_idle_;  // a slot went idle while one is being retired
  int retiring_ = 0;                   // GUARDED_BY(mutex_): RemoveInstance calls waiting
};

// Worker-process instances: a thread per slot, or the event loop a request
// arrives on when a slot is free (AsyncInfer).
class WorkerScheduler final : public InstanceScheduler {
 public:
  using InstanceScheduler::InstanceScheduler;
  ~WorkerScheduler() override { JoinThreads(); }

 private:
  bool RunNowLocked(std::unique_lock<std::mutex>& lock, InferJob& job) override;
  void Serve(Slot* slot) override;
  void Loop(Slot* slot);
  // Sends `job` from the event loop `reactor` and settles it when its
  // answer arrives there.
  void ExecuteAsync(Slot* slot, InferJob job, class Reactor& reactor);
};

// Batched servables (manifest `batching`): a thread per slot joins
// compatible queued requests into one backend call.
class BatchScheduler final : public InstanceScheduler {
 public:
  using InstanceScheduler::InstanceScheduler;
  ~BatchScheduler() override { JoinThreads(); }

 private:
  bool RunNowLocked(std::unique_lock<std::mutex>&, InferJob&) override { return false; }
  bool WakeForQueuedLocked() const override;
  void Serve(Slot* slot) override;
  void Loop(Slot* slot);
  // Takes the next batch off the queue (waiting up to the delay for it to
  // fill); empty when only expired requests were queued. REQUIRES(mutex_)
  // held by `lock`, which it releases while it waits.
  std::vector<InferJob> TakeBatch(std::unique_lock<std::mutex>& lock);
  // Waits until the batch forming behind `first` is full, its delay bound
  // has passed, `first`'s deadline has passed, or the scheduler stops.
  // REQUIRES(mutex_) held by `lock`, which it releases while it waits.
  void WaitToFill(std::unique_lock<std::mutex>& lock, const InferJob& first);
  // Moves the requests that join `jobs` (holding the batch's first) into it
  // and the expired ones it meets into the result; returns the batch's rows
  // in `*rows`. REQUIRES(mutex_).
  std::vector<InferJob> CollectBatchLocked(std::vector<InferJob>& jobs, int64_t* rows);
  // REQUIRES(mutex_).
  void CutToPreferredSize(std::vector<InferJob>& jobs, int64_t rows);
  void RunBatch(Slot* slot, std::vector<InferJob>& jobs);
  // Rows that make a batch worth running at once: max_batch_size, or the
  // largest preferred batch size.
  int64_t FullBatchRows() const;
  int64_t QueuedRowsLocked() const;  // REQUIRES(mutex_)
};

}  // namespace orrery
