// LocalExecutor: each attempt's supervisor is a process of its own on this
// machine, in a session of its own, not a thread or a tracked child of the
// server: `kill -9` of `orrery serve` leaves it (and its job) running, and a
// restarted server finds it again by its handle "pid:starttime" (the start
// time, from /proc, guards against a reused pid).
//
// The supervisor is the orrery-job-supervisor binary beside this one
// (`orrery-job-supervisor DIR`); its own stderr goes to DIR/supervisor.err.
//
// Thread-safety: safe to call from any thread.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <mutex>
#include <set>
#include <string>

#include "jobs/executor.h"

namespace orrery {

class LocalExecutor : public Executor {
 public:
  // `program`: the supervisor binary (default: orrery-job-supervisor beside
  // this process's executable).
  explicit LocalExecutor(std::filesystem::path program = {});

  const char* name() const override { return "local"; }
  Result<std::string> Start(const std::filesystem::path& attempt_dir,
                            const JobResources& resources) override;
  Result<bool> Running(const std::string& handle) override;
  Status Stop(const std::string& handle, bool cancel) override;

 private:
  // Reaps supervisors this process started that have ended (they are its
  // children until it exits).
  void ReapEnded();

  std::filesystem::path program_;
  std::mutex mutex_;
  std::set<pid_t> children_;  // GUARDED_BY(mutex_)
};

// "pid:starttime" of a live process, kNotFound when `pid` is gone (or a zombie).
Result<std::string> ProcessHandle(pid_t pid);

}  // namespace orrery
