// InferJob: one accepted inference request on its way through a Model
// (model.h) and its Scheduler (scheduler.h), and InferOutcome, its answer.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "backends/backend.h"
#include "core/status.h"
#include "repository/manifest.h"
#include "tensor/tensor.h"

namespace orrery {

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
  // Model::Submit replaces it with the level it waits at (PriorityLevel).
  uint32_t priority = 0;
  std::chrono::steady_clock::time_point submitted = std::chrono::steady_clock::now();
  bool report_timings = false;  // the request asked for per-step timings (pipelines)
  // The inferences it counts when it succeeds (Triton's inference_count): the
  // rows of its batch on a batched servable, else 1.
  int64_t rows = 1;
  // Called exactly once, on whichever thread finished the job.
  std::function<void(InferOutcome)> done;
};

}  // namespace orrery
