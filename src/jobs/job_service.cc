// JobService's API side: submit (every check before anything is stored),
// the views, halt / resume / cancel, logs and limits. The monitor's side is
// job_monitor.cc.
#include "jobs/job_service.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <deque>
#include <fstream>
#include <sstream>

#include "core/clock.h"
#include "core/files.h"
#include "jobs/local_executor.h"
#include "sandbox/sandbox.h"

namespace orrery {
namespace {

using nlohmann::json;

std::string Actor(const Caller& caller) {
  return caller.tenant + " (" + RoleName(caller.role) + " token " + std::to_string(caller.token_id) +
         ")";
}

std::string JobName(int64_t id) { return "job " + std::to_string(id); }

json LimitsJson(const TenantLimits& limits) {
  return {{"max_running", limits.max_running},
          {"cpus", limits.cpus},
          {"memory", limits.memory_bytes},
          {"gpus", limits.gpus},
          {"max_wall_time", limits.max_wall_time_s}};
}

Result<TenantLimits> LimitsFromJson(const json& in) {
  if (!in.is_object()) return InvalidArgument("limits must be a JSON object");
  TenantLimits limits;
  for (const auto& [key, value] : in.items()) {
    if (!value.is_number_integer() || value.get<int64_t>() < 0) {
      return InvalidArgument("limit " + key + " must be a non-negative integer (0: no limit)");
    }
    int64_t number = value.get<int64_t>();
    if (key == "max_running") {
      limits.max_running = number;
    } else if (key == "cpus") {
      limits.cpus = number;
    } else if (key == "memory") {
      limits.memory_bytes = number;
    } else if (key == "gpus") {
      limits.gpus = number;
    } else if (key == "max_wall_time") {
      limits.max_wall_time_s = number;
    } else {
      return InvalidArgument("unknown limit '" + key +
                             "' (max_running, cpus, memory, gpus, max_wall_time)");
    }
  }
  return limits;
}

// `asked` of a resource against what can ever be given (0: no bound).
Status CheckBound(const std::string& field, int64_t asked, int64_t bound, const std::string& whose) {
  if (bound <= 0 || asked <= bound) return Status::Ok();
  return Unprocessable("job spec: resources." + field + ": asks for " + std::to_string(asked) +
                       "; " + whose + " at most " + std::to_string(bound));
}

// The last `max_bytes` of a file the job writes (its metrics): opened
// without following a link and without blocking, and only when it is a
// regular file, for the job controls what is at that path. "" when absent.
Result<std::string> ReadJobFile(const std::filesystem::path& path, int64_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::string();
    return Unprocessable("the job's metrics file is not a regular file");
  }
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0 || !S_ISREG(info.st_mode)) {
    return Unprocessable("the job's metrics file is not a regular file");
  }
  int64_t start = std::max<int64_t>(0, info.st_size - max_bytes);
  std::string text(static_cast<size_t>(info.st_size - start), '\0');
  ssize_t n = ::pread(fd.get(), text.data(), text.size(), start);
  text.resize(n > 0 ? static_cast<size_t>(n) : 0);
  if (start > 0) text.erase(0, text.find('\n') + 1);  // from the first whole line
  return text;
}

}  // namespace

JobService::JobService(Repository& repository, Options options, std::unique_ptr<JobStore> store)
    : repository_(repository),
      options_(std::move(options)),
      store_(std::move(store)),
      workspace_(options_.data_dir / "jobs"),
      local_(std::make_unique<LocalExecutor>(options_.supervisor_program)) {}

Result<std::unique_ptr<JobService>> JobService::Create(Repository& repository, Options options) {
  RETURN_IF_ERROR(EnsureDir(options.data_dir / "jobs", 0700));
  ASSIGN_OR_RETURN(std::unique_ptr<JobStore> store, JobStore::Open(options.data_dir / "jobs.db"));
  std::unique_ptr<JobService> service(
      new JobService(repository, std::move(options), std::move(store)));
  service->monitor_ = std::thread([raw = service.get()] { raw->MonitorLoop(); });
  return service;
}

JobService::~JobService() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (monitor_.joinable()) monitor_.join();
  AnswerLogWaiters(/*all=*/true);
}

void JobService::Wake() {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
  }
  wake_.notify_all();
}

int64_t JobService::NowMs() const { return NowUnixMillis(); }

TenantLimits JobService::LimitsOf(int64_t tenant_id) {
  Result<std::optional<json>> stored = store_->Limits(tenant_id);
  if (!stored.ok() || !*stored) return options_.default_limits;
  Result<TenantLimits> limits = LimitsFromJson(**stored);
  return limits.ok() ? *limits : options_.default_limits;
}

Result<JobRow> JobService::Visible(const Caller& caller, int64_t id) {
  Result<JobRow> job = store_->Get(id);
  if (!job.ok() || (job->tenant_id != caller.tenant_id && !caller.IsHubAdmin())) {
    return NotFound(JobName(id) + " not found");
  }
  return job;
}

Result<JobRow> JobService::Changeable(const Caller& caller, int64_t id) {
  ASSIGN_OR_RETURN(JobRow job, Visible(caller, id));
  if (caller.role < Role::kPublisher) {
    return PermissionDenied("role " + std::string(RoleName(caller.role)) +
                            " cannot change jobs (publisher needed)");
  }
  return job;
}

Result<json> JobService::UploadCode(const Caller& caller, const std::filesystem::path& archive) {
  ASSIGN_OR_RETURN(Repository::FileSet set, repository_.StoreFileSet(caller, archive));
  return set.ToJson();
}

Result<json> JobService::Submit(const Caller& caller, std::string_view text) {
  if (caller.role < Role::kPublisher) {
    return PermissionDenied("role " + std::string(RoleName(caller.role)) +
                            " cannot submit jobs (publisher needed)");
  }
  ASSIGN_OR_RETURN(JobSpec spec, ParseJobSpec(text));
  return Accept(caller, spec, std::nullopt);
}

Result<json> JobService::Rerun(const Caller& caller, int64_t id) {
  ASSIGN_OR_RETURN(JobRow job, Changeable(caller, id));
  ASSIGN_OR_RETURN(JobSpec spec, JobSpecFromJson(job.spec));  // inputs pinned to versions
  return Accept(caller, spec, id);
}

Result<json> JobService::Accept(const Caller& caller, const JobSpec& given,
                                std::optional<int64_t> rerun_of) {
  JobSpec spec = given;
  if (!spec.code_dir.empty()) {
    return Unprocessable("job spec: code: '" + spec.code_dir +
                         "' is a directory on your machine: upload it first (POST "
                         "/api/v1/jobs/code; `orrery job submit` and the Python client do) and "
                         "give {upload: <digest>}");
  }
  IsolationInfo isolation = ProbeIsolation(options_.sandbox.use_bubblewrap);
  if (isolation.mode == IsolationMode::kFallback && !isolation.switch_uid) {
    // The fallback isolates files by uid 65534, which only a root server can switch to.
    return Unavailable("this hub cannot sandbox training jobs: bubblewrap does not work here (" +
                       isolation.bwrap_problem + ") and the server does not run as root");
  }
  if (spec.executor == JobExecutor::kSlurm) {
    return Unprocessable("job spec: executor: slurm is not configured on this hub (valid: local)");
  }
  if (spec.network && !options_.allow_network) {
    return Unprocessable("job spec: network: this hub does not let jobs reach the network (the "
                         "operator allows it with orrery serve --jobs-allow-network)");
  }
  const HubCapacity& hub = options_.capacity;
  RETURN_IF_ERROR(CheckBound("cpus", spec.resources.cpus, hub.cpus, "this hub runs jobs of"));
  RETURN_IF_ERROR(CheckBound("memory", spec.resources.memory_bytes, hub.memory_bytes,
                             "this hub runs jobs of"));
  if (spec.resources.gpus > hub.gpus) {
    return Unprocessable("job spec: resources.gpus: asks for " +
                         std::to_string(spec.resources.gpus) + "; this hub has " +
                         std::to_string(hub.gpus));
  }
  TenantLimits limits = LimitsOf(caller.tenant_id);
  std::string whose = "tenant " + caller.tenant + "'s limit is";
  RETURN_IF_ERROR(CheckBound("cpus", spec.resources.cpus, limits.cpus, whose));
  RETURN_IF_ERROR(CheckBound("memory", spec.resources.memory_bytes, limits.memory_bytes, whose));
  RETURN_IF_ERROR(CheckBound("gpus", spec.resources.gpus, limits.gpus, whose));
  RETURN_IF_ERROR(CheckBound("wall_time", spec.resources.wall_time_s, limits.max_wall_time_s, whose));

  // The code and the inputs, pinned to what they are now.
  json resolved = {{"inputs", json::object()}};
  std::string code_digest;
  if (spec.code_servable) {
    JobInput& code = *spec.code_servable;
    ASSIGN_OR_RETURN(json version, repository_.DescribeVersion(caller, PackageKind::kServable,
                                                               code.object, code.version));
    code.version = VersionRef{version["version"].get<int64_t>(), ""};
    code_digest = version["digest"].get<std::string>();
    resolved["code"] = {{"servable", code.Ref()}, {"digest", code_digest}};
  } else {
    ASSIGN_OR_RETURN(Repository::FileSet set, repository_.DescribeFileSet(caller, spec.code_upload));
    code_digest = set.digest;
    resolved["code"] = {{"upload", set.digest}, {"digest", set.digest}, {"size", set.size}};
  }
  for (JobInput& input : spec.inputs) {
    ASSIGN_OR_RETURN(json version,
                     repository_.DescribeVersion(caller, input.kind, input.object, input.version));
    input.version = VersionRef{version["version"].get<int64_t>(), ""};
    resolved["inputs"][input.name] = {{"kind", PackageKindName(input.kind)},
                                      {"ref", input.Ref()},
                                      {"digest", version["digest"]}};
  }

  JobRow row;
  row.tenant_id = caller.tenant_id;
  row.tenant = caller.tenant;
  row.name = spec.name;
  row.spec = spec.ToJson();
  row.resolved = resolved;
  row.code_digest = code_digest;
  row.submitted_by = caller.token_id;
  row.rerun_of = rerun_of;
  row.reason = (rerun_of ? "rerun of " + JobName(*rerun_of) + " by " : "submitted by ") + Actor(caller);
  ASSIGN_OR_RETURN(int64_t id, store_->Insert(row, NowMs()));
  RETURN_IF_ERROR(repository_.AppendAuditEntry(caller, rerun_of ? "job.rerun" : "job.submit",
                                               JobName(id), spec.name));
  Wake();
  return Show(caller, id);
}

json JobService::JobJson(const JobRow& job, bool detail) {
  json out = {{"id", job.id},
              {"name", job.name},
              {"tenant", job.tenant},
              {"state", JobStateName(job.state)},
              {"reason", job.reason},
              {"submitted_at", FormatUnixMillis(job.submitted_at_ms)},
              {"updated_at", FormatUnixMillis(job.updated_at_ms)},
              {"attempts", job.attempts},
              {"restarts", job.restarts},
              {"max_restarts", job.spec.value("max_restarts", 0)},
              {"executor", job.spec.value("executor", "local")},
              {"code_digest", job.code_digest},
              {"published", job.published.empty() ? json() : json(job.published)},
              {"rerun_of", job.rerun_of ? json(*job.rerun_of) : json()}};
  if (!detail) return out;
  out["spec"] = job.spec;
  out["resolved"] = job.resolved;
  json history = json::array();
  if (auto events = store_->History(job.id); events.ok()) {
    for (const JobEvent& event : *events) {
      history.push_back({{"at", FormatUnixMillis(event.at_ms)},
                         {"state", JobStateName(event.state)},
                         {"reason", event.reason},
                         {"attempt", event.attempt}});
    }
  }
  out["history"] = history;
  json attempts = json::array();
  if (auto rows = store_->Attempts(job.id); rows.ok()) {
    for (const JobAttempt& attempt : *rows) {
      attempts.push_back({{"number", attempt.number},
                          {"executor", attempt.executor},
                          {"started_at", FormatUnixMillis(attempt.started_at_ms)},
                          {"ended_at", attempt.ended_at_ms ? json(FormatUnixMillis(*attempt.ended_at_ms))
                                                           : json()},
                          {"outcome", attempt.outcome}});
    }
  }
  out["attempt_list"] = attempts;
  return out;
}

Result<json> JobService::List(const Caller& caller, std::optional<JobState> state, int64_t limit) {
  std::vector<JobState> states;
  if (state) states.push_back(*state);
  ASSIGN_OR_RETURN(std::vector<JobRow> rows,
                   store_->List(caller.IsHubAdmin() ? 0 : caller.tenant_id, states, limit));
  json jobs = json::array();
  for (const JobRow& row : rows) jobs.push_back(JobJson(row, false));
  return json{{"jobs", jobs}};
}

Result<json> JobService::Show(const Caller& caller, int64_t id) {
  ASSIGN_OR_RETURN(JobRow job, Visible(caller, id));
  json out = JobJson(job, true);
  Result<json> metrics = Metrics(caller, id, 1);
  if (metrics.ok()) {
    out["metrics"] = {{"count", (*metrics)["count"]},
                      {"last", (*metrics)["metrics"].empty() ? json() : (*metrics)["metrics"].back()}};
  } else {
    out["metrics"] = {{"count", 0}, {"last", nullptr}, {"error", metrics.status().message()}};
  }
  return out;
}

Result<json> JobService::Metrics(const Caller& caller, int64_t id, int64_t limit) {
  ASSIGN_OR_RETURN(JobRow job, Visible(caller, id));
  ASSIGN_OR_RETURN(std::string text, ReadJobFile(workspace_.MetricsFile(job.id), kMaxMetricsBytes));
  std::deque<json> lines;
  int64_t count = 0, skipped = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json value = json::parse(line, nullptr, false);
    if (value.is_discarded() || !value.is_object()) {
      ++skipped;  // a line cut by a kill, or not JSON: not a metric
      continue;
    }
    ++count;
    lines.push_back(std::move(value));
    if (static_cast<int64_t>(lines.size()) > limit) lines.pop_front();
  }
  json list = json::array();
  for (json& value : lines) list.push_back(std::move(value));
  return json{{"metrics", list}, {"count", count}, {"skipped_lines", skipped}};
}

Result<json> JobService::Halt(const Caller& caller, int64_t id) {
  ASSIGN_OR_RETURN(JobRow job, Changeable(caller, id));
  std::string reason = "halt requested by " + Actor(caller);
  ASSIGN_OR_RETURN(bool queued, store_->Transition(id, {JobState::kQueued}, JobState::kHalted,
                                                   "halted before it started, by " + Actor(caller),
                                                   NowMs()));
  if (!queued) {
    // The monitor signals the attempt's supervisor (FollowAttempt), also
    // one that is still starting.
    ASSIGN_OR_RETURN(bool running,
                     store_->Transition(id, {JobState::kStarting, JobState::kRunning},
                                        JobState::kHalting, reason, NowMs()));
    if (!running) {
      ASSIGN_OR_RETURN(job, store_->Get(id));
      if (job.state != JobState::kHalting && job.state != JobState::kHalted) {
        return Conflict(JobName(id) + " is " + JobStateName(job.state) + ": it cannot be halted");
      }
    }
  }
  RETURN_IF_ERROR(repository_.AppendAuditEntry(caller, "job.halt", JobName(id), job.name));
  Wake();
  return Show(caller, id);
}

Result<json> JobService::Resume(const Caller& caller, int64_t id) {
  ASSIGN_OR_RETURN(JobRow job, Changeable(caller, id));
  ASSIGN_OR_RETURN(bool resumed,
                   store_->Transition(id, {JobState::kHalted}, JobState::kQueued,
                                      "resumed by " + Actor(caller) + "; the checkpoint is kept",
                                      NowMs()));
  if (!resumed) {
    ASSIGN_OR_RETURN(job, store_->Get(id));
    return Conflict(JobName(id) + " is " + JobStateName(job.state) + ": only HALTED jobs resume");
  }
  RETURN_IF_ERROR(repository_.AppendAuditEntry(caller, "job.resume", JobName(id), job.name));
  Wake();
  return Show(caller, id);
}

Result<json> JobService::Cancel(const Caller& caller, int64_t id) {
  ASSIGN_OR_RETURN(JobRow job, Changeable(caller, id));
  ASSIGN_OR_RETURN(bool waiting,
                   store_->Transition(id, {JobState::kQueued, JobState::kHalted},
                                      JobState::kCancelled, "cancelled by " + Actor(caller), NowMs()));
  if (!waiting) {
    ASSIGN_OR_RETURN(job, store_->Get(id));
    if (IsFinal(job.state)) {
      return Conflict(JobName(id) + " is " + JobStateName(job.state) + ": nothing to cancel");
    }
    std::lock_guard lock(mutex_);
    cancel_requested_.insert(id);  // the monitor signals the supervisor (FollowAttempt)
  }
  RETURN_IF_ERROR(repository_.AppendAuditEntry(caller, "job.cancel", JobName(id), job.name));
  Wake();
  return Show(caller, id);
}

Result<JobService::LogChunk> JobService::ReadLog(const JobRow& job, int64_t offset,
                                                 int64_t max_bytes) {
  LogChunk chunk;
  chunk.state = job.state;
  std::error_code error;
  std::filesystem::path path = workspace_.LogPath(job.id);
  int64_t size = std::filesystem::exists(path, error)
                     ? static_cast<int64_t>(std::filesystem::file_size(path, error))
                     : 0;
  if (error) size = 0;
  offset = std::clamp<int64_t>(offset, 0, size);
  int64_t length = std::min(max_bytes, size - offset);
  if (length > 0) {
    std::ifstream in(path, std::ios::binary);
    in.seekg(offset);
    chunk.data.resize(static_cast<size_t>(length));
    in.read(chunk.data.data(), length);
    chunk.data.resize(static_cast<size_t>(in.gcount()));
  }
  chunk.next_offset = offset + static_cast<int64_t>(chunk.data.size());
  bool over = IsFinal(job.state) || job.state == JobState::kHalted;
  chunk.ended = over && chunk.next_offset >= size;
  return chunk;
}

void JobService::Logs(const Caller& caller, int64_t id, int64_t offset, int64_t max_bytes,
                      std::chrono::milliseconds wait, std::function<void(Result<LogChunk>)> done) {
  Result<JobRow> job = Visible(caller, id);
  if (!job.ok()) return done(job.status());
  Result<LogChunk> chunk = ReadLog(*job, offset, max_bytes);
  if (!chunk.ok() || !chunk->data.empty() || chunk->ended || wait.count() <= 0) {
    return done(std::move(chunk));
  }
  bool waiting = false;
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      log_waiters_.push_back({caller, id, offset, max_bytes,
                              std::chrono::steady_clock::now() + wait, std::move(done)});
      woken_ = true;  // the monitor polls quickly while someone follows
      waiting = true;
    }
  }
  if (!waiting) return done(std::move(chunk));  // stopping: answered at once (not moved from)
  wake_.notify_all();
}

void JobService::AnswerLogWaiters(bool all) {
  std::vector<LogWaiter> waiters;
  {
    std::lock_guard lock(mutex_);
    waiters.swap(log_waiters_);
  }
  auto now = std::chrono::steady_clock::now();
  std::vector<LogWaiter> still;
  for (LogWaiter& waiter : waiters) {
    Result<JobRow> job = store_->Get(waiter.id);
    Result<LogChunk> chunk =
        job.ok() ? ReadLog(*job, waiter.offset, waiter.max_bytes) : Result<LogChunk>(job.status());
    if (all || !chunk.ok() || !chunk->data.empty() || chunk->ended || now >= waiter.until) {
      waiter.done(std::move(chunk));
    } else {
      still.push_back(std::move(waiter));
    }
  }
  std::lock_guard lock(mutex_);
  for (LogWaiter& waiter : still) log_waiters_.push_back(std::move(waiter));
}

Result<json> JobService::GetLimits(const Caller& caller, std::string_view tenant) {
  std::string name = tenant.empty() ? caller.tenant : std::string(tenant);
  if (name != caller.tenant && !caller.IsHubAdmin()) {
    return PermissionDenied("the job limits of " + name + " are for its own tokens and the hub admin");
  }
  ASSIGN_OR_RETURN(int64_t tenant_id, repository_.FindTenantId(name));
  ASSIGN_OR_RETURN(std::optional<json> stored, store_->Limits(tenant_id));
  json limits = LimitsJson(LimitsOf(tenant_id));
  return json{{"tenant", name}, {"limits", limits}, {"default", !stored.has_value()},
              {"hub", {{"max_running", options_.capacity.max_running},
                       {"cpus", options_.capacity.cpus},
                       {"memory", options_.capacity.memory_bytes},
                       {"gpus", options_.capacity.gpus}}}};
}

Result<json> JobService::SetLimits(const Caller& caller, std::string_view tenant,
                                   const json& limits) {
  if (!caller.IsHubAdmin()) return PermissionDenied("setting job limits needs the hub admin");
  ASSIGN_OR_RETURN(int64_t tenant_id, repository_.FindTenantId(tenant));
  if (!limits.is_null()) RETURN_IF_ERROR(LimitsFromJson(limits).status());
  RETURN_IF_ERROR(store_->SetLimits(tenant_id, limits, NowMs()));
  RETURN_IF_ERROR(repository_.AppendAuditEntry(caller, "job.limits", std::string(tenant),
                                               limits.is_null() ? "cleared" : limits.dump()));
  Wake();
  return GetLimits(caller, tenant);
}

std::string JobService::RenderMetrics(const std::string& tenant) {
  struct Counts {
    int64_t queued = 0, running = 0, halted = 0;
  };
  std::map<std::string, Counts> counts;
  Result<std::vector<JobRow>> rows =
      store_->List(0, {JobState::kQueued, JobState::kStarting, JobState::kRunning,
                       JobState::kHalting, JobState::kHalted},
                   1 << 20);
  if (rows.ok()) {
    for (const JobRow& row : *rows) {
      if (!tenant.empty() && row.tenant != tenant) continue;
      Counts& count = counts[row.tenant];
      if (row.state == JobState::kQueued) ++count.queued;
      if (HoldsResources(row.state)) ++count.running;
      if (row.state == JobState::kHalted) ++count.halted;
    }
  }
  std::ostringstream out;
  out << "# HELP orrery_jobs Training jobs by tenant and state (running: STARTING, RUNNING or "
         "HALTING).\n# TYPE orrery_jobs gauge\n";
  for (const auto& [name, count] : counts) {
    out << "orrery_jobs{tenant=\"" << name << "\",state=\"queued\"} " << count.queued << "\n"
        << "orrery_jobs{tenant=\"" << name << "\",state=\"running\"} " << count.running << "\n"
        << "orrery_jobs{tenant=\"" << name << "\",state=\"halted\"} " << count.halted << "\n";
  }
  if (tenant.empty()) {
    out << "# HELP orrery_job_slots Jobs the hub runs at once (serve --job-slots).\n"
        << "# TYPE orrery_job_slots gauge\norrery_job_slots " << options_.capacity.max_running
        << "\n# HELP orrery_job_attempts_started_total Job attempts started by this server.\n"
        << "# TYPE orrery_job_attempts_started_total counter\norrery_job_attempts_started_total "
        << attempts_started_.load()
        << "\n# HELP orrery_job_fault_restarts_total Jobs requeued after a fault (a kill from "
           "outside, a lost supervisor).\n"
        << "# TYPE orrery_job_fault_restarts_total counter\norrery_job_fault_restarts_total "
        << fault_restarts_.load() << "\n";
  }
  return out.str();
}

Executor& JobService::ExecutorFor(const json& /*spec: only local so far*/) { return *local_; }

}  // namespace orrery
