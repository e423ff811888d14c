// ConnectionPool: a fixed set of read-only Database connections to one
// catalog file, lent to one thread at a time, so that reads (list, search,
// describe, authenticate) run in parallel with each other and with the
// writer (WAL: each read sees the last committed state).
//
// Ownership: owns its connections; a Lease must not outlive the pool.
// Thread-safety: Acquire() is safe from any thread; it blocks while every
// connection is lent out.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include "storage/database.h"

namespace orrery {

class ConnectionPool {
 public:
  // Opens `size` (>= 1) read-only connections; the catalog must exist.
  static Result<std::unique_ptr<ConnectionPool>> Open(Database::Options options, int size);

  // One connection, returned to the pool when the Lease is destroyed.
  class Lease {
   public:
    Lease(Lease&& other) noexcept : pool_(other.pool_), db_(std::move(other.db_)) {}
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    ~Lease();
    Database& db() { return *db_; }

   private:
    friend class ConnectionPool;
    Lease(ConnectionPool* pool, std::unique_ptr<Database> db) : pool_(pool), db_(std::move(db)) {}
    ConnectionPool* pool_;
    std::unique_ptr<Database> db_;
  };

  Lease Acquire();
  // Callers blocked in Acquire() now, for operators and tests.
  int waiting() const;

 private:
  ConnectionPool() = default;
  void Return(std::unique_ptr<Database> db);

  mutable std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<Database>> idle_;  // GUARDED_BY(mutex_)
  int waiting_ = 0;                              // GUARDED_BY(mutex_)
};

}  // namespace orrery
