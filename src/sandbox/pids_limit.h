// A bound on the processes (and threads) of one worker's tree, so that one
// tenant's code cannot exhaust the host's process table (a fork bomb fails
// inside its worker with EAGAIN while everything else keeps running).
//
// How, chosen once per server process (ProbePidsLimit):
// - kCgroup: a pids cgroup per worker life, `pids.max` = the limit, made
//   under the server's own pids cgroup (cgroup v2 with the pids controller
//   available to it, or v1's pids hierarchy) in a directory
//   `orrery-<server pid>/`; the forked child joins it before exec, so every
//   process the worker starts (bwrap's included) counts. Removed when the
//   worker has been reaped; directories of servers that died are removed at
//   the next probe.
// - kRlimit: no cgroup can be made here, and workers run under a uid of
//   their own that is not root (the fallback sandbox of a root server,
//   uid 65534): RLIMIT_NPROC = the limit. All such workers share uid 65534,
//   so the bound is on all of them together.
// - kNone: neither (bubblewrap as root without a writable pids cgroup, whose
//   workers are uid 0 outside, or a server that is not root without
//   cgroups): no bound; the server logs a warning at start.
//
// Thread-safety: ProbePidsLimit and PidsCgroup::Create from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "core/status.h"

namespace orrery {

enum class PidsLimitMode { kCgroup, kRlimit, kNone };

struct PidsLimitInfo {
  PidsLimitMode mode = PidsLimitMode::kNone;
  std::string detail;  // kCgroup: "cgroup v1" or "cgroup v2"; kNone: why
};

// Probes once per process (later calls return the first answer);
// `worker_is_root_outside`: workers run as uid 0 as the kernel sees them.
PidsLimitInfo ProbePidsLimit(bool worker_is_root_outside);

// One worker life's pids cgroup; removes it on destruction (once its
// processes are gone). Not thread-safe.
class PidsCgroup {
 public:
  static Result<std::unique_ptr<PidsCgroup>> Create(uint64_t max_tasks);
  ~PidsCgroup();
  PidsCgroup(const PidsCgroup&) = delete;
  PidsCgroup& operator=(const PidsCgroup&) = delete;

  // The file the child writes its pid to (cgroup.procs).
  const std::filesystem::path& procs() const { return procs_; }

 private:
  explicit PidsCgroup(std::filesystem::path dir);
  std::filesystem::path dir_, procs_;
};

}  // namespace orrery
