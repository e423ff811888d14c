// Database implementation notes.
//
// Error mapping: SQLITE_CONSTRAINT (UNIQUE, FOREIGN KEY, NOT NULL, CHECK)
// becomes kConflict so callers can report "already exists" without parsing
// messages; SQLITE_BUSY/LOCKED (another writer held the lock longer than
// busy_timeout) becomes kUnavailable; SQLITE_CORRUPT/NOTADB becomes kDataLoss;
// everything else is kInternal. Messages carry sqlite3_errmsg().
//
// The connection is opened with SQLITE_OPEN_FULLMUTEX although the contract is
// one thread at a time: the mutex is uncontended under the owner's lock, and
// it keeps a Statement finalized outside that lock from racing the owner.
//
// Statements reset themselves when they finish or fail. A finished SELECT then
// releases its WAL read snapshot at once instead of pinning it until the
// Statement is destroyed, and the Statement can be re-bound and run again.
#include "storage/database.h"

#include <sqlite3.h>

#include <utility>

namespace orrery {
namespace {

Status SqliteStatus(int rc, const std::string& message) {
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT: return Conflict(message);
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return Unavailable(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return DataLoss(message);
    case SQLITE_FULL:
      return InsufficientStorage("not enough storage space left on the server for the catalog")
          .WithDetail(message);
    default: return Internal(message);
  }
}

// Status for a failed call on `db`, with the connection's error message.
Status SqliteError(sqlite3* db, int rc, std::string_view context) {
  const char* detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return SqliteStatus(rc, "sqlite: " + std::string(context) + ": " + detail);
}

// Runs a single-row pragma query and returns its first column as text.
Result<std::string> QueryPragma(Database& db, std::string_view sql) {
  ASSIGN_OR_RETURN(Statement statement, db.Prepare(sql));
  ASSIGN_OR_RETURN(bool row, statement.Step());
  if (!row) return Internal("sqlite: no result for " + std::string(sql));
  std::string value = statement.ColumnText(0);
  RETURN_IF_ERROR(statement.Run());  // finish, so the statement releases its lock
  return value;
}

bool OnlyWhitespace(const char* text) {
  for (; *text != '\0'; ++text) {
    if (*text != ' ' && *text != '\t' && *text != '\n' && *text != '\r') return false;
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------- Statement

Statement::Statement(Statement&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)),
      stmt_(std::exchange(other.stmt_, nullptr)),
      bind_error_(std::move(other.bind_error_)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = std::exchange(other.db_, nullptr);
    stmt_ = std::exchange(other.stmt_, nullptr);
    bind_error_ = std::move(other.bind_error_);
  }
  return *this;
}

Statement::~Statement() {
  sqlite3_finalize(stmt_);
}

// Each Bind remembers the first failure; Step()/Run() report it, so a chain of
// binds needs no checks in between. A Statement with a failed bind stays
// failed: prepare a new one.
#define ORRERY_BIND(index, call)                                                     \
  do {                                                                               \
    if (!bind_error_.ok()) return *this;                                             \
    if (stmt_ == nullptr) {                                                          \
      bind_error_ = Internal("sqlite: bind on an empty statement");                  \
      return *this;                                                                  \
    }                                                                                \
    int rc = (call);                                                                 \
    if (rc != SQLITE_OK) {                                                           \
      bind_error_ = SqliteError(db_, rc, "bind parameter " + std::to_string(index)); \
    }                                                                                \
    return *this;                                                                    \
  } while (0)

Statement& Statement::Bind(int index, int64_t value) {
  ORRERY_BIND(index, sqlite3_bind_int64(stmt_, index, value));
}

Statement& Statement::Bind(int index, std::string_view value) {
  // SQLITE_TRANSIENT: SQLite copies the bytes, so `value` need not outlive us.
  ORRERY_BIND(index, sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT,
                                         SQLITE_UTF8));
}

Statement& Statement::Bind(int index, const std::optional<int64_t>& value) {
  return value.has_value() ? Bind(index, *value) : BindNull(index);
}

Statement& Statement::Bind(int index, const std::optional<std::string>& value) {
  return value.has_value() ? Bind(index, std::string_view(*value)) : BindNull(index);
}

Statement& Statement::BindNull(int index) {
  ORRERY_BIND(index, sqlite3_bind_null(stmt_, index));
}

#undef ORRERY_BIND

void Statement::Reset() {
  sqlite3_reset(stmt_);
}

Result<bool> Statement::Step() {
  RETURN_IF_ERROR(bind_error_);
  if (stmt_ == nullptr) return Internal("sqlite: step on an empty statement");
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) {
    sqlite3_reset(stmt_);
    return false;
  }
  Status status = SqliteError(db_, rc, "step");
  sqlite3_reset(stmt_);
  return status;
}

Status Statement::Run() {
  while (true) {
    ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return Status::Ok();
  }
}

int64_t Statement::ColumnInt(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

std::string Statement::ColumnText(int column) const {
  // Text first, then bytes: the order SQLite documents for a stable length.
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return {};
  int size = sqlite3_column_bytes(stmt_, column);
  return std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(size));
}

bool Statement::ColumnIsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

std::optional<int64_t> Statement::ColumnOptionalInt(int column) const {
  if (ColumnIsNull(column)) return std::nullopt;
  return ColumnInt(column);
}

// ----------------------------------------------------------------- Database

Result<std::unique_ptr<Database>> Database::Open(const Options& options) {
  sqlite3* handle = nullptr;
  int flags = options.read_only
                  ? SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX
                  : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
  int rc = sqlite3_open_v2(options.path.c_str(), &handle, flags, nullptr);
  // Even a failed open allocates a handle (for its error message); the
  // unique_ptr closes it on every path from here.
  std::unique_ptr<Database> db(new Database(handle));
  if (rc != SQLITE_OK) return SqliteError(handle, rc, "open " + options.path.string());

  sqlite3_busy_timeout(handle, options.busy_timeout_ms);
  // Set before journal_mode, which itself may need to wait for a lock.
  ASSIGN_OR_RETURN(
      std::string journal,
      QueryPragma(*db, options.read_only ? "PRAGMA journal_mode" : "PRAGMA journal_mode=WAL"));
  // An in-memory database (tests) cannot use WAL and reports "memory".
  if (journal != "wal" && !(journal == "memory" && options.path == ":memory:")) {
    return Internal("sqlite: " + options.path.string() +
                    ": cannot enable WAL (journal_mode=" + journal + ")");
  }
  if (!options.read_only) {
    RETURN_IF_ERROR(db->Exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"));
  }
  // SQLite's default page cache is 2 MiB: a catalog of 10,000 servables is
  // ~25 MB and searches touch much of it.
  RETURN_IF_ERROR(db->Exec("PRAGMA cache_size=-" + std::to_string(options.cache_kib)));
  return db;
}

Database::~Database() {
  // close_v2 defers the close until every Statement is finalized.
  sqlite3_close_v2(db_);
}

Status Database::Migrate(const std::vector<std::string>& migrations) {
  const int64_t known = static_cast<int64_t>(migrations.size());
  int64_t version = SchemaVersion();
  if (version < 0) return Internal("sqlite: cannot read the schema version");
  if (version > known) {
    return Internal("database schema version " + std::to_string(version) +
                    " is newer than this binary supports (" + std::to_string(known) + ")");
  }
  // The script and the version bump share one transaction: a failure (or a
  // crash) leaves both the schema and user_version as they were.
  for (int64_t next = version + 1; next <= known; ++next) {
    std::string context = "migration " + std::to_string(next);
    ASSIGN_OR_RETURN(Transaction transaction, Transaction::Begin(*this));
    RETURN_IF_ERROR(Exec(migrations[static_cast<size_t>(next - 1)]).WithContext(context));
    RETURN_IF_ERROR(Exec("PRAGMA user_version = " + std::to_string(next)).WithContext(context));
    RETURN_IF_ERROR(transaction.Commit().WithContext(context));
  }
  return Status::Ok();
}

int64_t Database::SchemaVersion() {
  // -1 when the version cannot be read (the only failure is an I/O error).
  Result<std::string> value = QueryPragma(*this, "PRAGMA user_version");
  if (!value.ok()) return -1;
  return std::stoll(*value);
}

Result<Statement> Database::Prepare(std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &raw, &tail);
  Statement statement(db_, raw);  // finalizes `raw` on every error path below
  if (rc != SQLITE_OK) return SqliteError(db_, rc, "prepare \"" + std::string(sql) + "\"");
  if (raw == nullptr) return InvalidArgument("sqlite: empty statement");
  std::string rest(tail, static_cast<size_t>(sql.data() + sql.size() - tail));
  if (!OnlyWhitespace(rest.c_str())) {
    return InvalidArgument("sqlite: Prepare takes one statement; use Exec for scripts");
  }
  return statement;
}

Status Database::Exec(std::string_view sql) {
  std::string text(sql);  // sqlite3_exec needs a NUL-terminated script
  char* error = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string message = error != nullptr ? error : sqlite3_errstr(rc);
  sqlite3_free(error);
  return SqliteStatus(rc, "sqlite: exec: " + message);
}

Status Database::Begin() {
  return Exec("BEGIN IMMEDIATE");
}

Status Database::Commit() {
  return Exec("COMMIT");
}

Status Database::Rollback() {
  if (sqlite3_get_autocommit(db_) != 0) return Status::Ok();  // nothing open
  return Exec("ROLLBACK");
}

int64_t Database::LastInsertId() const {
  return sqlite3_last_insert_rowid(db_);
}

int64_t Database::Changes() const {
  return sqlite3_changes64(db_);
}

// -------------------------------------------------------------- Transaction

Result<Transaction> Transaction::Begin(Database& db) {
  RETURN_IF_ERROR(db.Begin());
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_ != nullptr) (void)db_->Rollback();  // best effort; nothing to report to
}

Status Transaction::Commit() {
  if (db_ == nullptr) return Internal("transaction already finished");
  RETURN_IF_ERROR(db_->Commit());
  db_ = nullptr;
  return Status::Ok();
}

}  // namespace orrery
