// Pids cgroups for worker processes (pids_limit.h). The server's own pids
// cgroup is found from /proc/self/cgroup and the mount table; ours go below
// it, so that a server confined by its operator stays confined.
#include "sandbox/pids_limit.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "core/files.h"
#include "core/log.h"

namespace orrery {
namespace {

namespace fs = std::filesystem;

constexpr const char* kParentPrefix = "orrery-";

struct Hierarchy {
  fs::path base;  // the server's own pids cgroup directory
  int version = 0;
};

std::vector<std::string> Split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, separator)) parts.push_back(part);
  return parts;
}

// The server's cgroup path for the pids controller (v1) or its unified
// path (v2), from /proc/self/cgroup.
std::optional<std::pair<int, std::string>> OwnCgroup() {
  std::ifstream in("/proc/self/cgroup");
  std::string line, unified;
  while (std::getline(in, line)) {
    std::vector<std::string> fields = Split(line, ':');
    if (fields.size() < 3) continue;
    std::string path = line.substr(fields[0].size() + fields[1].size() + 2);
    for (const std::string& controller : Split(fields[1], ',')) {
      if (controller == "pids") return std::make_pair(1, path);
    }
    if (fields[0] == "0" && fields[1].empty()) unified = path;
  }
  if (!unified.empty()) return std::make_pair(2, unified);
  return std::nullopt;
}

// Where the hierarchy of `version` is mounted, and the cgroup path of its
// mount root, from /proc/self/mountinfo.
std::optional<std::pair<fs::path, std::string>> MountOf(int version) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::vector<std::string> before = Split(line.substr(0, dash), ' ');
    std::vector<std::string> after = Split(line.substr(dash + 3), ' ');
    if (before.size() < 5 || after.size() < 3) continue;
    bool match = false;
    if (version == 2) {
      match = after[0] == "cgroup2";
    } else if (after[0] == "cgroup") {
      for (const std::string& option : Split(after[2], ',')) match = match || option == "pids";
    }
    if (match) return std::make_pair(fs::path(before[4]), before[3]);
  }
  return std::nullopt;
}

Status WriteText(const fs::path& path, const std::string& text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open " + path.string());
  return WriteAll(fd.get(), text.data(), text.size(), path.string());
}

bool Contains(const fs::path& file, const std::string& word) {
  std::ifstream in(file);
  std::string item;
  while (in >> item) {
    if (item == word) return true;
  }
  return false;
}

// Removes `dir` once the kernel lets it (its tasks may take a moment to go).
void RemoveCgroup(const fs::path& dir) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
    if (errno != EBUSY) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  LogWarning("worker sandbox: could not remove " + dir.string() + ": " + std::strerror(errno));
}

// Directories of servers that are gone: their workers are gone too.
void RemoveStale(const fs::path& base) {
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(base, error)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(kParentPrefix, 0) != 0) continue;
    pid_t pid = static_cast<pid_t>(std::atoi(name.c_str() + std::strlen(kParentPrefix)));
    if (pid <= 0 || pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    for (const fs::directory_entry& child : fs::directory_iterator(entry.path(), error)) {
      if (child.is_directory()) ::rmdir(child.path().c_str());
    }
    ::rmdir(entry.path().c_str());
  }
}

// Makes this server's parent directory; the reason when it cannot.
Result<fs::path> MakeParent() {
  std::optional<std::pair<int, std::string>> own = OwnCgroup();
  if (!own) return Unavailable("no pids cgroup in /proc/self/cgroup");
  auto [version, path] = *own;
  std::optional<std::pair<fs::path, std::string>> mount = MountOf(version);
  if (!mount) return Unavailable("the pids cgroup hierarchy is not mounted");
  auto [mountpoint, root] = *mount;
  if (root != "/" && path.rfind(root, 0) == 0) path = path.substr(root.size());
  fs::path base = mountpoint / fs::path(path).relative_path();
  if (version == 2 && !Contains(base / "cgroup.controllers", "pids")) {
    return Unavailable("cgroup v2 without the pids controller at " + base.string());
  }
  RemoveStale(base);
  fs::path parent = base / (kParentPrefix + std::to_string(::getpid()));
  if (::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoStatus("mkdir " + parent.string());
  }
  if (version == 2) {
    // Our workers' cgroups need the controller enabled on the way down.
    (void)WriteText(base / "cgroup.subtree_control", "+pids");
    RETURN_IF_ERROR(WriteText(parent / "cgroup.subtree_control", "+pids"));
  }
  if (!fs::exists(parent / "pids.max")) {
    ::rmdir(parent.c_str());
    return Unavailable("no pids.max in " + parent.string());
  }
  return parent;
}

std::mutex g_mutex;
std::optional<PidsLimitInfo> g_info;  // GUARDED_BY(g_mutex)
fs::path g_parent;                    // GUARDED_BY(g_mutex)
std::atomic<uint64_t> g_next{1};

// At exit the workers are gone (their cgroups with them): the parent goes
// too. A server that is killed leaves it to the next one's RemoveStale.
void RemoveParentAtExit() {
  std::lock_guard lock(g_mutex);
  if (!g_parent.empty()) ::rmdir(g_parent.c_str());
}

}  // namespace

PidsLimitInfo ProbePidsLimit(bool worker_is_root_outside) {
  std::lock_guard lock(g_mutex);
  if (g_info) return *g_info;
  PidsLimitInfo info;
  Result<fs::path> parent = ::geteuid() == 0 ? MakeParent() : Unavailable("the server is not root");
  if (parent.ok()) {
    g_parent = *parent;
    std::atexit(RemoveParentAtExit);
    info.mode = PidsLimitMode::kCgroup;
    info.detail = "pids cgroup under " + g_parent.string();
  } else if (!worker_is_root_outside && ::geteuid() == 0) {
    info.mode = PidsLimitMode::kRlimit;
    info.detail = "RLIMIT_NPROC, shared by the workers' uid (" + parent.status().message() + ")";
  } else {
    info.detail = parent.status().message();
    LogWarning("worker sandbox: no limit on a worker's processes: " + info.detail);
  }
  g_info = info;
  return info;
}

PidsCgroup::PidsCgroup(fs::path dir) : dir_(std::move(dir)), procs_(dir_ / "cgroup.procs") {}

Result<std::unique_ptr<PidsCgroup>> PidsCgroup::Create(uint64_t max_tasks) {
  fs::path parent;
  {
    std::lock_guard lock(g_mutex);
    parent = g_parent;
  }
  if (parent.empty()) return Internal("no pids cgroup was probed");
  fs::path dir = parent / ("w" + std::to_string(g_next.fetch_add(1)));
  if (::mkdir(dir.c_str(), 0755) != 0) return ErrnoStatus("mkdir " + dir.string());
  std::unique_ptr<PidsCgroup> cgroup(new PidsCgroup(dir));
  RETURN_IF_ERROR(WriteText(dir / "pids.max", std::to_string(max_tasks)));
  return cgroup;
}

PidsCgroup::~PidsCgroup() {
  RemoveCgroup(dir_);
}

}  // namespace orrery
