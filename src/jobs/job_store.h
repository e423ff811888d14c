// JobStore: the durable record of training jobs (<data>/jobs.db, SQLite,
// WAL, synchronous=FULL): each job's spec, state and reason, every state
// change with its time (the job's history, which is also its audit trail:
// who asked for what), and its attempts (one per run of the command, with
// the executor's handle that finds it again after a server restart).
//
// State changes are compare-and-set: Transition() moves a job only from one
// of the states the caller expects, in one transaction with its history
// row, so that two threads (the monitor seeing an exit, a user's cancel)
// cannot both move it.
//
// Thread-safety: all methods are safe to call concurrently (one connection,
// one mutex: jobs change a few times a second at most).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "storage/database.h"

namespace orrery {

enum class JobState {
  kQueued,
  kStarting,
  kRunning,
  kCompleted,
  kFailed,
  kCancelled,
  kHalting,
  kHalted,
};
const char* JobStateName(JobState state);  // "QUEUED", ...
Result<JobState> ParseJobState(std::string_view text);
// COMPLETED, FAILED, CANCELLED: nothing moves the job again.
bool IsFinal(JobState state);
// STARTING, RUNNING, HALTING: an attempt holds resources.
bool HoldsResources(JobState state);

struct JobRow {
  int64_t id = 0;
  int64_t tenant_id = 0;
  std::string tenant;
  std::string name;
  nlohmann::json spec;       // JobSpec::ToJson() with inputs resolved to versions
  nlohmann::json resolved;   // the code and inputs' digests: {"code": ..., "inputs": {...}}
  std::string code_digest;   // the file set the job runs
  JobState state = JobState::kQueued;
  std::string reason;
  int64_t submitted_by = 0;  // token id
  int64_t submitted_at_ms = 0;
  int64_t updated_at_ms = 0;
  int64_t attempts = 0;      // attempts started so far
  int64_t restarts = 0;      // of them, restarts after a fault
  std::optional<int64_t> rerun_of;
  std::string published;     // "tenant/name:N" once published
};

struct JobEvent {
  int64_t at_ms = 0;
  JobState state = JobState::kQueued;
  std::string reason;
  int64_t attempt = 0;
};

struct JobAttempt {
  int64_t number = 0;
  std::string executor;  // "local" | "slurm"
  std::string handle;    // the executor's: "pid:starttime", a Slurm job id
  int64_t started_at_ms = 0;
  std::optional<int64_t> ended_at_ms;
  std::string outcome;   // how it ended, "" while running
};

class JobStore {
 public:
  static Result<std::unique_ptr<JobStore>> Open(const std::filesystem::path& path);

  // Inserts a QUEUED job (history: "submitted"); returns its id.
  Result<int64_t> Insert(const JobRow& job, int64_t now_ms);
  // kNotFound when there is no such job (tenant checks are the caller's).
  Result<JobRow> Get(int64_t id);
  // Newest first; `tenant_id` 0 = every tenant; `states` empty = any.
  Result<std::vector<JobRow>> List(int64_t tenant_id, const std::vector<JobState>& states,
                                   int64_t limit);
  Result<std::vector<JobEvent>> History(int64_t id);
  Result<std::vector<JobAttempt>> Attempts(int64_t id);

  // Moves job `id` to `to` with `reason` when its state is one of `from`;
  // false (nothing written) when it is not. `attempt` is recorded in the
  // history (0: the job's current attempt count).
  Result<bool> Transition(int64_t id, const std::vector<JobState>& from, JobState to,
                          const std::string& reason, int64_t now_ms);
  // STARTING: the next attempt's number (attempts + 1, and restarts + 1
  // when `restart`), recorded before the executor starts it.
  Result<int64_t> BeginAttempt(int64_t id, const std::string& executor, bool restart,
                               int64_t now_ms);
  Status SetAttemptHandle(int64_t id, int64_t number, const std::string& handle);
  Status EndAttempt(int64_t id, int64_t number, const std::string& outcome, int64_t now_ms);
  Status SetPublished(int64_t id, const std::string& published);

  // A tenant's limits as the hub admin set them (JSON of TenantLimits'
  // fields); nullopt when none are set (the hub's defaults apply).
  Result<std::optional<nlohmann::json>> Limits(int64_t tenant_id);
  // Sets (or with a null `limits`, clears) a tenant's limits.
  Status SetLimits(int64_t tenant_id, const nlohmann::json& limits, int64_t now_ms);

 private:
  explicit JobStore(std::unique_ptr<Database> db) : db_(std::move(db)) {}

  std::mutex mutex_;
  std::unique_ptr<Database> db_;  // GUARDED_BY(mutex_)
};

}  // namespace orrery
