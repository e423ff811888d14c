// The `queue` section of a servable's manifest (QueueConfig in manifest.h):
// how many requests may wait, priority levels and the servable's timeout.
// Ranges: a queue of 65536 requests or a timeout of an hour is already far
// beyond what an interactive servable should hold; 16 levels is Triton's
// usual ceiling in practice and keeps the per-level queues cheap to scan.
#include <algorithm>

#include "repository/manifest_internal.h"

namespace orrery {

uint32_t QueueConfig::DefaultLevel() const {
  if (priority_levels == 0) return 1;
  if (default_priority_level == 0) return priority_levels;
  return std::min(default_priority_level, priority_levels);
}

namespace manifest_internal {

constexpr int64_t kMaxQueueSize = 65536;
constexpr int64_t kMaxPriorityLevels = 16;
constexpr int64_t kMaxTimeoutUs = 3'600'000'000;  // one hour

Status ParseQueue(const FieldMap& top, Manifest& manifest) {
  auto node = top.Get("queue");
  if (!node) return Status::Ok();
  ASSIGN_OR_RETURN(auto map, FieldMap::Open(*node, "queue",
                                            {"max_size", "priority_levels",
                                             "default_priority_level", "default_timeout_us"}));
  QueueConfig& queue = manifest.queue;
  ASSIGN_OR_RETURN(int64_t max_size, IntegerIn(map, "max_size", 1, kMaxQueueSize, 0));
  queue.max_size = static_cast<uint32_t>(max_size);
  ASSIGN_OR_RETURN(int64_t levels, IntegerIn(map, "priority_levels", 0, kMaxPriorityLevels, 0));
  queue.priority_levels = static_cast<uint32_t>(levels);
  if (map.Get("default_priority_level")) {
    if (levels == 0) {
      return FieldError(map.Path("default_priority_level"),
                        "only allowed when priority_levels > 0");
    }
    ASSIGN_OR_RETURN(int64_t level, IntegerIn(map, "default_priority_level", 1, levels, 0));
    queue.default_priority_level = static_cast<uint32_t>(level);
  }
  ASSIGN_OR_RETURN(int64_t timeout, IntegerIn(map, "default_timeout_us", 1, kMaxTimeoutUs, 0));
  queue.default_timeout_us = static_cast<uint64_t>(timeout);
  // A pipeline hands each request to its steps at once; they wait in their
  // own servables' queues, so only its timeout means something.
  if (manifest.backend == "pipeline") {
    for (const char* key : {"max_size", "priority_levels", "default_priority_level"}) {
      if (map.Get(key)) {
        return FieldError(map.Path(key),
                          "a pipeline has no queue of its own (each step waits in its servable's "
                          "queue); only default_timeout_us applies");
      }
    }
  }
  return Status::Ok();
}

}  // namespace manifest_internal
}  // namespace orrery
