#include "storage/database.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/files.h"

namespace orrery {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kMigrations = {
    "CREATE TABLE tenants (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "INSERT INTO tenants (name) VALUES ('seed');",
    "CREATE TABLE models (id INTEGER PRIMARY KEY,"
    " tenant_id INTEGER NOT NULL REFERENCES tenants(id),"
    " name TEXT NOT NULL, size INTEGER, note TEXT, UNIQUE (tenant_id, name));",
};

class DatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<TempDir> dir = TempDir::Create(fs::temp_directory_path(), "database_test-");
    ASSERT_TRUE(dir.ok()) << dir.status().ToString();
    dir_.emplace(std::move(dir).value());
    path_ = dir_->path() / "catalog.db";
  }

  std::unique_ptr<Database> MustOpen(int busy_timeout_ms = 5000) {
    Result<std::unique_ptr<Database>> db = Database::Open({path_, busy_timeout_ms});
    EXPECT_TRUE(db.ok()) << db.status().ToString();
    return db.ok() ? std::move(db).value() : nullptr;
  }

  std::unique_ptr<Database> MustOpenMigrated() {
    std::unique_ptr<Database> db = MustOpen();
    if (db != nullptr) {
      Status status = db->Migrate(kMigrations);
      EXPECT_TRUE(status.ok()) << status.ToString();
    }
    return db;
  }

  static std::string QueryText(Database& db, std::string_view sql) {
    Result<Statement> statement = db.Prepare(sql);
    EXPECT_TRUE(statement.ok()) << statement.status().ToString();
    if (!statement.ok()) return "<error>";
    Result<bool> row = statement->Step();
    EXPECT_TRUE(row.ok() && *row) << sql;
    return row.ok() && *row ? statement->ColumnText(0) : "<no row>";
  }

  static int64_t Count(Database& db, const std::string& table) {
    return std::stoll(QueryText(db, "SELECT COUNT(*) FROM " + table));
  }

  static bool TableExists(Database& db, const std::string& table) {
    return QueryText(db, "SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='" +
                             table + "'") == "1";
  }

  std::optional<TempDir> dir_;
  fs::path path_;
};

TEST_F(DatabaseTest, PragmasAreSet) {
  std::unique_ptr<Database> db = MustOpen(1234);
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(QueryText(*db, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(QueryText(*db, "PRAGMA synchronous"), "2");  // FULL
  EXPECT_EQ(QueryText(*db, "PRAGMA foreign_keys"), "1");
  EXPECT_EQ(QueryText(*db, "PRAGMA busy_timeout"), "1234");
}

TEST_F(DatabaseTest, InMemoryDatabaseOpens) {
  Result<std::unique_ptr<Database>> db = Database::Open({":memory:"});
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  EXPECT_TRUE((*db)->Migrate(kMigrations).ok());
}

TEST_F(DatabaseTest, MigrationsRunOnceAndAreIdempotentOnReopen) {
  {
    std::unique_ptr<Database> db = MustOpen();
    ASSERT_NE(db, nullptr);
    EXPECT_EQ(db->SchemaVersion(), 0);
    ASSERT_TRUE(db->Migrate(kMigrations).ok());
    EXPECT_EQ(db->SchemaVersion(), 2);
    ASSERT_TRUE(db->Migrate(kMigrations).ok());  // same connection, nothing to do
  }
  std::unique_ptr<Database> db = MustOpen();
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->SchemaVersion(), 2);
  ASSERT_TRUE(db->Migrate(kMigrations).ok());
  EXPECT_EQ(Count(*db, "tenants"), 1);  // the seed INSERT ran exactly once

  std::vector<std::string> more = kMigrations;
  more.push_back("INSERT INTO tenants (name) VALUES ('third');");
  ASSERT_TRUE(db->Migrate(more).ok());
  EXPECT_EQ(db->SchemaVersion(), 3);
  EXPECT_EQ(Count(*db, "tenants"), 2);  // only the new migration ran
}

TEST_F(DatabaseTest, FailingMigrationKeepsPreviousVersionAndSchema) {
  std::unique_ptr<Database> db = MustOpen();
  ASSERT_NE(db, nullptr);
  std::vector<std::string> migrations = {
      kMigrations[0],
      "CREATE TABLE half_done (x INTEGER); INSERT INTO no_such_table VALUES (1);",
  };
  Status status = db->Migrate(migrations);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("migration 2"), std::string::npos) << status.ToString();
  EXPECT_NE(status.message().find("no_such_table"), std::string::npos) << status.ToString();
  EXPECT_EQ(db->SchemaVersion(), 1);
  EXPECT_TRUE(TableExists(*db, "tenants"));
  EXPECT_FALSE(TableExists(*db, "half_done"));

  // No transaction is left open: ordinary writes still work and persist.
  ASSERT_TRUE(db->Exec("INSERT INTO tenants (name) VALUES ('after')").ok());
  db.reset();
  db = MustOpen();
  EXPECT_EQ(db->SchemaVersion(), 1);
  EXPECT_EQ(Count(*db, "tenants"), 2);
}

TEST_F(DatabaseTest, NewerSchemaIsRefused) {
  std::unique_ptr<Database> db = MustOpenMigrated();
  ASSERT_NE(db, nullptr);
  std::vector<std::string> older = {kMigrations[0]};
  Status status = db->Migrate(older);
  EXPECT_EQ(status.code(), Code::kInternal);
  EXPECT_NE(status.message().find("newer"), std::string::npos) << status.ToString();
  EXPECT_EQ(db->SchemaVersion(), 2);
}

TEST_F(DatabaseTest, TransactionRollsBackOnDestruction) {
  std::unique_ptr<Database> db = MustOpenMigrated();
  ASSERT_NE(db, nullptr);
  {
    Result<Transaction> transaction = Transaction::Begin(*db);
    ASSERT_TRUE(transaction.ok()) << transaction.status().ToString();
    ASSERT_TRUE(db->Exec("INSERT INTO tenants (name) VALUES ('dropped')").ok());
    EXPECT_EQ(Count(*db, "tenants"), 2);
  }
  EXPECT_EQ(Count(*db, "tenants"), 1);
  {
    Result<Transaction> transaction = Transaction::Begin(*db);
    ASSERT_TRUE(transaction.ok());
    ASSERT_TRUE(db->Exec("INSERT INTO tenants (name) VALUES ('kept')").ok());
    ASSERT_TRUE(transaction->Commit().ok());
    EXPECT_FALSE(transaction->Commit().ok());  // already finished
  }
  EXPECT_EQ(Count(*db, "tenants"), 2);
  EXPECT_TRUE(db->Rollback().ok());  // no transaction open: fine
}

TEST_F(DatabaseTest, CommittedDataIsVisibleToAnotherConnection) {
  std::unique_ptr<Database> writer = MustOpenMigrated();
  std::unique_ptr<Database> reader = MustOpen();
  ASSERT_NE(writer, nullptr);
  ASSERT_NE(reader, nullptr);
  ASSERT_TRUE(writer->Begin().ok());
  ASSERT_TRUE(writer->Exec("INSERT INTO tenants (name) VALUES ('acme')").ok());
  EXPECT_EQ(Count(*reader, "tenants"), 1);  // not yet committed
  ASSERT_TRUE(writer->Commit().ok());
  EXPECT_EQ(Count(*reader, "tenants"), 2);
}

TEST_F(DatabaseTest, LockHeldTooLongIsUnavailable) {
  std::unique_ptr<Database> holder = MustOpenMigrated();
  std::unique_ptr<Database> waiter = MustOpen(50);
  ASSERT_NE(holder, nullptr);
  ASSERT_NE(waiter, nullptr);
  ASSERT_TRUE(holder->Begin().ok());
  EXPECT_EQ(waiter->Begin().code(), Code::kUnavailable);
  ASSERT_TRUE(holder->Rollback().ok());
  EXPECT_TRUE(waiter->Begin().ok());
  EXPECT_TRUE(waiter->Rollback().ok());
}

TEST_F(DatabaseTest, ConstraintViolationsAreConflict) {
  std::unique_ptr<Database> db = MustOpenMigrated();
  ASSERT_NE(db, nullptr);
  Result<Statement> insert = db->Prepare("INSERT INTO tenants (name) VALUES (?)");
  ASSERT_TRUE(insert.ok());
  Status status = insert->Bind(1, "seed").Run();
  EXPECT_EQ(status.code(), Code::kConflict);
  EXPECT_NE(status.message().find("UNIQUE"), std::string::npos) << status.ToString();

  // Foreign keys are enforced (the pragma is per connection).
  Result<Statement> model = db->Prepare("INSERT INTO models (tenant_id, name) VALUES (?, ?)");
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(model->Bind(1, int64_t{999}).Bind(2, "m").Run().code(), Code::kConflict);
  EXPECT_EQ(db->Exec("INSERT INTO tenants (name) VALUES (NULL)").code(), Code::kConflict);
}

TEST_F(DatabaseTest, OptionalBindsAndNulls) {
  std::unique_ptr<Database> db = MustOpenMigrated();
  ASSERT_NE(db, nullptr);
  Result<Statement> insert =
      db->Prepare("INSERT INTO models (tenant_id, name, size, note) VALUES (1, ?, ?, ?)");
  ASSERT_TRUE(insert.ok());
  // One Statement, re-bound and run twice.
  ASSERT_TRUE(insert->Bind(1, "with")
                  .Bind(2, std::optional<int64_t>(42))
                  .Bind(3, std::optional<std::string>(std::string("a\0b", 3)))
                  .Run()
                  .ok());
  EXPECT_EQ(db->Changes(), 1);
  int64_t first_id = db->LastInsertId();
  ASSERT_TRUE(insert->Bind(1, std::string_view("without"))
                  .Bind(2, std::optional<int64_t>())
                  .Bind(3, std::optional<std::string>())
                  .Run()
                  .ok());
  EXPECT_EQ(db->LastInsertId(), first_id + 1);

  Result<Statement> select = db->Prepare("SELECT size, note FROM models WHERE name = ?");
  ASSERT_TRUE(select.ok());
  select->Bind(1, "with");
  ASSERT_TRUE(*select->Step());
  EXPECT_EQ(select->ColumnOptionalInt(0), std::optional<int64_t>(42));
  EXPECT_EQ(select->ColumnText(1), std::string("a\0b", 3));
  EXPECT_FALSE(select->ColumnIsNull(1));
  ASSERT_FALSE(*select->Step());

  select->Bind(1, "without");
  ASSERT_TRUE(*select->Step());
  EXPECT_TRUE(select->ColumnIsNull(0));
  EXPECT_EQ(select->ColumnOptionalInt(0), std::nullopt);
  EXPECT_TRUE(select->ColumnIsNull(1));
  EXPECT_EQ(select->ColumnText(1), "");
  ASSERT_FALSE(*select->Step());

  Result<Statement> null = db->Prepare("SELECT ? IS NULL");
  ASSERT_TRUE(null.ok());
  null->BindNull(1);
  ASSERT_TRUE(*null->Step());
  EXPECT_EQ(null->ColumnInt(0), 1);
}

TEST_F(DatabaseTest, BindErrorIsReportedByStepAndRun) {
  std::unique_ptr<Database> db = MustOpenMigrated();
  ASSERT_NE(db, nullptr);
  Result<Statement> insert = db->Prepare("INSERT INTO tenants (name) VALUES (?)");
  ASSERT_TRUE(insert.ok());
  insert->Bind(2, "out of range").Bind(1, "would be fine");
  Status status = insert->Run();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("bind parameter 2"), std::string::npos) << status.ToString();
  EXPECT_FALSE(insert->Step().ok());
  EXPECT_EQ(Count(*db, "tenants"), 1);  // nothing was inserted
}

TEST_F(DatabaseTest, PrepareErrors) {
  std::unique_ptr<Database> db = MustOpenMigrated();
  ASSERT_NE(db, nullptr);
  Result<Statement> syntax = db->Prepare("SELEC 1");
  ASSERT_FALSE(syntax.ok());
  EXPECT_NE(syntax.status().message().find("syntax error"), std::string::npos);
  EXPECT_EQ(db->Prepare("SELECT 1; SELECT 2").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(db->Prepare("  ").status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(db->Prepare("SELECT 1;  \n").ok());
  EXPECT_FALSE(db->Exec("NOT SQL").ok());
}

TEST_F(DatabaseTest, StepIteratesRows) {
  std::unique_ptr<Database> db = MustOpenMigrated();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Exec("INSERT INTO tenants (name) VALUES ('b'), ('c')").ok());
  Result<Statement> select = db->Prepare("SELECT id, name FROM tenants ORDER BY name");
  ASSERT_TRUE(select.ok());
  std::vector<std::string> names;
  while (true) {
    Result<bool> row = select->Step();
    ASSERT_TRUE(row.ok()) << row.status().ToString();
    if (!*row) break;
    EXPECT_GT(select->ColumnInt(0), 0);
    names.push_back(select->ColumnText(1));
  }
  EXPECT_EQ(names, (std::vector<std::string>{"b", "c", "seed"}));
  Statement moved = std::move(select).value();  // moving keeps it usable
  ASSERT_TRUE(*moved.Step());
}

}  // namespace
}  // namespace orrery
