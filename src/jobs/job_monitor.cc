// JobService's monitor thread: follows the attempts that run, ends them by
// their status files, restarts those lost to faults, starts queued jobs as
// capacity and quotas allow, and answers log followers.
//
// Everything it decides is written to the job store first (compare-and-set
// transitions), so that a server killed at any point finds, when it starts
// again, either the old state (and redoes the step) or the new one.
#include <algorithm>

#include "core/clock.h"
#include "core/files.h"
#include "core/log.h"
#include "jobs/job_service.h"
#include "jobs/local_executor.h"

namespace orrery {
namespace {

using nlohmann::json;

JobDemand DemandOf(const json& spec) {
  const json& resources = spec["resources"];
  return {resources.value("cpus", int64_t{1}), resources.value("memory", int64_t{0}),
          resources.value("gpus", int64_t{0})};
}

// A fault is the job dying by a signal the hub did not send (a kill from
// outside, the OOM killer) or its supervisor being lost: worth a restart
// from the checkpoint. A non-zero exit, a missing command or the wall time
// are the job's own failures: restarting would fail the same way.
bool IsFault(const std::string& reason) { return reason.rfind("signal ", 0) == 0; }

constexpr const char* kRestarting = "restarting from the checkpoint after ";

}  // namespace

Caller JobService::OwnerOf(const JobRow& job) {
  Caller caller;
  caller.tenant_id = job.tenant_id;
  caller.tenant = job.tenant;
  caller.role = Role::kPublisher;
  caller.token_id = job.submitted_by;
  return caller;
}

void JobService::MonitorLoop() {
  while (true) {
    bool busy = PollAttempts();
    busy = StartQueued() || busy;
    AnswerLogWaiters(/*all=*/false);
    std::unique_lock lock(mutex_);
    if (stopping_) return;
    // Idle (nothing runs, nobody follows a log): a submit or a change wakes it.
    auto interval = busy || !log_waiters_.empty() ? options_.poll_interval
                                                  : std::chrono::milliseconds(1000);
    wake_.wait_for(lock, interval, [this] { return stopping_ || woken_; });
    woken_ = false;
    if (stopping_) return;
  }
}

bool JobService::PollAttempts() {
  Result<std::vector<JobRow>> active = store_->List(
      0, {JobState::kStarting, JobState::kRunning, JobState::kHalting}, 1 << 20);
  if (!active.ok()) {
    LogError("jobs: cannot list running jobs: " + active.status().ToString());
    return true;
  }
  for (const JobRow& job : *active) FollowAttempt(job);
  return !active->empty();
}

void JobService::FollowAttempt(const JobRow& job) {
  Result<std::vector<JobAttempt>> attempts = store_->Attempts(job.id);
  if (!attempts.ok()) return;  // the store failed: look again next time
  if (attempts->empty()) {
    // STARTING with no attempt: the server stopped between the two writes.
    LoseAttempt(job, JobAttempt{}, "the attempt was never started (the server stopped)");
    return;
  }
  JobAttempt attempt = attempts->back();
  std::filesystem::path dir = workspace_.AttemptDir(job.id, attempt.number);
  Result<AttemptStatus> status = ReadAttemptStatus(dir);
  if (attempt.handle.empty() && status.ok() && status->supervisor_pid > 0) {
    // Started, but the server stopped before it stored the handle: adopt
    // the supervisor the status names, rather than start a second one.
    Result<std::string> handle = ProcessHandle(static_cast<pid_t>(status->supervisor_pid));
    if (handle.ok() && store_->SetAttemptHandle(job.id, attempt.number, *handle).ok()) {
      attempt.handle = *handle;
    }
  }
  if (status.ok() && status->state == "ended") return EndAttempt(job, attempt, *status);
  if (status.ok() && status->state == "running" && job.state == JobState::kStarting) {
    (void)store_->Transition(job.id, {JobState::kStarting}, JobState::kRunning,
                             "attempt " + std::to_string(attempt.number) + " running",
                             status->started_at_ms);
  }
  Result<bool> running =
      attempt.handle.empty() ? Result<bool>(false) : ExecutorFor(job.spec).Running(attempt.handle);
  if (!running.ok()) return;  // cannot tell now (e.g. out of descriptors): look again next time
  if (*running) {
    DeliverStop(job, attempt);
    return;
  }
  // Gone: it may have written its end just before exiting.
  status = ReadAttemptStatus(dir);
  if (status.ok() && status->state == "ended") return EndAttempt(job, attempt, *status);
  LoseAttempt(job, attempt, "the supervisor was lost");
}

void JobService::DeliverStop(const JobRow& job, const JobAttempt& attempt) {
  bool cancel;
  {
    std::lock_guard lock(mutex_);
    cancel = cancel_requested_.count(job.id) > 0;
    if (!cancel && job.state != JobState::kHalting) return;
    int wanted = cancel ? 2 : 1;  // a cancel after a halt is sent too
    int& sent = stops_sent_[{job.id, attempt.number}];
    if (sent >= wanted) return;
    sent = wanted;
  }
  Status stopped = ExecutorFor(job.spec).Stop(attempt.handle, cancel);
  if (!stopped.ok()) {
    LogError("jobs: cannot stop job " + std::to_string(job.id) + ": " + stopped.ToString());
  }
}

void JobService::EndAttempt(const JobRow& job, const JobAttempt& attempt,
                            const AttemptStatus& status) {
  std::string outcome = std::string(AttemptEndName(status.end)) + ": " + status.reason;
  if (job.state == JobState::kStarting && status.job_pid > 0) {
    // It ran, and ended before the monitor saw it running: the history
    // still says when it started.
    (void)store_->Transition(job.id, {JobState::kStarting}, JobState::kRunning,
                             "attempt " + std::to_string(attempt.number) + " running",
                             status.started_at_ms);
  }
  (void)store_->EndAttempt(job.id, attempt.number, outcome, status.ended_at_ms);
  const std::vector<JobState> live = {JobState::kStarting, JobState::kRunning, JobState::kHalting};
  int64_t at = std::max(status.ended_at_ms, job.updated_at_ms);
  bool cancelled;
  {
    std::lock_guard lock(mutex_);
    cancelled = cancel_requested_.erase(job.id) > 0;
    stops_sent_.erase({job.id, attempt.number});
  }
  switch (status.end) {
    case AttemptEnd::kCompleted: {
      Result<bool> completed = store_->Transition(job.id, live, JobState::kCompleted, status.reason, at);
      if (completed.ok() && *completed) AutoPublish(job.id);
      return;
    }
    case AttemptEnd::kHalted:
      (void)store_->Transition(job.id, live, JobState::kHalted,
                               "halted; the checkpoint is kept (" + status.reason + ")", at);
      return;
    case AttemptEnd::kCancelled:
      (void)store_->Transition(job.id, live, JobState::kCancelled,
                               "cancelled (" + status.reason + ")", at);
      return;
    case AttemptEnd::kFailed:
      break;
  }
  if (cancelled) {
    (void)store_->Transition(job.id, live, JobState::kCancelled, "cancelled (" + status.reason + ")",
                             at);
    return;
  }
  // A fault restarts a running job; a job being halted halts (its state is
  // read again by the compare-and-set, not taken from the snapshot).
  if (IsFault(status.reason)) {
    if (RequeueAfterFault(job, status.reason, at)) return;
    Result<bool> halted = store_->Transition(job.id, {JobState::kHalting}, JobState::kHalted,
                                             "halted; the checkpoint is kept (" + status.reason + ")",
                                             at);
    if (halted.ok() && *halted) return;
  }
  (void)store_->Transition(job.id, live, JobState::kFailed, status.reason, at);
}

bool JobService::RequeueAfterFault(const JobRow& job, const std::string& why, int64_t at) {
  int64_t max_restarts = job.spec.value("max_restarts", int64_t{0});
  if (job.restarts >= max_restarts) return false;
  Result<bool> requeued = store_->Transition(
      job.id, {JobState::kStarting, JobState::kRunning}, JobState::kQueued,
      kRestarting + why + " (restart " + std::to_string(job.restarts + 1) + " of " +
          std::to_string(max_restarts) + ")",
      at);
  if (!requeued.ok() || !*requeued) return false;
  fault_restarts_.fetch_add(1);
  return true;
}

void JobService::LoseAttempt(const JobRow& job, const JobAttempt& attempt, const std::string& why) {
  if (attempt.number > 0) (void)store_->EndAttempt(job.id, attempt.number, "lost: " + why, NowMs());
  const std::vector<JobState> live = {JobState::kStarting, JobState::kRunning, JobState::kHalting};
  bool cancelled;
  {
    std::lock_guard lock(mutex_);
    cancelled = cancel_requested_.erase(job.id) > 0;
    stops_sent_.erase({job.id, attempt.number});
  }
  if (cancelled) {
    (void)store_->Transition(job.id, live, JobState::kCancelled, "cancelled (" + why + ")", NowMs());
    return;
  }
  if (RequeueAfterFault(job, why, NowMs())) return;
  Result<bool> halted = store_->Transition(job.id, {JobState::kHalting}, JobState::kHalted,
                                           "halted; the checkpoint is kept (" + why + ")", NowMs());
  if (halted.ok() && *halted) return;
  (void)store_->Transition(job.id, live, JobState::kFailed, why, NowMs());
}

bool JobService::StartQueued() {
  Result<std::vector<JobRow>> queued = store_->List(0, {JobState::kQueued}, 1 << 20);
  Result<std::vector<JobRow>> active = store_->List(
      0, {JobState::kStarting, JobState::kRunning, JobState::kHalting}, 1 << 20);
  if (!queued.ok() || !active.ok() || queued->empty()) return false;
  std::reverse(queued->begin(), queued->end());  // oldest first
  std::vector<QueuedJob> waiting;
  std::map<int64_t, const JobRow*> by_id;
  for (const JobRow& job : *queued) {
    waiting.push_back({job.id, job.tenant_id, DemandOf(job.spec)});
    by_id[job.id] = &job;
  }
  std::vector<RunningJob> running;
  for (const JobRow& job : *active) running.push_back({job.tenant_id, DemandOf(job.spec)});
  std::map<int64_t, int64_t> last_started;
  {
    std::lock_guard lock(mutex_);
    last_started = last_started_;
  }
  std::vector<int64_t> picked = PickJobsToStart(
      waiting, running, options_.capacity,
      [this](int64_t tenant_id) { return LimitsOf(tenant_id); }, last_started);
  for (int64_t id : picked) StartAttempt(*by_id[id]);
  return !picked.empty();
}

void JobService::StartAttempt(const JobRow& job) {
  Result<bool> starting = store_->Transition(job.id, {JobState::kQueued}, JobState::kStarting,
                                             "starting attempt " + std::to_string(job.attempts + 1),
                                             NowMs());
  if (!starting.ok() || !*starting) return;  // cancelled or halted meanwhile, or the store failed
  {
    std::lock_guard lock(mutex_);
    last_started_[job.tenant_id] = NowMs();
  }
  bool restart = job.reason.rfind(kRestarting, 0) == 0;
  Result<JobSpec> spec = JobSpecFromJson(job.spec);
  Result<int64_t> attempt =
      spec.ok() ? store_->BeginAttempt(job.id, ExecutorFor(job.spec).name(), restart, NowMs())
                : Result<int64_t>(spec.status());
  Status launched = attempt.ok() ? LaunchAttempt(job, *attempt, *spec) : attempt.status();
  if (launched.ok()) {
    attempts_started_.fetch_add(1);
    return;
  }
  LogError("jobs: job " + std::to_string(job.id) + " could not start: " + launched.ToString());
  // The tenant reads the reason: what it can act on (an input gone, not
  // visible) in full; the hub's own trouble without its paths (logged).
  bool theirs = launched.code() == Code::kNotFound || launched.code() == Code::kPermissionDenied ||
                launched.code() == Code::kUnprocessable;
  std::string reason = "could not start: " + (theirs ? launched.message()
                                                      : std::string("the hub failed to start it "
                                                                    "(its operator's log says why)"));
  if (attempt.ok()) (void)store_->EndAttempt(job.id, *attempt, "failed: " + reason, NowMs());
  (void)store_->Transition(job.id, {JobState::kStarting, JobState::kHalting}, JobState::kFailed,
                           reason, NowMs());
}

Status JobService::LaunchAttempt(const JobRow& job, int64_t attempt, const JobSpec& spec) {
  RETURN_IF_ERROR(workspace_.PrepareAttempt(job.id, attempt));
  Caller owner = OwnerOf(job);
  AttemptPlan plan;
  plan.job_id = job.id;
  plan.attempt = attempt;
  plan.command = spec.command;
  if (spec.code_servable) {
    ASSIGN_OR_RETURN(plan.code_dir, repository_.Materialize(owner, PackageKind::kServable,
                                                            spec.code_servable->object,
                                                            spec.code_servable->version));
  } else {
    ASSIGN_OR_RETURN(plan.code_dir, repository_.MaterializeFileSet(owner, spec.code_upload));
  }
  for (const JobInput& input : spec.inputs) {
    Result<std::filesystem::path> dir =
        repository_.Materialize(owner, input.kind, input.object, input.version);
    if (!dir.ok()) return dir.status().WithContext("input " + input.name + " (" + input.Ref() + ")");
    plan.inputs[input.name] = *dir;
  }
  plan.env = spec.env;
  plan.env["ORRERY_INPUTS"] = kJobInputsDir;
  plan.env["ORRERY_OUTPUT"] = kJobOutputDir;
  plan.env["ORRERY_CHECKPOINT"] = kJobCheckpointDir;
  plan.env["ORRERY_METRICS"] = kJobMetricsFile;
  plan.env["ORRERY_CODE"] = "/servable";
  plan.env["ORRERY_JOB_ID"] = std::to_string(job.id);
  plan.env["ORRERY_ATTEMPT"] = std::to_string(attempt);
  plan.env["ORRERY_CPUS"] = std::to_string(spec.resources.cpus);
  plan.env["OMP_NUM_THREADS"] = std::to_string(spec.resources.cpus);
  plan.env["OPENBLAS_NUM_THREADS"] = std::to_string(spec.resources.cpus);
  plan.output_dir = workspace_.OutputDir(job.id);
  plan.checkpoint_dir = workspace_.CheckpointDir(job.id);
  plan.metrics_dir = workspace_.MetricsDir(job.id);
  plan.log_path = workspace_.LogPath(job.id);
  plan.log_limit_bytes = options_.log_limit_bytes;
  plan.wall_time_s = spec.resources.wall_time_s;
  plan.halt_grace_s = spec.halt_grace_s;
  plan.network = spec.network && options_.allow_network;
  plan.use_bubblewrap = options_.sandbox.use_bubblewrap;
  plan.memory_bytes = spec.resources.memory_bytes;
  plan.cpu_seconds = spec.resources.wall_time_s * spec.resources.cpus + 60;
  plan.open_files = static_cast<int64_t>(std::max<uint64_t>(options_.sandbox.open_files, 1024));
  plan.max_processes = static_cast<int64_t>(std::max<uint64_t>(options_.sandbox.max_processes, 256));
  plan.scratch_root = options_.sandbox.scratch_root;
  std::filesystem::path dir = workspace_.AttemptDir(job.id, attempt);
  RETURN_IF_ERROR(WriteFileAtomic(PlanPath(dir), plan.ToJson().dump(2) + "\n", 0600));
  ASSIGN_OR_RETURN(std::string handle, ExecutorFor(job.spec).Start(dir, spec.resources));
  Status stored = store_->SetAttemptHandle(job.id, attempt, handle);
  if (!stored.ok()) (void)ExecutorFor(job.spec).Stop(handle, /*cancel=*/true);  // none untracked
  return stored;
}

}  // namespace orrery
