// Where a job's files live on the hub: <data>/jobs/<id>/
//   output/      what the job produces ($ORRERY_OUTPUT; emptied before each attempt)
//   checkpoint/  kept across attempts ($ORRERY_CHECKPOINT: restored on resume and restart)
//   metrics/metrics.jsonl   the job's JSON lines ($ORRERY_METRICS), kept across attempts
//   log          stdout and stderr of every attempt, in order (bounded per attempt)
//   attempts/<n>/ plan.json, status.json, supervisor.err (attempt_plan.h)
// Directories are 0700: only the hub (and, through the sandbox's binds, the
// job itself) reaches them. No request field ever becomes a path here: the
// id is the job's number.
//
// Thread-safety: pure path arithmetic plus idempotent directory creation.
#pragma once

#include <cstdint>
#include <filesystem>

#include "core/status.h"

namespace orrery {

class JobWorkspace {
 public:
  explicit JobWorkspace(std::filesystem::path jobs_root) : root_(std::move(jobs_root)) {}

  std::filesystem::path JobDir(int64_t id) const { return root_ / std::to_string(id); }
  std::filesystem::path OutputDir(int64_t id) const { return JobDir(id) / "output"; }
  std::filesystem::path CheckpointDir(int64_t id) const { return JobDir(id) / "checkpoint"; }
  std::filesystem::path MetricsDir(int64_t id) const { return JobDir(id) / "metrics"; }
  std::filesystem::path MetricsFile(int64_t id) const { return MetricsDir(id) / "metrics.jsonl"; }
  std::filesystem::path LogPath(int64_t id) const { return JobDir(id) / "log"; }
  std::filesystem::path AttemptDir(int64_t id, int64_t attempt) const {
    return JobDir(id) / "attempts" / std::to_string(attempt);
  }

  // Creates the job's directories for attempt `attempt` and empties its
  // output directory (what an earlier attempt left there is not this
  // attempt's output); the checkpoint and metrics stay.
  Status PrepareAttempt(int64_t id, int64_t attempt) const;

 private:
  std::filesystem::path root_;
};

}  // namespace orrery
