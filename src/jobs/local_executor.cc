#include "jobs/local_executor.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/files.h"

extern char** environ;

namespace orrery {
namespace {

// The state letter and the start time (clock ticks since boot) from
// /proc/<pid>/stat; false when there is no such process.
bool ReadStat(pid_t pid, char* state, std::string* start_time) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  size_t paren = line.rfind(')');  // the command name may hold spaces and parens
  if (paren == std::string::npos) return false;
  std::istringstream fields(line.substr(paren + 2));
  std::string field;
  // Field 3 is the state; field 22 the start time.
  for (int index = 3; index <= 22 && fields >> field; ++index) {
    if (index == 3) *state = field.empty() ? '?' : field[0];
    if (index == 22) {
      *start_time = field;
      return true;
    }
  }
  return false;
}

// (pid, start time) of "pid:starttime".
Result<std::pair<pid_t, std::string>> ParseHandle(const std::string& handle) {
  size_t colon = handle.find(':');
  pid_t pid = 0;
  if (colon != std::string::npos) {
    std::from_chars(handle.data(), handle.data() + colon, pid);
  }
  if (pid <= 0) return Internal("bad local job handle '" + handle + "'");
  return std::make_pair(pid, handle.substr(colon + 1));
}

}  // namespace

Result<std::string> ProcessHandle(pid_t pid) {
  char state = '?';
  std::string start;
  if (!ReadStat(pid, &state, &start) || state == 'Z' || state == 'X') {
    return NotFound("process " + std::to_string(pid) + " is gone");
  }
  return std::to_string(pid) + ":" + start;
}

LocalExecutor::LocalExecutor(std::filesystem::path program) : program_(std::move(program)) {
  if (program_.empty()) {
    std::error_code error;
    program_ = std::filesystem::read_symlink("/proc/self/exe", error).parent_path() /
               "orrery-job-supervisor";
  }
}

Result<std::string> LocalExecutor::Start(const std::filesystem::path& attempt_dir,
                                         const JobResources& /*resources: the queue's*/) {
  ReapEnded();
  std::string err_path = (attempt_dir / "supervisor.err").string();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0640);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  // A session of its own (no signal for the server's terminal or group
  // reaches it), default dispositions and an empty mask.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &all);
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::string program = program_.string(), dir = attempt_dir.string();
  std::vector<char*> argv = {program.data(), dir.data(), nullptr};
  pid_t pid = 0;
  int rc = posix_spawn(&pid, program.c_str(), &actions, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (rc != 0) {
    errno = rc;
    return ErrnoStatus("start the job supervisor " + program);
  }
  {
    std::lock_guard lock(mutex_);
    children_.insert(pid);
  }
  Result<std::string> handle = ProcessHandle(pid);
  if (!handle.ok()) return Internal("the job supervisor exited at once (see " + err_path + ")");
  return handle;
}

void LocalExecutor::ReapEnded() {
  std::lock_guard lock(mutex_);
  for (auto it = children_.begin(); it != children_.end();) {
    int status = 0;
    pid_t reaped = ::waitpid(*it, &status, WNOHANG);
    if (reaped == *it || (reaped < 0 && errno == ECHILD)) {
      it = children_.erase(it);
    } else {
      ++it;
    }
  }
}

Result<bool> LocalExecutor::Running(const std::string& handle) {
  ReapEnded();
  ASSIGN_OR_RETURN(auto parsed, ParseHandle(handle));
  Result<std::string> now = ProcessHandle(parsed.first);
  return now.ok() && *now == handle;
}

Status LocalExecutor::Stop(const std::string& handle, bool cancel) {
  ASSIGN_OR_RETURN(auto parsed, ParseHandle(handle));
  Result<std::string> now = ProcessHandle(parsed.first);
  if (!now.ok() || *now != handle) return Status::Ok();  // ended: nothing to stop
  if (::kill(parsed.first, cancel ? SIGUSR1 : SIGTERM) != 0 && errno != ESRCH) {
    return ErrnoStatus("signal the job supervisor");
  }
  return Status::Ok();
}

}  // namespace orrery
