// Database: one SQLite connection with prepared statements, transactions and
// schema migrations. This is the catalog's storage engine.
//
// The connection runs in WAL mode with synchronous=FULL and foreign keys on:
// a committed transaction survives power loss. Migrations are an ordered list
// of SQL scripts; `PRAGMA user_version` records how many have run, and each
// runs in its own transaction, so a crash mid-migration leaves the previous
// version intact.
//
// Thread-safety: a Database is used by one thread at a time. Owners that share
// it across threads (the Repository) serialise access with their own mutex.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace orrery {

class Database;

// A prepared statement. Bind parameters are 1-based, as in SQLite.
// Usage:
//   ASSIGN_OR_RETURN(Statement s, db.Prepare("SELECT a FROM t WHERE b = ?"));
//   s.Bind(1, value);
//   while (true) { ASSIGN_OR_RETURN(bool row, s.Step()); if (!row) break; ... s.ColumnText(0) }
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, std::string_view value);
  Statement& Bind(int index, const char* value) { return Bind(index, std::string_view(value)); }
  Statement& Bind(int index, const std::string& value) {
    return Bind(index, std::string_view(value));
  }
  Statement& Bind(int index, const std::optional<int64_t>& value);
  Statement& Bind(int index, const std::optional<std::string>& value);
  Statement& BindNull(int index);

  // true when a row is available, false when done.
  Result<bool> Step();
  // Runs to completion, ignoring rows.
  Status Run();
  // Ends a Step() loop early, so that the statement can be bound and run again.
  void Reset();

  int64_t ColumnInt(int column) const;
  std::string ColumnText(int column) const;
  bool ColumnIsNull(int column) const;
  std::optional<int64_t> ColumnOptionalInt(int column) const;

 private:
  friend class Database;
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  Status bind_error_;
};

class Database {
 public:
  struct Options {
    std::filesystem::path path;     // file path; ":memory:" for tests
    int busy_timeout_ms = 5000;     // wait this long for another process's lock
    int64_t cache_kib = 64 * 1024;  // page cache of this connection
    // A reader of a catalog another connection created and writes (WAL lets
    // readers see the last commit without waiting for the writer).
    bool read_only = false;
  };

  // Opens (creating if needed) and configures the connection.
  static Result<std::unique_ptr<Database>> Open(const Options& options);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Brings the schema up to migrations.size(). Refuses (kInternal) a database
  // whose user_version is newer than this binary knows.
  Status Migrate(const std::vector<std::string>& migrations);
  int64_t SchemaVersion();

  Result<Statement> Prepare(std::string_view sql);
  // Runs one or more statements without parameters.
  Status Exec(std::string_view sql);

  Status Begin();  // BEGIN IMMEDIATE
  Status Commit();
  Status Rollback();  // safe to call when no transaction is open

  int64_t LastInsertId() const;
  int64_t Changes() const;

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
};

// RAII transaction: rolls back on destruction unless Commit() succeeded.
class Transaction {
 public:
  static Result<Transaction> Begin(Database& db);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  Status Commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;
};

}  // namespace orrery
