// Executor: where a job attempt's supervisor (supervisor.h) runs. The local
// executor starts it as a process of its own on this machine; the Slurm
// executor submits it as a batch job. Either way the supervisor reads the
// attempt's plan.json and writes its status.json in the attempt directory,
// which the hub and the supervisor share; the executor only starts it,
// tells whether it still runs, and signals it.
//
// Thread-safety: implementations are safe to call from any thread.
#pragma once

#include <filesystem>
#include <string>

#include "core/status.h"
#include "jobs/job_spec.h"

namespace orrery {

class Executor {
 public:
  virtual ~Executor() = default;
  virtual const char* name() const = 0;

  // Starts the supervisor of the attempt whose plan.json is in `attempt_dir`;
  // returns the handle that finds it again (stored with the attempt, valid
  // across hub restarts).
  virtual Result<std::string> Start(const std::filesystem::path& attempt_dir,
                                    const JobResources& resources) = 0;
  // Whether the supervisor behind `handle` still runs. False once it ended,
  // whether it wrote a final status (the attempt ended) or not (it was lost).
  virtual Result<bool> Running(const std::string& handle) = 0;
  // Asks the supervisor to halt (SIGTERM) or cancel (SIGUSR1) its job. OK
  // when it no longer runs.
  virtual Status Stop(const std::string& handle, bool cancel) = 0;
};

}  // namespace orrery
