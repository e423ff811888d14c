// BatchScheduler (instance_scheduler.h): dynamic batching.
//
// Each instance has a thread running Loop: it waits for a request,
// takes the next one (the oldest of the highest priority level), then waits
// until either a full batch of requests compatible with it is queued
// (max_batch_size rows, or the largest preferred batch size when the
// manifest names some) or max_queue_delay_us has passed since the oldest
// request of that batch arrived, takes them (highest level first, oldest
// first within a level, skipping incompatible ones, which wait for a later
// batch, and failing expired ones; cut at the largest preferred size that
// fits, the rest going back to the head of their levels), and runs them as
// one backend call.
#include <sys/prctl.h>

#include "serving/instance_scheduler.h"
#include "tensor/batch.h"

namespace orrery {
namespace {

using Clock = std::chrono::steady_clock;

// Rows of a request: its inputs' shared first dimension (CheckBatchable).
int64_t Rows(const InferJob& job) { return job.inputs.empty() ? 0 : job.inputs[0].shape[0]; }

}  // namespace

Status CheckBatchable(const BatchingConfig& batching, const InferJob& job) {
  if (job.inputs.empty()) return InvalidArgument("a batched servable needs at least one input");
  for (const Tensor& input : job.inputs) {
    if (input.shape.empty()) {
      return InvalidArgument("input '" + input.name + "' has no batch dimension");
    }
    if (input.shape[0] != Rows(job)) {
      return InvalidArgument("inputs disagree on the batch dimension: '" + job.inputs[0].name +
                             "' has " + std::to_string(Rows(job)) + " rows, '" + input.name +
                             "' " + std::to_string(input.shape[0]));
    }
  }
  if (Rows(job) > batching.max_batch_size) {
    return InvalidArgument("the request's batch of " + std::to_string(Rows(job)) +
                           " rows is over the servable's max_batch_size " +
                           std::to_string(batching.max_batch_size));
  }
  return Status::Ok();
}

int64_t BatchScheduler::FullBatchRows() const {
  const BatchingConfig& batching = host_.manifest().batching;
  return batching.preferred_batch_sizes.empty() ? batching.max_batch_size
                                                : batching.preferred_batch_sizes.back();
}

int64_t BatchScheduler::QueuedRowsLocked() const {
  int64_t rows = 0;
  queue_.ForEach([&rows](const InferJob& job) {
    rows += Rows(job);
    return true;
  });
  return rows;
}

// A batching thread waits for its batch to fill or its delay to pass; it
// needs waking only for a first request or a full batch. Waking it per
// request would make it preempt the event loop for nothing.
bool BatchScheduler::WakeForQueuedLocked() const {
  return queue_.size() == 1 || QueuedRowsLocked() >= FullBatchRows();
}

void BatchScheduler::Serve(Slot* slot) {
  StartThread(slot, [this, slot] { Loop(slot); });
  work_.notify_all();
}

void BatchScheduler::Loop(Slot* slot) {
  // The queue delay is a bound: without this the kernel may add its default
  // 50 µs of timer slack to every timed wait for a batch to fill.
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  std::unique_lock lock(mutex_);
  while (true) {
    work_.wait(lock, [&] { return !queue_.empty() || stopping_ || slot->retiring; });
    if (slot->retiring || queue_.empty()) return;  // retiring, or stopping with nothing left
    std::vector<InferJob> jobs = TakeBatch(lock);
    if (jobs.empty()) continue;
    lock.unlock();
    RunBatch(slot, jobs);
    lock.lock();
  }
}

std::vector<InferJob> BatchScheduler::TakeBatch(std::unique_lock<std::mutex>& lock) {
  std::vector<InferJob> jobs;
  InferJob first;
  if (!PopNext(lock, &first)) return jobs;  // only expired requests were queued
  ++forming_;  // it still waits, out of the queue: it counts towards the bound
  WaitToFill(lock, first);
  --forming_;
  if (Clock::now() >= first.deadline) {  // it ran out while the batch formed
    lock.unlock();
    host_.Expire(first);
    lock.lock();
    return jobs;
  }
  jobs.push_back(std::move(first));
  int64_t rows = 0;
  std::vector<InferJob> expired = CollectBatchLocked(jobs, &rows);
  CutToPreferredSize(jobs, rows);
  if (!expired.empty()) {
    lock.unlock();
    for (InferJob& job : expired) host_.Expire(job);
    lock.lock();
  }
  return jobs;
}

// The batch forming behind `first` is the compatible requests in queue
// order (highest priority first) up to max_batch_size rows; the one that
// would go past it counts too, so that enough waiting rows make the batch
// full. Its delay bound runs from the oldest of them, which may be an older
// request of a lower level.
void BatchScheduler::WaitToFill(std::unique_lock<std::mutex>& lock, const InferJob& first) {
  const BatchingConfig& batching = host_.manifest().batching;
  const int64_t max_rows = batching.max_batch_size;
  const int64_t full = FullBatchRows();
  const auto delay = std::chrono::microseconds(batching.max_queue_delay_us);
  while (!stopping_) {
    int64_t rows = Rows(first);
    Clock::time_point oldest = first.submitted;
    queue_.ForEach([&](const InferJob& job) {
      if (rows >= max_rows) return false;
      if (BatchCompatible(first.inputs, job.inputs)) {
        rows += Rows(job);
        oldest = std::min(oldest, job.submitted);
      }
      return true;
    });
    Clock::time_point until = std::min(oldest + delay, first.deadline);
    if (rows >= full || Clock::now() >= until) return;
    work_.wait_until(lock, until);
  }
}

std::vector<InferJob> BatchScheduler::CollectBatchLocked(std::vector<InferJob>& jobs, int64_t* rows) {
  using Visit = RequestQueue<InferJob>::Visit;
  const int64_t max_rows = host_.manifest().batching.max_batch_size;
  const auto now = Clock::now();
  *rows = Rows(jobs.front());
  std::vector<InferJob> taken;
  queue_.Extract(
      [&](const InferJob& job) {
        if (*rows >= max_rows) return Visit::kStop;
        if (now >= job.deadline) return Visit::kTake;  // expired: failed, never run
        if (!BatchCompatible(jobs.front().inputs, job.inputs) || *rows + Rows(job) > max_rows) {
          return Visit::kSkip;
        }
        *rows += Rows(job);
        return Visit::kTake;
      },
      taken);
  std::vector<InferJob> expired;
  for (InferJob& job : taken) (now >= job.deadline ? expired : jobs).push_back(std::move(job));
  return expired;
}

// Gives back the newest requests of a batch until its rows are at most the
// largest preferred size that fits (none fits: the batch stays as it is).
// The batch is in queue order, so each goes back to the head of its level
// in its old place.
void BatchScheduler::CutToPreferredSize(std::vector<InferJob>& jobs, int64_t rows) {
  const std::vector<uint32_t>& preferred = host_.manifest().batching.preferred_batch_sizes;
  int64_t target = 0;
  for (uint32_t size : preferred) {
    if (size <= rows) target = size;
  }
  if (target == 0 || target == rows) return;
  while (jobs.size() > 1 && rows > target) {
    rows -= Rows(jobs.back());
    queue_.PushFront(jobs.back().priority, std::move(jobs.back()));
    jobs.pop_back();
  }
}

void BatchScheduler::RunBatch(Slot* slot, std::vector<InferJob>& jobs) {
  auto start = Clock::now();
  std::vector<const std::vector<Tensor>*> inputs;
  std::vector<int64_t> rows;
  Deadline deadline = Deadline::max();
  int64_t total = 0;
  for (const InferJob& job : jobs) {
    host_.metrics().queue.Observe(start - job.submitted);
    inputs.push_back(&job.inputs);
    rows.push_back(Rows(job));
    total += Rows(job);
    deadline = std::min(deadline, job.deadline);
  }
  host_.metrics().batch_sizes.Observe(static_cast<uint64_t>(total));
  if (jobs.size() == 1) {
    Result<std::vector<Tensor>> outputs = slot->instance->Infer(jobs[0].inputs, jobs[0].deadline);
    auto compute = Clock::now() - start;
    host_.metrics().batch_stats.Observe(static_cast<uint64_t>(total), compute);
    return Settle(jobs[0], start, compute, std::move(outputs));
  }
  Result<std::vector<Tensor>> batch = ConcatBatch(inputs);
  auto joined = Clock::now();
  Result<std::vector<Tensor>> outputs =
      batch.ok() ? slot->instance->Infer(*batch, deadline) : batch.status();
  auto computed = Clock::now();
  Result<std::vector<std::vector<Tensor>>> split =
      outputs.ok() ? SplitBatch(*outputs, rows) : outputs.status();
  auto split_time = Clock::now() - computed;
  host_.metrics().batch_stats.Observe(static_cast<uint64_t>(total), computed - joined);
  for (size_t i = 0; i < jobs.size(); ++i) {
    host_.metrics().compute_input.Add(joined - start);
    host_.metrics().compute_output.Add(split_time);
    Settle(jobs[i], start, computed - joined,
           split.ok() ? Result<std::vector<Tensor>>(std::move((*split)[i]))
                      : Result<std::vector<Tensor>>(split.status()));
  }
}

}  // namespace orrery
