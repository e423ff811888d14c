#include "storage/connection_pool.h"

namespace orrery {

Result<std::unique_ptr<ConnectionPool>> ConnectionPool::Open(Database::Options options, int size) {
  if (size < 1) return InvalidArgument("a connection pool needs at least one connection");
  options.read_only = true;
  std::unique_ptr<ConnectionPool> pool(new ConnectionPool());
  for (int i = 0; i < size; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::Open(options));
    pool->idle_.push_back(std::move(db));
  }
  return pool;
}

ConnectionPool::Lease ConnectionPool::Acquire() {
  std::unique_lock lock(mutex_);
  ++waiting_;
  available_.wait(lock, [this] { return !idle_.empty(); });
  --waiting_;
  std::unique_ptr<Database> db = std::move(idle_.back());
  idle_.pop_back();
  return Lease(this, std::move(db));
}

int ConnectionPool::waiting() const {
  std::lock_guard lock(mutex_);
  return waiting_;
}

void ConnectionPool::Return(std::unique_ptr<Database> db) {
  {
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(db));
  }
  available_.notify_one();
}

ConnectionPool::Lease::~Lease() {
  if (db_ != nullptr) pool_->Return(std::move(db_));
}

}  // namespace orrery
