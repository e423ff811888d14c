#include "jobs/job_store.h"

#include <algorithm>
#include <array>

namespace orrery {
namespace {

constexpr std::array<const char*, 8> kStateNames = {
    "QUEUED", "STARTING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "HALTING", "HALTED"};

// Migrations are append-only, as the catalog's (repository/schema.cc).
const std::vector<std::string>& JobMigrations() {
  static const std::vector<std::string> kMigrations = {
      R"sql(
CREATE TABLE jobs(
  id INTEGER PRIMARY KEY,
  tenant_id INTEGER NOT NULL,
  tenant TEXT NOT NULL,
  name TEXT NOT NULL,
  spec TEXT NOT NULL,                 -- canonical JSON (jobs/job_spec.h), inputs resolved
  resolved TEXT NOT NULL,             -- the code's and inputs' digests, JSON
  code_digest TEXT NOT NULL,
  state TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  submitted_by INTEGER NOT NULL,      -- the catalog's token id
  submitted_at INTEGER NOT NULL,      -- unix milliseconds, as every time here
  updated_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  restarts INTEGER NOT NULL DEFAULT 0,
  rerun_of INTEGER REFERENCES jobs(id),
  published TEXT NOT NULL DEFAULT '');
CREATE INDEX jobs_by_tenant ON jobs(tenant_id, id);
CREATE INDEX jobs_by_state ON jobs(state);

CREATE TABLE job_events(
  id INTEGER PRIMARY KEY,
  job_id INTEGER NOT NULL REFERENCES jobs(id),
  at INTEGER NOT NULL,
  state TEXT NOT NULL,
  reason TEXT NOT NULL,
  attempt INTEGER NOT NULL);
CREATE INDEX job_events_by_job ON job_events(job_id, id);

CREATE TABLE job_attempts(
  job_id INTEGER NOT NULL REFERENCES jobs(id),
  number INTEGER NOT NULL,
  executor TEXT NOT NULL,
  handle TEXT NOT NULL DEFAULT '',
  started_at INTEGER NOT NULL,
  ended_at INTEGER,
  outcome TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (job_id, number));

CREATE TABLE tenant_limits(
  tenant_id INTEGER PRIMARY KEY,      -- the catalog's tenant id
  limits TEXT NOT NULL,               -- JSON: max_running, cpus, memory, gpus, max_wall_time
  updated_at INTEGER NOT NULL);
)sql",
  };
  return kMigrations;
}

constexpr const char* kJobColumns =
    "id, tenant_id, tenant, name, spec, resolved, code_digest, state, reason, submitted_by, "
    "submitted_at, updated_at, attempts, restarts, rerun_of, published";

Result<JobRow> ReadJob(const Statement& s) {
  JobRow row;
  row.id = s.ColumnInt(0);
  row.tenant_id = s.ColumnInt(1);
  row.tenant = s.ColumnText(2);
  row.name = s.ColumnText(3);
  row.spec = nlohmann::json::parse(s.ColumnText(4), nullptr, false);
  row.resolved = nlohmann::json::parse(s.ColumnText(5), nullptr, false);
  if (row.spec.is_discarded() || row.resolved.is_discarded()) {
    return Internal("job " + std::to_string(row.id) + ": its stored spec is not JSON");
  }
  row.code_digest = s.ColumnText(6);
  ASSIGN_OR_RETURN(row.state, ParseJobState(s.ColumnText(7)));
  row.reason = s.ColumnText(8);
  row.submitted_by = s.ColumnInt(9);
  row.submitted_at_ms = s.ColumnInt(10);
  row.updated_at_ms = s.ColumnInt(11);
  row.attempts = s.ColumnInt(12);
  row.restarts = s.ColumnInt(13);
  row.rerun_of = s.ColumnOptionalInt(14);
  row.published = s.ColumnText(15);
  return row;
}

Status AddEvent(Database& db, int64_t id, JobState state, const std::string& reason,
                int64_t attempt, int64_t now_ms) {
  ASSIGN_OR_RETURN(Statement insert,
                   db.Prepare("INSERT INTO job_events(job_id, at, state, reason, attempt) "
                              "VALUES (?, ?, ?, ?, ?)"));
  insert.Bind(1, id).Bind(2, now_ms).Bind(3, JobStateName(state)).Bind(4, reason).Bind(5, attempt);
  return insert.Run();
}

}  // namespace

const char* JobStateName(JobState state) { return kStateNames[static_cast<size_t>(state)]; }

Result<JobState> ParseJobState(std::string_view text) {
  for (size_t i = 0; i < kStateNames.size(); ++i) {
    if (text == kStateNames[i]) return static_cast<JobState>(i);
  }
  return InvalidArgument("unknown job state '" + std::string(text) +
                         "' (QUEUED, STARTING, RUNNING, COMPLETED, FAILED, CANCELLED, HALTING, "
                         "HALTED)");
}

bool IsFinal(JobState state) {
  return state == JobState::kCompleted || state == JobState::kFailed ||
         state == JobState::kCancelled;
}

bool HoldsResources(JobState state) {
  return state == JobState::kStarting || state == JobState::kRunning ||
         state == JobState::kHalting;
}

Result<std::unique_ptr<JobStore>> JobStore::Open(const std::filesystem::path& path) {
  Database::Options options;
  options.path = path;
  ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::Open(options));
  RETURN_IF_ERROR(db->Migrate(JobMigrations()));
  return std::unique_ptr<JobStore>(new JobStore(std::move(db)));
}

Result<int64_t> JobStore::Insert(const JobRow& job, int64_t now_ms) {
  std::lock_guard lock(mutex_);
  ASSIGN_OR_RETURN(Transaction transaction, Transaction::Begin(*db_));
  ASSIGN_OR_RETURN(Statement insert,
                   db_->Prepare("INSERT INTO jobs(tenant_id, tenant, name, spec, resolved, "
                                "code_digest, state, reason, submitted_by, submitted_at, "
                                "updated_at, rerun_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  insert.Bind(1, job.tenant_id).Bind(2, job.tenant).Bind(3, job.name).Bind(4, job.spec.dump());
  insert.Bind(5, job.resolved.dump()).Bind(6, job.code_digest).Bind(7, "QUEUED");
  insert.Bind(8, job.reason).Bind(9, job.submitted_by).Bind(10, now_ms).Bind(11, now_ms);
  insert.Bind(12, job.rerun_of);
  RETURN_IF_ERROR(insert.Run());
  int64_t id = db_->LastInsertId();
  RETURN_IF_ERROR(AddEvent(*db_, id, JobState::kQueued, job.reason, 0, now_ms));
  RETURN_IF_ERROR(transaction.Commit());
  return id;
}

Result<JobRow> JobStore::Get(int64_t id) {
  std::lock_guard lock(mutex_);
  ASSIGN_OR_RETURN(Statement select, db_->Prepare(std::string("SELECT ") + kJobColumns +
                                                  " FROM jobs WHERE id = ?"));
  select.Bind(1, id);
  ASSIGN_OR_RETURN(bool found, select.Step());
  if (!found) return NotFound("job " + std::to_string(id) + " not found");
  return ReadJob(select);
}

Result<std::vector<JobRow>> JobStore::List(int64_t tenant_id, const std::vector<JobState>& states,
                                           int64_t limit) {
  std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs WHERE (? = 0 OR tenant_id = ?)";
  if (!states.empty()) {
    sql += " AND state IN (";
    for (size_t i = 0; i < states.size(); ++i) sql += i == 0 ? "?" : ", ?";
    sql += ")";
  }
  sql += " ORDER BY id DESC LIMIT ?";
  std::lock_guard lock(mutex_);
  ASSIGN_OR_RETURN(Statement select, db_->Prepare(sql));
  select.Bind(1, tenant_id).Bind(2, tenant_id);
  int index = 3;
  for (JobState state : states) select.Bind(index++, JobStateName(state));
  select.Bind(index, limit);
  std::vector<JobRow> rows;
  while (true) {
    ASSIGN_OR_RETURN(bool more, select.Step());
    if (!more) break;
    ASSIGN_OR_RETURN(JobRow row, ReadJob(select));
    rows.push_back(std::move(row));
  }
  return rows;
}

Result<std::vector<JobEvent>> JobStore::History(int64_t id) {
  std::lock_guard lock(mutex_);
  ASSIGN_OR_RETURN(Statement select,
                   db_->Prepare("SELECT at, state, reason, attempt FROM job_events WHERE job_id = ? "
                                "ORDER BY id"));
  select.Bind(1, id);
  std::vector<JobEvent> events;
  while (true) {
    ASSIGN_OR_RETURN(bool more, select.Step());
    if (!more) break;
    JobEvent event;
    event.at_ms = select.ColumnInt(0);
    ASSIGN_OR_RETURN(event.state, ParseJobState(select.ColumnText(1)));
    event.reason = select.ColumnText(2);
    event.attempt = select.ColumnInt(3);
    events.push_back(std::move(event));
  }
  return events;
}

Result<std::vector<JobAttempt>> JobStore::Attempts(int64_t id) {
  std::lock_guard lock(mutex_);
  ASSIGN_OR_RETURN(Statement select,
                   db_->Prepare("SELECT number, executor, handle, started_at, ended_at, outcome "
                                "FROM job_attempts WHERE job_id = ? ORDER BY number"));
  select.Bind(1, id);
  std::vector<JobAttempt> attempts;
  while (true) {
    ASSIGN_OR_RETURN(bool more, select.Step());
    if (!more) break;
    attempts.push_back({select.ColumnInt(0), select.ColumnText(1), select.ColumnText(2),
                        select.ColumnInt(3), select.ColumnOptionalInt(4), select.ColumnText(5)});
  }
  return attempts;
}

Result<bool> JobStore::Transition(int64_t id, const std::vector<JobState>& from, JobState to,
                                  const std::string& reason, int64_t now_ms) {
  std::lock_guard lock(mutex_);
  ASSIGN_OR_RETURN(Transaction transaction, Transaction::Begin(*db_));
  ASSIGN_OR_RETURN(Statement select, db_->Prepare("SELECT state, attempts FROM jobs WHERE id = ?"));
  select.Bind(1, id);
  ASSIGN_OR_RETURN(bool found, select.Step());
  if (!found) return NotFound("job " + std::to_string(id) + " not found");
  ASSIGN_OR_RETURN(JobState state, ParseJobState(select.ColumnText(0)));
  int64_t attempt = select.ColumnInt(1);
  select.Reset();
  if (std::find(from.begin(), from.end(), state) == from.end()) return false;
  ASSIGN_OR_RETURN(Statement update,
                   db_->Prepare("UPDATE jobs SET state = ?, reason = ?, updated_at = ? WHERE id = ?"));
  update.Bind(1, JobStateName(to)).Bind(2, reason).Bind(3, now_ms).Bind(4, id);
  RETURN_IF_ERROR(update.Run());
  RETURN_IF_ERROR(AddEvent(*db_, id, to, reason, attempt, now_ms));
  RETURN_IF_ERROR(transaction.Commit());
  return true;
}

Result<int64_t> JobStore::BeginAttempt(int64_t id, const std::string& executor, bool restart,
                                       int64_t now_ms) {
  std::lock_guard lock(mutex_);
  ASSIGN_OR_RETURN(Transaction transaction, Transaction::Begin(*db_));
  ASSIGN_OR_RETURN(Statement update,
                   db_->Prepare("UPDATE jobs SET attempts = attempts + 1, restarts = restarts + ? "
                                "WHERE id = ? RETURNING attempts"));
  update.Bind(1, int64_t{restart ? 1 : 0}).Bind(2, id);
  ASSIGN_OR_RETURN(bool found, update.Step());
  if (!found) return NotFound("job " + std::to_string(id) + " not found");
  int64_t number = update.ColumnInt(0);
  update.Reset();
  ASSIGN_OR_RETURN(Statement insert,
                   db_->Prepare("INSERT INTO job_attempts(job_id, number, executor, started_at) "
                                "VALUES (?, ?, ?, ?)"));
  insert.Bind(1, id).Bind(2, number).Bind(3, executor).Bind(4, now_ms);
  RETURN_IF_ERROR(insert.Run());
  RETURN_IF_ERROR(transaction.Commit());
  return number;
}

Status JobStore::SetAttemptHandle(int64_t id, int64_t number, const std::string& handle) {
  std::lock_guard lock(mutex_);
  ASSIGN_OR_RETURN(Statement update,
                   db_->Prepare("UPDATE job_attempts SET handle = ? WHERE job_id = ? AND number = ?"));
  update.Bind(1, handle).Bind(2, id).Bind(3, number);
  return update.Run();
}

Status JobStore::EndAttempt(int64_t id, int64_t number, const std::string& outcome,
                            int64_t now_ms) {
  std::lock_guard lock(mutex_);
  ASSIGN_OR_RETURN(Statement update,
                   db_->Prepare("UPDATE job_attempts SET ended_at = ?, outcome = ? "
                                "WHERE job_id = ? AND number = ? AND ended_at IS NULL"));
  update.Bind(1, now_ms).Bind(2, outcome).Bind(3, id).Bind(4, number);
  return update.Run();
}

Status JobStore::SetPublished(int64_t id, const std::string& published) {
  std::lock_guard lock(mutex_);
  ASSIGN_OR_RETURN(Statement update, db_->Prepare("UPDATE jobs SET published = ? WHERE id = ?"));
  update.Bind(1, published).Bind(2, id);
  return update.Run();
}

Result<std::optional<nlohmann::json>> JobStore::Limits(int64_t tenant_id) {
  std::lock_guard lock(mutex_);
  ASSIGN_OR_RETURN(Statement select,
                   db_->Prepare("SELECT limits FROM tenant_limits WHERE tenant_id = ?"));
  select.Bind(1, tenant_id);
  ASSIGN_OR_RETURN(bool found, select.Step());
  if (!found) return std::optional<nlohmann::json>();
  nlohmann::json limits = nlohmann::json::parse(select.ColumnText(0), nullptr, false);
  if (limits.is_discarded()) return Internal("stored job limits are not JSON");
  return std::optional<nlohmann::json>(std::move(limits));
}

Status JobStore::SetLimits(int64_t tenant_id, const nlohmann::json& limits, int64_t now_ms) {
  std::lock_guard lock(mutex_);
  if (limits.is_null()) {
    ASSIGN_OR_RETURN(Statement remove, db_->Prepare("DELETE FROM tenant_limits WHERE tenant_id = ?"));
    return remove.Bind(1, tenant_id).Run();
  }
  ASSIGN_OR_RETURN(Statement upsert,
                   db_->Prepare("INSERT INTO tenant_limits(tenant_id, limits, updated_at) "
                                "VALUES (?, ?, ?) ON CONFLICT(tenant_id) DO UPDATE SET "
                                "limits = excluded.limits, updated_at = excluded.updated_at"));
  upsert.Bind(1, tenant_id).Bind(2, limits.dump()).Bind(3, now_ms);
  return upsert.Run();
}

}  // namespace orrery
