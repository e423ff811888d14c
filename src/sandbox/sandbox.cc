// Sandboxed worker processes. The guarantees are listed in sandbox.h; this
// file says why it is built the way it is.
//
// - Every fork happens on one long-lived "launcher" thread. bwrap's
//   --die-with-parent and our PR_SET_PDEATHSIG fire when the *thread* that
//   forked the process exits, not the process: forking from a model-manager
//   load thread or a restart thread that later ends would kill the worker.
// - The server is multi-threaded, so between fork and exec the child only
//   makes async-signal-safe calls: argv, envp, descriptors, rlimits and the
//   seccomp program are all prepared before fork (ChildPlan), and uid
//   changes use raw syscalls (glibc's setuid() signals sibling threads).
// - The seccomp program is generated with libseccomp before fork and
//   exported as raw BPF: in fallback mode the child loads it with prctl();
//   under bwrap it is handed over with --seccomp so that bwrap applies it
//   after its own set-up (bwrap needs netlink to bring up the loopback of the
//   new network namespace, which our filter would refuse).
#include "sandbox/sandbox.h"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <system_error>
#include <thread>

#include "sandbox/pids_limit.h"
#include "core/log.h"

namespace orrery {
namespace {

namespace fs = std::filesystem;

constexpr uid_t kNobody = 65534;
constexpr const char* kBwrap = "/usr/bin/bwrap";
constexpr int kFirstInheritedFd = 3;  // the caller's descriptors: 3, 4, 5
constexpr int kExtraFd = 6;   // bwrap: the seccomp program; fallback: the scratch dir
constexpr int kFirstWritableFd = 7;  // fallback: the read-write binds, 7, 8, 9
constexpr int kHighFd = 10;   // sources are moved at or above this before fork

// ---------------------------------------------------------------- the child

// Everything the child needs between fork and exec, prepared beforehand.
struct ChildPlan {
  std::string exec_path;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::vector<std::pair<int, int>> fds;  // (source >= kHighFd, target < kHighFd)
  std::vector<std::pair<int, rlim_t>> limits;
  int chdir_fd = -1;  // fchdir here, then chdir(chdir_rel)
  std::string chdir_rel;
  bool switch_uid = false;
  int cgroup_fd = -1;  // >= kHighFd: the child writes its pid here (cgroup.procs)
  const std::vector<sock_filter>* seccomp = nullptr;  // loaded by the child itself

  // Filled by Freeze(): the pointer arrays execve() takes.
  std::vector<char*> argv, envp;
  sock_fprog prog{};
  pid_t parent = 0;
  void Freeze() {
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (std::string& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    if (seccomp) {
      prog.len = static_cast<unsigned short>(seccomp->size());
      prog.filter = const_cast<sock_filter*>(seccomp->data());
    }
    parent = ::getpid();
  }
};

// Runs in the forked child: async-signal-safe calls only. On failure it
// writes {stage, errno} to `err_fd` and exits 127.
[[noreturn]] void RunChild(const ChildPlan& p, int err_fd) {
  auto fail = [err_fd](int stage) {
    int report[2] = {stage, errno};
    ssize_t ignored = ::write(err_fd, report, sizeof(report));
    (void)ignored;
    ::_exit(127);
  };
  // Dispositions set to SIG_IGN and the signal mask survive exec: reset them.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);  // NOLINT(concurrency-mt-unsafe): one thread here

  if (::setsid() < 0) fail(1);
  if (p.cgroup_fd >= 0) {  // first: everything the worker starts is counted
    char digits[16];
    int n = 0;
    for (pid_t self = ::getpid(); self > 0 && n < 16; self /= 10)
      digits[15 - n++] = '0' + self % 10;
    if (::write(p.cgroup_fd, digits + 16 - n, n) != n) fail(9);
  }
  for (auto [source, target] : p.fds) {
    if (::dup2(source, target) < 0) fail(2);  // the copy has FD_CLOEXEC cleared
  }
  // Close everything else but the error pipe (close-on-exec): the low
  // numbers the plan does not fill (fewer descriptors handed down), then
  // the rest.
  for (int fd = 3; fd < kHighFd; ++fd) {
    bool target = false;
    for (auto [source, mapped] : p.fds) target = target || mapped == fd;
    if (!target) ::close(fd);
  }
  if (::syscall(SYS_close_range, kHighFd, err_fd - 1, 0) != 0 ||
      ::syscall(SYS_close_range, err_fd + 1, ~0U, 0) != 0) {
    for (int fd = kHighFd; fd < 65536; ++fd) {
      if (fd != err_fd) ::close(fd);
    }
  }
  for (auto [resource, value] : p.limits) {
    rlimit limit{value, value};
    if (::setrlimit(resource, &limit) != 0) fail(3);
  }
  if (p.chdir_fd >= 0 && (::fchdir(p.chdir_fd) != 0 || ::chdir(p.chdir_rel.c_str()) != 0)) fail(4);
  if (p.switch_uid) {
    if (::syscall(SYS_setgroups, 0, nullptr) != 0 ||
        ::syscall(SYS_setresgid, kNobody, kNobody, kNobody) != 0 ||
        ::syscall(SYS_setresuid, kNobody, kNobody, kNobody) != 0) {
      fail(5);
    }
  }
  // After the uid change: changing credentials clears the death signal.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(6);
  if (::getppid() != p.parent) ::_exit(126);  // the server died already
  if (p.seccomp) {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &p.prog) != 0) {
      fail(7);
    }
  }
  ::execve(p.exec_path.c_str(), p.argv.data(), p.envp.data());
  fail(8);
  ::_exit(127);  // not reached: fail() exits
}

const char* StageName(int stage) {
  switch (stage) {
    case 1: return "setsid";
    case 2: return "dup2";
    case 3: return "setrlimit";
    case 4: return "chdir";
    case 5: return "setuid 65534";
    case 6: return "prctl(PR_SET_PDEATHSIG)";
    case 7: return "seccomp";
    case 8: return "exec";
    case 9: return "join the pids cgroup";
  }
  return "?";
}

// The thread that forks every worker (see the file comment). Never exits.
class Launcher {
 public:
  static Launcher& Get() {
    static Launcher* launcher = new Launcher();  // never destroyed: used until exit
    return *launcher;
  }

  // Forks and execs `plan` on the launcher thread; returns the child's pid
  // once exec succeeded.
  Result<pid_t> Spawn(ChildPlan& plan) {
    Request request;
    request.plan = &plan;
    std::unique_lock lock(mutex_);
    queue_.push_back(&request);
    cv_.notify_all();
    cv_.wait(lock, [&] { return request.done; });
    if (!request.status.ok()) return request.status;
    return request.pid;
  }

 private:
  struct Request {
    ChildPlan* plan = nullptr;
    bool done = false;
    pid_t pid = 0;
    Status status;
  };

  Launcher() {
    std::thread([this] { Loop(); }).detach();
  }

  void Loop() {
    std::unique_lock lock(mutex_);
    while (true) {
      cv_.wait(lock, [&] { return !queue_.empty(); });
      Request* request = queue_.front();
      queue_.pop_front();
      lock.unlock();
      request->status = Fork(*request->plan, &request->pid);
      lock.lock();
      request->done = true;
      cv_.notify_all();
    }
  }

  static Status Fork(ChildPlan& plan, pid_t* pid) {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe");
    UniqueFd read_end(pipe_fds[0]);
    UniqueFd write_end(::fcntl(pipe_fds[1], F_DUPFD_CLOEXEC, kHighFd));
    ::close(pipe_fds[1]);
    if (!write_end.valid()) return ErrnoStatus("fcntl");
    plan.Freeze();
    pid_t child = ::fork();
    if (child < 0) return ErrnoStatus("fork");
    if (child == 0) RunChild(plan, write_end.get());
    write_end = UniqueFd();
    int report[2] = {0, 0};
    ssize_t n;
    do {
      n = ::read(read_end.get(), report, sizeof(report));
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      *pid = child;
      return Status::Ok();
    }
    int status;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    return Unavailable(std::string("cannot start worker: ") + StageName(report[0]) + " " +
                       plan.exec_path + ": " + std::generic_category().message(report[1]));
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Request*> queue_;  // GUARDED_BY(mutex_)
};

// Adds `fd` to the plan as `target`, through a copy at or above kHighFd
// (kept alive by `holder` until the spawn is done).
Status MapFd(ChildPlan& plan, std::vector<UniqueFd>& holder, int fd, int target) {
  UniqueFd copy(::fcntl(fd, F_DUPFD_CLOEXEC, kHighFd));
  if (!copy.valid()) return ErrnoStatus("fcntl(F_DUPFD)");
  plan.fds.emplace_back(copy.get(), target);
  holder.push_back(std::move(copy));
  return Status::Ok();
}

// ---------------------------------------------------------------- seccomp

// The filter as raw BPF (see sandbox.h for the rules). Built once per
// variant and kept for the life of the process.
Result<const std::vector<sock_filter>*> SeccompProgram(bool allow_network, bool fallback) {
  static std::mutex mutex;
  static std::map<std::pair<bool, bool>, std::vector<sock_filter>>* cache =
      new std::map<std::pair<bool, bool>, std::vector<sock_filter>>();
  std::lock_guard lock(mutex);
  auto key = std::make_pair(allow_network, fallback);
  if (auto it = cache->find(key); it != cache->end()) return &it->second;

  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return Unavailable("seccomp_init failed");
  int rc = 0;
  if (allow_network) {
    // The kernel reads the domain as an int: compare the low 32 bits only.
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1,
                           SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, AF_VSOCK));
  } else {
    // 64-bit "not equal" errs on the safe side for junk in the high bits.
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1,
                           SCMP_A0(SCMP_CMP_NE, AF_UNIX));
  }
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_setup), 0);
  if (fallback) {
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setsid), 0);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setpgid), 0);
  }
  std::string bpf;
  if (rc == 0) {
    UniqueFd memfd(::memfd_create("orrery-seccomp", MFD_CLOEXEC));
    if (memfd.valid() && seccomp_export_bpf(ctx, memfd.get()) == 0) {
      off_t size = ::lseek(memfd.get(), 0, SEEK_END);
      bpf.resize(size > 0 ? static_cast<size_t>(size) : 0);
      if (::pread(memfd.get(), bpf.data(), bpf.size(), 0) != static_cast<ssize_t>(bpf.size())) {
        bpf.clear();
      }
    }
  }
  seccomp_release(ctx);
  if (bpf.empty() || bpf.size() % sizeof(sock_filter) != 0) {
    return Unavailable("cannot build the worker seccomp filter");
  }
  std::vector<sock_filter> program(bpf.size() / sizeof(sock_filter));
  std::memcpy(program.data(), bpf.data(), bpf.size());
  return &cache->emplace(key, std::move(program)).first->second;
}

// A fresh descriptor holding `program`, for bwrap --seccomp (it reads to EOF).
Result<UniqueFd> SeccompFd(const std::vector<sock_filter>& program) {
  UniqueFd fd(::memfd_create("orrery-seccomp", MFD_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("memfd_create");
  RETURN_IF_ERROR(
      WriteAll(fd.get(), program.data(), program.size() * sizeof(sock_filter), "seccomp memfd"));
  if (::lseek(fd.get(), 0, SEEK_SET) != 0) return ErrnoStatus("lseek");
  return fd;
}

// ---------------------------------------------------------------- plans

std::vector<std::string> BaseEnv(const std::map<std::string, std::string>& extra,
                                 const std::string& servable, const std::string& tmp,
                                 const char* isolation) {
  const char* lang = std::getenv("LANG");  // NOLINT(concurrency-mt-unsafe): no setenv in Orrery
  std::map<std::string, std::string> env = {
      {"PATH", "/usr/bin:/bin"},
      {"HOME", tmp},
      {"TMPDIR", tmp},
      {"LANG", lang != nullptr && *lang != '\0' ? lang : "C.UTF-8"},
      {"OPENBLAS_NUM_THREADS", "1"},
      {"OMP_NUM_THREADS", "1"},
      {"PYTHONDONTWRITEBYTECODE", "1"},
      {"ORRERY_SERVABLE_DIR", servable},
      {"ORRERY_ISOLATION", isolation},
  };
  for (const auto& [key, value] : extra) env[key] = value;
  std::vector<std::string> out;
  for (const auto& [key, value] : env) out.push_back(key + "=" + value);
  return out;
}

// The bwrap flags shared by the probe and the real launch (everything but
// the servable, the binds and the command).
std::vector<std::string> BwrapArgs(bool allow_network) {
  // --as-pid-1: the worker itself is the pid namespace's init and bwrap's
  // monitor waits for it directly. With bwrap's own init, the monitor exits
  // as soon as the init reports the worker's exit, orphaning the init (a
  // zombie left to the host's init).
  std::vector<std::string> a = {kBwrap, "--unshare-all"};
  if (allow_network) a.push_back("--share-net");
  for (const char* flag :
       {"--unshare-user", "--disable-userns", "--uid", "65534", "--gid", "65534", "--cap-drop",
        "ALL", "--die-with-parent", "--new-session", "--as-pid-1", "--ro-bind", "/usr", "/usr"}) {
    a.emplace_back(flag);
  }
  // /bin, /lib... are symlinks into /usr on merged-/usr hosts, real
  // directories elsewhere: reproduce whichever this host has.
  for (const char* dir : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    std::error_code error;
    fs::file_status status = fs::symlink_status(dir, error);
    if (error || !fs::exists(status)) continue;
    if (fs::is_symlink(status)) {
      a.insert(a.end(), {"--symlink", fs::read_symlink(dir, error).string(), dir});
    } else {
      a.insert(a.end(), {"--ro-bind", dir, dir});
    }
  }
  std::vector<const char*> etc = {"/etc/alternatives", "/etc/ld.so.cache"};
  if (allow_network) {
    etc.insert(etc.end(), {"/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/host.conf",
                           "/etc/gai.conf", "/etc/ssl", "/etc/ca-certificates"});
  }
  for (const char* path : etc) a.insert(a.end(), {"--ro-bind-try", path, path});
  a.insert(a.end(), {"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--seccomp",
                     std::to_string(kExtraFd)});
  return a;
}

std::vector<std::pair<int, rlim_t>> Limits(const SandboxOptions& options) {
  std::vector<std::pair<int, rlim_t>> limits = {
      {RLIMIT_CPU, options.cpu_seconds}, {RLIMIT_NOFILE, options.open_files}, {RLIMIT_CORE, 0}};
  if (options.memory_bytes != 0) limits.push_back({RLIMIT_AS, options.memory_bytes});
  return limits;
}

// Recreates `source` under `target` with hard links (copies across file
// systems), directories 0555: the fallback worker's read-only view.
Status Farm(const fs::path& source, const fs::path& target) {
  struct stat info;
  if (::lstat(source.c_str(), &info) != 0) return ErrnoStatus("stat " + source.string());
  if (S_ISLNK(info.st_mode)) {
    std::error_code error;
    fs::create_symlink(fs::read_symlink(source, error), target, error);
    return error ? FileSystemStatus("symlink " + target.string(), error) : Status::Ok();
  }
  if (S_ISREG(info.st_mode)) {
    if (::link(source.c_str(), target.c_str()) == 0) return Status::Ok();
    std::error_code error;
    fs::copy_file(source, target, error);
    if (error) return FileSystemStatus("copy " + source.string(), error);
    ::chmod(target.c_str(), 0444);
    return Status::Ok();
  }
  if (!S_ISDIR(info.st_mode)) return Status::Ok();  // no devices, fifos, sockets
  if (::mkdir(target.c_str(), 0755) != 0) return ErrnoStatus("mkdir " + target.string());
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(source, error)) {
    RETURN_IF_ERROR(Farm(entry.path(), target / entry.path().filename()));
  }
  if (error) return FileSystemStatus("list " + source.string(), error);
  ::chmod(target.c_str(), 0555);
  return Status::Ok();
}

// `path` with its owner (and every file's under it) made `uid`, links not followed.
Status ChownTree(const fs::path& path, uid_t uid) {
  if (::lchown(path.c_str(), uid, uid) != 0) return ErrnoStatus("chown " + path.string());
  std::error_code error;
  if (!fs::is_directory(fs::symlink_status(path, error))) return Status::Ok();
  for (auto it = fs::recursive_directory_iterator(path, error);
       !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (::lchown(it->path().c_str(), uid, uid) != 0) return ErrnoStatus("chown " + it->path().string());
  }
  return error ? FileSystemStatus("list " + path.string(), error) : Status::Ok();
}

// Whether `path` is `dir` or lies under it; `rest` gets what follows `dir`.
bool Under(const std::string& path, const std::string& dir, std::string* rest) {
  if (path != dir && path.rfind(dir + "/", 0) != 0) return false;
  *rest = path.substr(dir.size());
  return true;
}

// Where the fallback sandbox's process finds a sandbox path (an argument or
// an environment value): /servable and the read-only binds (and the
// directories above those) under the scratch directory, descriptor 6; the
// read-write binds through their own descriptors, 7, 8, 9. Other values are
// returned as they are.
std::string FallbackPath(const std::string& value, const SandboxSpec& spec) {
  std::string scratch = "/proc/self/fd/" + std::to_string(kExtraFd);
  std::string rest;
  if (Under(value, "/servable", &rest)) return scratch + "/servable" + rest;
  for (size_t i = 0; i < spec.read_write_binds.size(); ++i) {
    if (Under(value, spec.read_write_binds[i].second, &rest)) {
      return "/proc/self/fd/" + std::to_string(kFirstWritableFd + static_cast<int>(i)) + rest;
    }
  }
  for (const auto& [host, inside] : spec.read_only_binds) {
    if (Under(value, inside, &rest) || (value.size() > 1 && Under(inside, value, &rest))) {
      return scratch + "/binds" + value;
    }
  }
  return value;
}

// The fallback's per-life scratch directory (see sandbox.h): servable/,
// binds/<destination>, tmp/. Arguments naming a path under /servable or a
// bind destination are rewritten to its place under /proc/self/fd/6 (kExtraFd).
Result<TempDir> MakeScratch(const SandboxSpec& spec, bool switch_uid) {
  fs::path root = spec.sandbox.scratch_root.empty() ? fs::temp_directory_path() / "orrery-workers"
                                                    : spec.sandbox.scratch_root;
  RETURN_IF_ERROR(EnsureDir(root, 0700));
  ASSIGN_OR_RETURN(TempDir dir, TempDir::Create(root, "worker-"));
  if (::chmod(dir.path().c_str(), 0755) != 0) return ErrnoStatus("chmod " + dir.path().string());
  RETURN_IF_ERROR(Farm(spec.servable_dir, dir.path() / "servable"));
  for (const auto& [host, inside] : spec.read_only_binds) {
    fs::path relative = fs::path(inside).relative_path();
    fs::path target = dir.path() / "binds" / relative;
    std::error_code error;
    fs::create_directories(target.parent_path(), error);
    if (error) return FileSystemStatus("mkdir " + target.parent_path().string(), error);
    RETURN_IF_ERROR(Farm(host, target));
  }
  for (const auto& [host, inside] : spec.read_write_binds) {
    // Writable by the sandbox's uid, and reached through its descriptor
    // (FallbackPath): its parents stay closed to that uid.
    if (switch_uid) RETURN_IF_ERROR(ChownTree(host, kNobody));
  }
  fs::path tmp = dir.path() / "tmp";
  if (::mkdir(tmp.c_str(), 0700) != 0) return ErrnoStatus("mkdir " + tmp.string());
  if (switch_uid && ::chown(tmp.c_str(), kNobody, kNobody) != 0) {
    return ErrnoStatus("chown " + tmp.string());
  }
  return dir;
}

// Pids of the children of `pid` (all its threads).
std::vector<pid_t> ChildrenOf(pid_t pid) {
  std::vector<pid_t> out;
  std::error_code error;
  fs::path tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const fs::directory_entry& task : fs::directory_iterator(tasks, error)) {
    std::ifstream in(task.path() / "children");
    pid_t child;
    while (in >> child) out.push_back(child);
  }
  return out;
}

// ---------------------------------------------------------------- probe

std::string RunProbe() {
  if (::access(kBwrap, X_OK) != 0) return std::string(kBwrap) + " not found";
  auto program = SeccompProgram(false, false);
  if (!program.ok()) return program.status().message();
  auto seccomp = SeccompFd(**program);
  if (!seccomp.ok()) return seccomp.status().message();
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return "pipe failed";
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  ChildPlan plan;
  plan.exec_path = kBwrap;
  plan.args = BwrapArgs(false);
  plan.args.insert(plan.args.end(), {"--", "/usr/bin/true"});
  plan.env = {"PATH=/usr/bin:/bin"};
  std::vector<UniqueFd> holder;
  Status mapped = MapFd(plan, holder, devnull.get(), 0);
  if (mapped.ok()) mapped = MapFd(plan, holder, write_end.get(), 1);
  if (mapped.ok()) mapped = MapFd(plan, holder, write_end.get(), 2);
  if (mapped.ok()) mapped = MapFd(plan, holder, seccomp->get(), kExtraFd);
  if (!mapped.ok()) return mapped.message();
  Result<pid_t> pid = Launcher::Get().Spawn(plan);
  holder.clear();
  write_end = UniqueFd();
  if (!pid.ok()) return pid.status().message();
  std::string output;
  char buffer[512];
  pollfd p{read_end.get(), POLLIN, 0};
  while (output.size() < 4096 && ::poll(&p, 1, 10'000) > 0) {
    ssize_t n = ::read(read_end.get(), buffer, sizeof(buffer));
    if (n <= 0) break;
    output.append(buffer, static_cast<size_t>(n));
  }
  // The pipe closes while bwrap exits: give it time to become reapable.
  int status = 0;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (::waitpid(*pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > until) {
      ::kill(-*pid, SIGKILL);
      ::waitpid(*pid, &status, 0);
      return "bwrap probe timed out";
    }
    ::usleep(1000);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
  return "bwrap failed: " + (output.empty() ? "status " + std::to_string(status) : output);
}

}  // namespace

IsolationInfo ProbeIsolation(bool use_bubblewrap) {
  static std::once_flag once;
  static std::string* problem = new std::string();
  IsolationInfo info;
  info.switch_uid = ::geteuid() == 0;
  if (!use_bubblewrap) {
    info.bwrap_problem = "disabled by configuration";
    return info;
  }
  std::call_once(once, [] {
    *problem = RunProbe();
    if (!problem->empty()) LogWarning("worker sandbox: bubblewrap unusable: " + *problem);
  });
  if (problem->empty()) {
    info.mode = IsolationMode::kBubblewrap;
    info.switch_uid = false;
  } else {
    info.bwrap_problem = *problem;
  }
  return info;
}

std::string DescribeIsolation(const SandboxOptions& options) {
  IsolationInfo info = ProbeIsolation(options.use_bubblewrap);
  std::ostringstream out;
  if (info.mode == IsolationMode::kBubblewrap) {
    out << "bubblewrap (user, pid, net, ipc, uts, cgroup, mount namespaces; uid 65534 inside; "
           "only /usr, the servable and the worker program mounted; no network unless allowed), "
           "seccomp (no sockets but AF_UNIX unless network is allowed, no io_uring)";
  } else {
    out << "no namespaces (bwrap unusable: " << info.bwrap_problem << "), ";
    if (info.switch_uid) {
      out << "separate uid 65534 (servable hard-linked into a private scratch dir)";
    } else {
      out << "same uid as the server (not root: no file-system isolation)";
    }
    out << ", seccomp (no sockets but AF_UNIX unless network is allowed, no io_uring, "
           "no setsid/setpgid)";
  }
  out << ", rlimits (memory " << (options.memory_bytes >> 20) << " MiB, cpu " << options.cpu_seconds
      << " s, " << options.open_files << " files)";
  PidsLimitInfo pids = ProbePidsLimit(
      ::geteuid() == 0 && (info.mode == IsolationMode::kBubblewrap || !info.switch_uid));
  if (pids.mode == PidsLimitMode::kNone) {
    out << ", no limit on processes (" << pids.detail << ")";
  } else {
    out << ", at most " << options.max_processes << " processes and threads ("
        << (pids.mode == PidsLimitMode::kCgroup ? "pids cgroup" : "RLIMIT_NPROC") << ")";
  }
  return out.str();
}

// ---------------------------------------------------------------- SandboxedProcess

Result<std::unique_ptr<SandboxedProcess>> SandboxedProcess::Launch(
    const SandboxSpec& spec, int log_fd, const std::vector<int>& inherited) {
  if (spec.command.empty()) return Internal("worker command is empty");
  if (inherited.size() > kMaxInheritedFds) return Internal("too many descriptors to hand down");
  std::error_code error;
  if (!fs::is_directory(spec.servable_dir, error)) {
    return Unavailable("the servable's files are missing on the server")
        .WithDetail("servable directory " + spec.servable_dir.string() + " is missing");
  }
  for (const auto& [host, inside] : spec.read_only_binds) {
    if (!fs::exists(host, error))
      return Unavailable("a worker file is missing on the server")
          .WithDetail("worker file " + host.string() + " is missing");
  }
  if (spec.read_write_binds.size() > kMaxReadWriteBinds) {
    return Internal("too many read-write binds");
  }
  for (const auto& [host, inside] : spec.read_write_binds) {
    if (!fs::is_directory(host, error)) {
      return Unavailable("a sandbox directory is missing on the server")
          .WithDetail("read-write directory " + host.string() + " is missing");
    }
  }
  IsolationInfo isolation = ProbeIsolation(spec.sandbox.use_bubblewrap);
  bool bwrap = isolation.mode == IsolationMode::kBubblewrap;
  ASSIGN_OR_RETURN(const std::vector<sock_filter>* program,
                   SeccompProgram(spec.allow_network, !bwrap));

  std::unique_ptr<SandboxedProcess> process(new SandboxedProcess());
  process->mode_ = isolation.mode;
  UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull.valid()) return ErrnoStatus("open /dev/null");

  ChildPlan plan;
  std::vector<UniqueFd> holder;
  RETURN_IF_ERROR(MapFd(plan, holder, devnull.get(), 0));
  RETURN_IF_ERROR(MapFd(plan, holder, log_fd, 1));
  RETURN_IF_ERROR(MapFd(plan, holder, log_fd, 2));
  for (size_t i = 0; i < inherited.size(); ++i) {
    RETURN_IF_ERROR(MapFd(plan, holder, inherited[i], kFirstInheritedFd + static_cast<int>(i)));
  }
  plan.limits = Limits(spec.sandbox);
  bool root_outside = ::geteuid() == 0 && (bwrap || !isolation.switch_uid);
  PidsLimitInfo pids = ProbePidsLimit(root_outside);
  UniqueFd cgroup_procs;
  if (pids.mode == PidsLimitMode::kCgroup) {
    ASSIGN_OR_RETURN(process->cgroup_, PidsCgroup::Create(spec.sandbox.max_processes));
    UniqueFd procs(::open(process->cgroup_->procs().c_str(), O_WRONLY | O_CLOEXEC));
    if (!procs.valid()) return ErrnoStatus("open " + process->cgroup_->procs().string());
    cgroup_procs = UniqueFd(::fcntl(procs.get(), F_DUPFD_CLOEXEC, kHighFd));
    if (!cgroup_procs.valid()) return ErrnoStatus("fcntl");
    plan.cgroup_fd = cgroup_procs.get();
  } else if (pids.mode == PidsLimitMode::kRlimit) {
    plan.limits.push_back({RLIMIT_NPROC, spec.sandbox.max_processes});
  }
  UniqueFd extra;
  if (bwrap) {
    ASSIGN_OR_RETURN(extra, SeccompFd(*program));
    plan.exec_path = kBwrap;
    plan.args = BwrapArgs(spec.allow_network);
    plan.args.insert(plan.args.end(), {"--ro-bind", spec.servable_dir.string(), "/servable"});
    for (const auto& [host, inside] : spec.read_only_binds) {
      plan.args.insert(plan.args.end(), {"--ro-bind", host.string(), inside});
    }
    for (const auto& [host, inside] : spec.read_write_binds) {
      plan.args.insert(plan.args.end(), {"--bind", host.string(), inside});
    }
    plan.args.insert(plan.args.end(), {"--chdir", "/servable", "--"});
    plan.args.insert(plan.args.end(), spec.command.begin(), spec.command.end());
    plan.env = BaseEnv(spec.env, "/servable", "/tmp", "bubblewrap");
  } else {
    std::vector<std::string> command = spec.command;
    if (command[0].empty() || command[0][0] != '/') {
      return Internal("worker command must start with an absolute path: " + command[0]);
    }
    for (std::string& arg : command) arg = FallbackPath(arg, spec);
    std::map<std::string, std::string> env = spec.env;
    for (auto& [key, value] : env) value = FallbackPath(value, spec);
    ASSIGN_OR_RETURN(TempDir scratch, MakeScratch(spec, isolation.switch_uid));
    for (size_t i = 0; i < spec.read_write_binds.size(); ++i) {
      const fs::path& host = spec.read_write_binds[i].first;
      UniqueFd dir(::open(host.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      if (!dir.valid()) return ErrnoStatus("open " + host.string());
      RETURN_IF_ERROR(MapFd(plan, holder, dir.get(), kFirstWritableFd + static_cast<int>(i)));
    }
    extra = UniqueFd(::open(scratch.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!extra.valid()) return ErrnoStatus("open " + scratch.path().string());
    process->scratch_.emplace(std::move(scratch));
    std::string fd_dir = "/proc/self/fd/" + std::to_string(kExtraFd);
    plan.exec_path = command[0];
    plan.args = std::move(command);
    plan.env = BaseEnv(env, fd_dir + "/servable", fd_dir + "/tmp", "fallback");
    plan.chdir_fd = kExtraFd;
    plan.chdir_rel = "servable";
    plan.switch_uid = isolation.switch_uid;
    plan.seccomp = program;
  }
  RETURN_IF_ERROR(MapFd(plan, holder, extra.get(), kExtraFd));
  ASSIGN_OR_RETURN(process->pid_, Launcher::Get().Spawn(plan));
  process->pidfd_ = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, process->pid_, 0)));
  return process;
}

SandboxedProcess::~SandboxedProcess() {
  bool reaped;
  {
    std::lock_guard lock(mutex_);
    reaped = reaped_ || pid_ == 0;
  }
  if (!reaped) Reap(std::chrono::milliseconds(0));
}

bool SandboxedProcess::WaitExited(std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (pidfd_.valid()) {
      pollfd p{pidfd_.get(), POLLIN, 0};
      int n = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
      if (n > 0) return true;
      if (n == 0 || errno != EINTR) return false;
      continue;
    }
    siginfo_t info{};
    if (::waitid(P_PID, pid_, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid_) {
      return true;
    }
    if (left.count() <= 0) return false;
    ::usleep(1000);
  }
}

bool SandboxedProcess::Exited() const {
  return WaitExited(std::chrono::milliseconds(0));
}

void SandboxedProcess::Kill() {
  std::lock_guard lock(mutex_);
  killed_ = true;
  SignalLocked(SIGKILL);
}

void SandboxedProcess::Signal(int signal) {
  std::lock_guard lock(mutex_);
  SignalLocked(signal);
}

void SandboxedProcess::SignalLocked(int signal) {
  if (reaped_ || pid_ == 0) return;
  bool signalled_inner = false;
  if (mode_ == IsolationMode::kBubblewrap) {
    for (pid_t child : ChildrenOf(pid_)) {
      // Pin the child with a pidfd, then check it is still ours: the pid
      // cannot be reused while bwrap's monitor has not reaped it.
      UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_open, child, 0)));
      std::vector<pid_t> again = ChildrenOf(pid_);
      if (std::find(again.begin(), again.end(), child) == again.end()) continue;
      int rc =
          fd.valid()
              ? static_cast<int>(::syscall(SYS_pidfd_send_signal, fd.get(), signal, nullptr, 0))
              : ::kill(child, signal);
      signalled_inner = signalled_inner || rc == 0;
    }
  }
  // Our child leads its own process group. Under bwrap, with no inner
  // process (yet, or any more), only SIGKILL goes to the monitor: another
  // signal would end the sandbox before its program could handle it.
  if (!signalled_inner && (mode_ == IsolationMode::kFallback || signal == SIGKILL)) {
    ::kill(-pid_, signal);
  }
}

std::string SandboxedProcess::Reap(std::chrono::milliseconds grace) {
  if (!WaitExited(grace)) {
    Kill();
    if (!WaitExited(std::chrono::seconds(2))) {
      std::lock_guard lock(mutex_);
      if (!reaped_) ::kill(-pid_, SIGKILL);  // bwrap's monitor did not exit: kill it too
    }
  }
  std::lock_guard lock(mutex_);
  if (reaped_) return ending_;
  // Fallback: what the process left running in its group dies with it, also
  // when it exited by itself (the unreaped leader keeps the group's id from
  // being reused). Under bwrap the pid namespace's end took them already.
  if (mode_ == IsolationMode::kFallback) ::kill(-pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
  if (WIFSIGNALED(status)) {
    ending_ = "signal " + std::to_string(WTERMSIG(status));
  } else if (mode_ == IsolationMode::kBubblewrap && code > 128 && code <= 128 + 64) {
    ending_ = "signal " + std::to_string(code - 128);
  } else {
    ending_ = "exit code " + std::to_string(code);
  }
  return ending_;
}

uint64_t SandboxedProcess::ResidentBytes() const {
  {
    std::lock_guard lock(mutex_);
    if (reaped_ || pid_ == 0) return 0;
  }
  static const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  uint64_t total = 0;
  std::vector<pid_t> pending = {pid_};
  std::set<pid_t> seen;
  while (!pending.empty() && seen.size() < 1024) {
    pid_t pid = pending.back();
    pending.pop_back();
    if (!seen.insert(pid).second) continue;
    std::ifstream statm("/proc/" + std::to_string(pid) + "/statm");
    uint64_t size = 0, resident = 0;
    if (statm >> size >> resident) total += resident * page;
    for (pid_t child : ChildrenOf(pid)) pending.push_back(child);
  }
  return total;
}

}  // namespace orrery
