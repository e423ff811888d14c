// Sandboxed processes for tenant code: how one is started, isolated,
// killed, reaped and measured. Serving's WorkerInstance
// (backends/worker/worker_instance.h) builds its frame protocol and
// supervision on top of this; training jobs will too. This layer knows
// nothing of frames or servables beyond the directory it mounts.
//
// What each isolation mode guarantees (chosen once per server process by
// ProbeIsolation; DescribeIsolation() prints the one in force):
//
// kBubblewrap (bwrap works on this host; the preferred mode):
// - own user, pid, net, ipc, uts, cgroup and mount namespaces; the worker is
//   uid/gid 65534 inside, with every capability dropped, no further user
//   namespaces (--disable-userns) and a new session (no TIOCSTI);
//   note: when the server runs as root, uid 65534 inside maps to uid 0
//   outside (bwrap maps the caller's uid), so what keeps host files out of
//   reach is that they are not mounted, not their modes;
// - the file system is a fresh tmpfs holding only: /usr (read-only, with
//   /bin, /lib, /lib64, /sbin as on the host), /etc/alternatives and
//   /etc/ld.so.cache (read-only; numpy finds its BLAS through them), a new
//   /proc and a minimal /dev, a private /tmp (tmpfs), the servable at
//   /servable (read-only, the working directory) and the spec's
//   read_only_binds. No data directory, no catalog, no other servable.
//   With allow_network, also /etc/resolv.conf, hosts, nsswitch.conf, ssl;
// - no network (only a private loopback) unless allow_network;
// - seccomp (passed to bwrap with --seccomp, applied just before the worker
//   program starts, after bwrap set up the namespaces, which needs netlink):
//   socket() fails with EACCES for every family but AF_UNIX (with
//   allow_network: only AF_VSOCK is refused; vsock is not namespaced, so on
//   a VM it would reach the hypervisor's services), io_uring_setup() fails
//   with EPERM (io_uring could create sockets behind seccomp's back);
// - the whole tree dies with the server (--die-with-parent) and with the
//   worker, which is its pid namespace's init (--as-pid-1; processes the
//   servable orphans are reaped only when the worker exits).
//
// kFallback (no usable bwrap: missing, no user namespaces, or disabled by
// SandboxOptions::use_bubblewrap):
// - a new session and process group; when the server runs as root, uid and
//   gid 65534 with no supplementary groups; otherwise the server's own uid,
//   i.e. no file-system isolation at all;
// - file-system isolation rests on uid 65534 and the data directory's modes
//   (0700 directories, so 65534 cannot reach blobs, the catalog or other
//   servables). The worker still needs its own servable, whose directory is
//   0700 too: it gets a per-life scratch directory (under
//   SandboxOptions::scratch_root, 0700 root-owned parents) holding hard
//   links to the servable's files and the read-only binds, plus a private
//   tmp, reachable only through descriptor 6 (/proc/self/fd/6/...). Every
//   world-readable host file (/etc, /usr, ...) stays readable;
// - all fallback workers share uid 65534, so they can signal each other;
//   the Python worker marks itself non-dumpable so that others cannot read
//   its /proc entries or memory;
// - seccomp (NO_NEW_PRIVS): the socket() and io_uring rules above, and
//   setsid()/setpgid() fail with EPERM so that no process leaves the group
//   the server kills; processes a servable forks are killed with that group
//   but are reaped by the host's init, not by the server.
// - PR_SET_PDEATHSIG: the worker dies with the server.
//
// Both modes: at most SandboxOptions::max_processes processes and threads
// in the worker's tree where the host allows a bound (pids_limit.h; the
// child joins its pids cgroup first thing after fork).
//
// Both modes, set in the forked child before exec: RLIMIT_AS =
// memory_bytes, RLIMIT_CPU = cpu_seconds, RLIMIT_NOFILE = open_files,
// RLIMIT_CORE = 0; descriptors 0 = /dev/null, 1 and 2 = the log pipe the
// caller passes (WorkerInstance drains it on a thread into the server's log,
// so a chatty worker never blocks), 3, 4, 5 = the descriptors the caller
// hands down (WorkerInstance: the worker's side of its frame channel,
// kWorkerChannel in frames.h); every other descriptor closed; an environment of PATH, HOME,
// TMPDIR, LANG, OPENBLAS_NUM_THREADS=1, OMP_NUM_THREADS=1, PYTHONDONTWRITEBYTECODE=1,
// ORRERY_SERVABLE_DIR (where the worker sees its servable), ORRERY_ISOLATION and the spec's env.
//
// Thread-safety: ProbeIsolation and SandboxedProcess::Launch from any thread.
// A SandboxedProcess: Kill(), ResidentBytes() and the accessors from any
// thread; Reap() from one thread at a time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/files.h"
#include "core/status.h"
#include "sandbox/pids_limit.h"
#include "sandbox/sandbox_options.h"

namespace orrery {

enum class IsolationMode { kBubblewrap, kFallback };

struct IsolationInfo {
  IsolationMode mode = IsolationMode::kFallback;
  std::string bwrap_problem;  // fallback: why bwrap is not used
  bool switch_uid = false;    // fallback: the server is root, workers run as 65534
};

// The isolation workers get here. Probes once per process, at the first
// call with use_bubblewrap (runs `bwrap <the sandbox flags> /usr/bin/true`);
// later calls return the cached answer.
IsolationInfo ProbeIsolation(bool use_bubblewrap);

// The isolation and limits sandboxed processes get here, in one line for
// the server's log at start.
std::string DescribeIsolation(const SandboxOptions& options);

// What to run in the sandbox.
struct SandboxSpec {
  // argv as seen inside the sandbox, e.g.
  // {"/usr/bin/python3", "/orrery/orrery_worker.py", "--entrypoint", "predict:predict"}.
  // command[0] must be an absolute path. In the fallback sandbox (no mount
  // namespace) arguments naming /servable/... or a read_only_binds
  // destination are rewritten to where the process finds them there
  // (/proc/self/fd/6/...); other sandbox paths are not.
  std::vector<std::string> command;
  // Extra read-only files or directories: host path -> path inside the
  // sandbox (e.g. python/orrery_worker.py -> /orrery/orrery_worker.py).
  std::vector<std::pair<std::filesystem::path, std::string>> read_only_binds;
  std::filesystem::path servable_dir;      // bound read-only at /servable, the working directory
  // Read-write directories (at most kMaxReadWriteBinds): host directory ->
  // path inside the sandbox (a training job's output and checkpoint). In the
  // fallback sandbox they are made the sandbox uid's (when it switches uid)
  // and reached through descriptors 7, 8, 9 (/proc/self/fd/7/...), their
  // parents staying closed; arguments and `env` values naming them are
  // rewritten there, as are those naming /servable, a read-only bind or a
  // directory above one.
  std::vector<std::pair<std::filesystem::path, std::string>> read_write_binds;
  std::map<std::string, std::string> env;  // added to a minimal environment
  bool allow_network = false;
  SandboxOptions sandbox;
};

// The most descriptors a process is handed besides 0, 1 and 2 (as 3, 4, 5).
constexpr size_t kMaxInheritedFds = 3;
constexpr size_t kMaxReadWriteBinds = 3;

// One sandboxed process: the process we forked (bwrap's monitor, or the
// program itself in fallback mode) and a pidfd. Owns them: the destructor
// kills the whole process tree and reaps it, so no zombie or orphan
// outlives the object.
class SandboxedProcess {
 public:
  // Starts spec.command in the sandbox; stdout and stderr go to `log_fd`;
  // `inherited` (at most kMaxInheritedFds) become its descriptors 3, 4, ...
  // (the caller keeps and closes its own copies). kUnavailable when the
  // process cannot be started (the message says why).
  static Result<std::unique_ptr<SandboxedProcess>> Launch(const SandboxSpec& spec, int log_fd,
                                                          const std::vector<int>& inherited);
  ~SandboxedProcess();
  SandboxedProcess(const SandboxedProcess&) = delete;
  SandboxedProcess& operator=(const SandboxedProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Becomes readable when the process exits; -1 where pidfds are unsupported.
  int pidfd() const { return pidfd_.get(); }
  IsolationMode mode() const { return mode_; }

  // SIGKILLs the whole tree. Under bwrap it kills the worker, the pid
  // namespace's init (taking every process of the namespace with it), and
  // lets bwrap's monitor reap it and exit: killing the monitor first would
  // orphan the worker, whose zombie would then be left to the host's init.
  // Idempotent; a no-op once reaped.
  void Kill();
  // Sends `signal` to the program: under bwrap to the pid namespace's init,
  // the program itself, which (as any pid namespace's init) receives only
  // the signals it installed a handler for (nothing is sent while bwrap has
  // not started it yet); in the fallback to its process group. A no-op once
  // reaped.
  void Signal(int signal);
  // Waits up to `grace` for the process to exit by itself, then Kill()s it
  // (escalating to the monitor if needed) and reaps it. Returns how it
  // ended: "exit code N" or "signal S" (under bwrap, exit codes 129..192
  // are reported as signals: bwrap turns a child's death by signal S into
  // exit code 128 + S).
  std::string Reap(std::chrono::milliseconds grace);
  // True once the process has exited (without reaping it).
  bool Exited() const;
  // Resident set of the whole process tree, in bytes.
  uint64_t ResidentBytes() const;

 private:
  SandboxedProcess() = default;
  bool WaitExited(std::chrono::milliseconds timeout) const;
  void SignalLocked(int signal);

  pid_t pid_ = 0;
  IsolationMode mode_ = IsolationMode::kFallback;
  UniqueFd pidfd_;
  std::optional<TempDir> scratch_;  // fallback: the per-life scratch directory
  std::unique_ptr<PidsCgroup> cgroup_;  // removed after the destructor reaped
  mutable std::mutex mutex_;        // orders Kill() against reaping
  bool reaped_ = false;             // GUARDED_BY(mutex_)
  bool killed_ = false;             // GUARDED_BY(mutex_)
  std::string ending_;              // GUARDED_BY(mutex_): Reap()'s answer once reaped
};

}  // namespace orrery
