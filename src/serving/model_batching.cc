// Dynamic batching of a Model (the scheduling is described in model.h).
//
// Each instance has a thread running BatchLoop: it waits for the queue's
// oldest request, then until either a full batch of requests compatible
// with it is queued (max_batch_size rows, or the largest preferred batch
// size when the manifest names some) or max_queue_delay_us has passed since
// it arrived, takes them (oldest first, skipping incompatible ones, which
// wait for a later batch; cut at the largest preferred size that fits, the
// rest going back to the head of the queue), and runs them as one backend
// call.
#include <sys/prctl.h>

#include "core/log.h"
#include "serving/model.h"
#include "tensor/batch.h"

namespace orrery {
namespace {

using Clock = std::chrono::steady_clock;

// Rows of a request: its inputs' shared first dimension (CheckBatchable).
int64_t Rows(const InferJob& job) { return job.inputs.empty() ? 0 : job.inputs[0].shape[0]; }

}  // namespace

Status Model::CheckBatchable(const InferJob& job) const {
  const BatchingConfig& batching = servable_->manifest.batching;
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

int64_t Model::FullBatchRows() const {
  const BatchingConfig& batching = servable_->manifest.batching;
  return batching.preferred_batch_sizes.empty() ? batching.max_batch_size
                                                : batching.preferred_batch_sizes.back();
}

int64_t Model::QueuedRowsLocked() const {
  int64_t rows = 0;
  for (const InferJob& job : queue_) rows += Rows(job);
  return rows;
}

void Model::BatchLoop(Slot* slot) {
  // The queue delay is a bound: without this the kernel may add its default
  // 50 µs of timer slack to every timed wait for a batch to fill.
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  std::unique_lock lock(mutex_);
  while (true) {
    work_.wait(lock, [&] { return !queue_.empty() || stopping_; });
    if (queue_.empty()) return;  // stopping, nothing left
    std::vector<InferJob> jobs = TakeBatch(lock);
    if (jobs.empty()) continue;
    lock.unlock();
    RunBatch(slot, jobs);
    lock.lock();
  }
}

std::vector<InferJob> Model::TakeBatch(std::unique_lock<std::mutex>& lock) {
  const BatchingConfig& batching = servable_->manifest.batching;
  const int64_t max_rows = batching.max_batch_size;
  std::vector<InferJob> jobs;
  InferJob first;
  if (!PopNext(lock, &first)) return jobs;  // only expired requests were queued
  // Rows queued behind `first` that could join it.
  auto compatible_rows = [&] {
    int64_t rows = Rows(first);
    for (const InferJob& job : queue_) {
      if (rows >= max_rows) break;
      if (BatchCompatible(first.inputs, job.inputs)) rows += Rows(job);
    }
    return rows;
  };
  const int64_t full = FullBatchRows();
  Clock::time_point until = first.submitted + std::chrono::microseconds(batching.max_queue_delay_us);
  while (!stopping_ && compatible_rows() < full && Clock::now() < until) {
    work_.wait_until(lock, until);
  }
  int64_t rows = Rows(first);
  jobs.push_back(std::move(first));
  for (auto it = queue_.begin(); it != queue_.end() && rows < max_rows;) {
    if (BatchCompatible(jobs.front().inputs, it->inputs) && rows + Rows(*it) <= max_rows &&
        Clock::now() < it->deadline) {
      rows += Rows(*it);
      jobs.push_back(std::move(*it));
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  CutToPreferredSize(jobs, rows);
  return jobs;
}

// Gives back the newest requests of a batch until its rows are at most the
// largest preferred size that fits (none fits: the batch stays as it is).
void Model::CutToPreferredSize(std::vector<InferJob>& jobs, int64_t rows) {
  const std::vector<uint32_t>& preferred = servable_->manifest.batching.preferred_batch_sizes;
  int64_t target = 0;
  for (uint32_t size : preferred) {
    if (size <= rows) target = size;
  }
  if (target == 0 || target == rows) return;
  while (jobs.size() > 1 && rows > target) {
    rows -= Rows(jobs.back());
    queue_.push_front(std::move(jobs.back()));
    jobs.pop_back();
  }
}

void Model::RunBatch(Slot* slot, std::vector<InferJob>& jobs) {
  auto start = Clock::now();
  std::vector<const std::vector<Tensor>*> inputs;
  std::vector<int64_t> rows;
  Deadline deadline = Deadline::max();
  int64_t total = 0;
  for (const InferJob& job : jobs) {
    metrics_.queue.Observe(start - job.submitted);
    inputs.push_back(&job.inputs);
    rows.push_back(Rows(job));
    total += Rows(job);
    deadline = std::min(deadline, job.deadline);
  }
  metrics_.batch_sizes.Observe(static_cast<uint64_t>(total));
  if (jobs.size() == 1) {
    return Settle(jobs[0], start, slot->instance->Infer(jobs[0].inputs, jobs[0].deadline));
  }
  Result<std::vector<Tensor>> batch = ConcatBatch(inputs);
  Result<std::vector<Tensor>> outputs =
      batch.ok() ? slot->instance->Infer(*batch, deadline) : batch.status();
  Result<std::vector<std::vector<Tensor>>> split =
      outputs.ok() ? SplitBatch(*outputs, rows) : outputs.status();
  for (size_t i = 0; i < jobs.size(); ++i) {
    Settle(jobs[i], start, split.ok() ? Result<std::vector<Tensor>>(std::move((*split)[i]))
                                      : Result<std::vector<Tensor>>(split.status()));
  }
}

}  // namespace orrery
