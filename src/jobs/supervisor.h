// The supervisor of one job attempt: a small process of its own
// (`orrery-job-supervisor DIR`, supervisor_main.cc, started by an executor),
// so that the hub can restart, or be killed, while the job runs on.
//
// It reads DIR/plan.json (attempt_plan.h), starts the command in the
// sandbox (sandbox/sandbox.h) with the job's directories bound, copies the
// job's stdout and stderr into the job's log (bounded_log.h), enforces the
// wall time, and writes DIR/status.json when the job runs and when it ends.
//
// Signals it understands (from the hub, or Slurm's scancel):
//   SIGTERM  halt: SIGTERM to the job (again each second, for a job that
//            was still installing its handler), SIGKILL after the plan's
//            grace period; the attempt ends "halted" (the checkpoint is kept);
//   SIGUSR1  cancel: the same, but it ends "cancelled";
//   SIGINT, SIGHUP: as SIGTERM.
// When the supervisor itself is killed, the job dies with it (the sandbox
// ties it to its parent) and no final status is written: the hub sees the
// attempt as lost and restarts it (docs/jobs.md, faults).
//
// How the command is found: an absolute path is used as it is (it must
// exist on this machine: the sandbox shows the host's /usr); a bare name is
// looked up in /usr/local/bin, /usr/bin and /bin; a relative path is taken
// in the code directory. One that is not found ends the attempt "failed"
// with "command not found", without starting anything.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/status.h"

namespace orrery {

// Runs the attempt in `attempt_dir` to its end; the process's exit code: 0
// when a final status was written (whatever the job's outcome), 1 when the
// plan could not be read or the status not written.
int RunSupervisor(const std::filesystem::path& attempt_dir);

// command[0] as the sandbox sees it (see above); kNotFound "command not
// found: X" when there is no such program. `code_dir` is the host directory
// the sandbox shows at /servable.
Result<std::string> ResolveJobProgram(const std::string& program,
                                      const std::filesystem::path& code_dir);

}  // namespace orrery
