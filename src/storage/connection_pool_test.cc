#include "storage/connection_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "core/files.h"

namespace orrery {
namespace {

class ConnectionPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create(std::filesystem::temp_directory_path(), "pool-test-");
    ASSERT_TRUE(dir.ok());
    dir_ = dir->Release();
    options_.path = dir_ / "catalog.db";
    auto writer = Database::Open(options_);
    ASSERT_TRUE(writer.ok());
    writer_ = std::move(*writer);
    ASSERT_TRUE(writer_->Exec("CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (1);").ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static int64_t Sum(Database& db) {
    auto statement = db.Prepare("SELECT sum(x) FROM t");
    EXPECT_TRUE(statement.ok());
    EXPECT_TRUE(*statement->Step());
    return statement->ColumnInt(0);
  }

  std::filesystem::path dir_;
  Database::Options options_;
  std::unique_ptr<Database> writer_;
};

TEST_F(ConnectionPoolTest, ReadersSeeCommitsAndCannotWrite) {
  auto pool = ConnectionPool::Open(options_, 2);
  ASSERT_TRUE(pool.ok()) << pool.status().ToString();
  {
    auto lease = (*pool)->Acquire();
    EXPECT_EQ(Sum(lease.db()), 1);
    EXPECT_FALSE(lease.db().Exec("INSERT INTO t VALUES (5)").ok());
  }
  ASSERT_TRUE(writer_->Exec("INSERT INTO t VALUES (2)").ok());
  auto lease = (*pool)->Acquire();
  EXPECT_EQ(Sum(lease.db()), 3);
}

TEST_F(ConnectionPoolTest, ReadsProceedWhileTheWriterHoldsATransaction) {
  auto pool = ConnectionPool::Open(options_, 1);
  ASSERT_TRUE(pool.ok());
  ASSERT_TRUE(writer_->Begin().ok());
  ASSERT_TRUE(writer_->Exec("INSERT INTO t VALUES (10)").ok());
  auto lease = (*pool)->Acquire();
  EXPECT_EQ(Sum(lease.db()), 1);  // the uncommitted row is not seen, and nobody waits
  ASSERT_TRUE(writer_->Commit().ok());
}

TEST_F(ConnectionPoolTest, AcquireWaitsForAReturnedConnection) {
  auto pool = ConnectionPool::Open(options_, 1);
  ASSERT_TRUE(pool.ok());
  std::atomic<bool> acquired{false};
  std::thread waiter;
  {
    auto held = (*pool)->Acquire();
    waiter = std::thread([&] {
      auto lease = (*pool)->Acquire();
      acquired = true;
    });
    // Until the waiter blocks in Acquire (a condition, not a guess at time).
    while ((*pool)->waiting() == 0) std::this_thread::yield();
    EXPECT_FALSE(acquired.load());
  }
  waiter.join();
  EXPECT_TRUE(acquired.load());
  EXPECT_EQ(ConnectionPool::Open(options_, 0).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace orrery
