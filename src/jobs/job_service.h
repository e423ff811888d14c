// JobService: training jobs as the API and the CLI see them (docs/jobs.md).
//
// Submit checks a spec completely before anything is stored: the spec
// itself, the caller's role, the code and every input (resolved to an
// immutable version and its digest, visible to the caller, or 404 as if
// absent), and the resources against what the hub and the tenant's limits
// can ever give (422 when never). An accepted job is QUEUED.
//
// A monitor thread then moves jobs along (job_monitor.cc): it starts queued
// jobs as capacity and quotas allow (fair_share.h), each attempt under a
// supervisor of its own (supervisor.h, through an Executor), follows the
// attempts' status files, restarts attempts lost to faults from the last
// checkpoint up to max_restarts, and answers log followers. After a server
// restart it picks up every job where the job store left it: attempts still
// running are followed again, the outcome of those that ended meanwhile is
// read from their status files.
//
// Visibility: a job belongs to its tenant. Any token of that tenant (and
// the hub admin) sees it; publishers and admins submit, halt, resume and
// cancel; another tenant's job is 404 exactly like an absent one.
//
// Thread-safety: all public methods are safe to call concurrently.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "jobs/attempt_plan.h"
#include "jobs/executor.h"
#include "jobs/fair_share.h"
#include "jobs/job_spec.h"
#include "jobs/job_store.h"
#include "jobs/job_workspace.h"
#include "repository/repository.h"
#include "sandbox/sandbox_options.h"

namespace orrery {

// The most of a job's metrics file read at once (its last lines).
constexpr int64_t kMaxMetricsBytes = 16 << 20;

class JobService {
 public:
  struct Options {
    std::filesystem::path data_dir = "orrery-data";  // jobs.db and jobs/ go here
    HubCapacity capacity;          // what runs at once, hub-wide
    TenantLimits default_limits;   // a tenant's limits until the hub admin sets its own
    SandboxOptions sandbox;        // isolation; the job's own limits come from its spec
    bool allow_network = false;    // jobs whose spec asks for the network may have it
    int64_t log_limit_bytes = 64 << 20;  // per attempt
    std::chrono::milliseconds poll_interval{25};  // how often running attempts are looked at
                                                  // (idle: once a second, or when woken)
    std::filesystem::path supervisor_program;     // empty: orrery-job-supervisor beside this binary
  };

  static Result<std::unique_ptr<JobService>> Create(Repository& repository, Options options);
  // Stops the monitor. Running jobs go on under their supervisors.
  ~JobService();

  // ---- the API (job_service.cc)
  // Stores a job's code (a tar or tar.zst, like a package without a
  // manifest); {"digest", "size", "files"} for the spec's `code: {upload:}`.
  Result<nlohmann::json> UploadCode(const Caller& caller, const std::filesystem::path& archive);
  // `spec` is YAML or JSON (job_spec.h). Answers the job as Show does.
  Result<nlohmann::json> Submit(const Caller& caller, std::string_view spec);
  // The same job again, from the same code and input digests.
  Result<nlohmann::json> Rerun(const Caller& caller, int64_t id);
  // The caller's tenant's jobs (the hub admin: all), newest first.
  Result<nlohmann::json> List(const Caller& caller, std::optional<JobState> state, int64_t limit);
  // The job, its history and its attempts.
  Result<nlohmann::json> Show(const Caller& caller, int64_t id);
  // The metrics lines the job wrote ({"metrics": [...], "count"}), at most
  // the last `limit`.
  Result<nlohmann::json> Metrics(const Caller& caller, int64_t id, int64_t limit);
  // Publishes a COMPLETED job's output as a new version of a servable in the
  // job's tenant, with its lineage (job_publish.cc). `request` may name the
  // servable and the manifest ({"servable", "manifest"}); else the spec's
  // publish section does. {"job", "version"}.
  Result<nlohmann::json> Publish(const Caller& caller, int64_t id, const nlohmann::json& request);
  Result<nlohmann::json> Halt(const Caller& caller, int64_t id);
  Result<nlohmann::json> Resume(const Caller& caller, int64_t id);
  Result<nlohmann::json> Cancel(const Caller& caller, int64_t id);

  // The job's log from byte `offset`: at most `max_bytes`, waiting up to
  // `wait` for more when there is none yet and the job is not over. `done`
  // is called once, from the caller's thread (data at once) or the
  // monitor's (after waiting).
  struct LogChunk {
    std::string data;
    int64_t next_offset = 0;
    bool ended = false;  // the job is over and `data` reaches the log's end
    JobState state = JobState::kQueued;
  };
  void Logs(const Caller& caller, int64_t id, int64_t offset, int64_t max_bytes,
            std::chrono::milliseconds wait, std::function<void(Result<LogChunk>)> done);

  // Per-tenant limits (the hub admin sets them; a tenant's tokens read theirs).
  Result<nlohmann::json> GetLimits(const Caller& caller, std::string_view tenant);
  Result<nlohmann::json> SetLimits(const Caller& caller, std::string_view tenant,
                                   const nlohmann::json& limits);

  // Prometheus text for /metrics: queued, running and halted jobs per
  // tenant (only `tenant`'s when not empty), and, for the whole hub (when
  // `tenant` is empty), its job slots and the attempts started and restarted.
  std::string RenderMetrics(const std::string& tenant);

 private:
  JobService(Repository& repository, Options options, std::unique_ptr<JobStore> store);

  // Who acts for a job when the hub reads its inputs or publishes its
  // output: its owner's tenant, as a publisher, by the submitting token.
  static Caller OwnerOf(const JobRow& job);

  // job_service.cc
  Result<JobRow> Visible(const Caller& caller, int64_t id);
  Result<JobRow> Changeable(const Caller& caller, int64_t id);
  nlohmann::json JobJson(const JobRow& job, bool detail);
  Result<nlohmann::json> Accept(const Caller& caller, const JobSpec& spec,
                                std::optional<int64_t> rerun_of);
  TenantLimits LimitsOf(int64_t tenant_id);
  Result<LogChunk> ReadLog(const JobRow& job, int64_t offset, int64_t max_bytes);
  void Wake();

  // job_publish.cc
  Result<nlohmann::json> PublishOutput(const Caller& caller, const JobRow& job,
                                       const JobPublish& target);
  Lineage LineageOf(const JobRow& job, const nlohmann::json& metrics);
  // A COMPLETED job with a publish section publishes its output (on the
  // monitor's thread); the outcome goes into its history.
  void AutoPublish(int64_t id);
  void NotePublish(const JobRow& job, const std::string& what);

  // job_monitor.cc: the monitor thread's work.
  void MonitorLoop();
  // Follows every running attempt; whether there was any.
  bool PollAttempts();
  void FollowAttempt(const JobRow& job);
  // Sends a requested halt or cancel to the attempt's supervisor, once each.
  void DeliverStop(const JobRow& job, const JobAttempt& attempt);
  void EndAttempt(const JobRow& job, const JobAttempt& attempt, const AttemptStatus& status);
  void LoseAttempt(const JobRow& job, const JobAttempt& attempt, const std::string& why);
  // QUEUED again after a fault, when restarts are left and it is STARTING or
  // RUNNING (not HALTING); whether it was.
  bool RequeueAfterFault(const JobRow& job, const std::string& why, int64_t at);
  // Starts what capacity and limits allow; whether it started any.
  bool StartQueued();
  void StartAttempt(const JobRow& job);
  Status LaunchAttempt(const JobRow& job, int64_t attempt, const JobSpec& spec);
  void AnswerLogWaiters(bool all);
  Executor& ExecutorFor(const nlohmann::json& spec);
  int64_t NowMs() const;

  Repository& repository_;
  Options options_;
  std::unique_ptr<JobStore> store_;
  JobWorkspace workspace_;
  std::unique_ptr<Executor> local_;

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;                   // GUARDED_BY(mutex_)
  bool woken_ = false;                      // GUARDED_BY(mutex_)
  std::set<int64_t> cancel_requested_;      // GUARDED_BY(mutex_): job ids
  // (job id, attempt) -> the stop sent to its supervisor: 1 halt, 2 cancel.
  std::map<std::pair<int64_t, int64_t>, int> stops_sent_;  // GUARDED_BY(mutex_)
  std::map<int64_t, int64_t> last_started_; // GUARDED_BY(mutex_): tenant -> NowMs()
  struct LogWaiter {
    Caller caller;
    int64_t id = 0, offset = 0, max_bytes = 0;
    std::chrono::steady_clock::time_point until;
    std::function<void(Result<LogChunk>)> done;
  };
  std::vector<LogWaiter> log_waiters_;      // GUARDED_BY(mutex_)
  std::atomic<int64_t> attempts_started_{0};
  std::atomic<int64_t> fault_restarts_{0};
  std::thread monitor_;
};

}  // namespace orrery
