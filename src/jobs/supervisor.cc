#include "jobs/supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <chrono>
#include <optional>

#include "core/clock.h"
#include "core/files.h"
#include "jobs/attempt_plan.h"
#include "jobs/bounded_log.h"
#include "sandbox/sandbox.h"

namespace orrery {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

bool IsProgram(const fs::path& path) {
  std::error_code error;
  return fs::is_regular_file(path, error) && ::access(path.c_str(), X_OK) == 0;
}

SandboxSpec SpecOf(const AttemptPlan& plan, const std::string& program) {
  SandboxSpec spec;
  spec.command = plan.command;
  spec.command[0] = program;
  spec.servable_dir = plan.code_dir;
  for (const auto& [name, dir] : plan.inputs) {
    spec.read_only_binds.push_back({dir, std::string(kJobInputsDir) + "/" + name});
  }
  spec.read_write_binds = {{plan.output_dir, kJobOutputDir},
                           {plan.checkpoint_dir, kJobCheckpointDir},
                           {plan.metrics_dir, kJobMetricsDir}};
  spec.env = plan.env;
  spec.allow_network = plan.network;
  spec.sandbox.use_bubblewrap = plan.use_bubblewrap;
  spec.sandbox.memory_bytes = static_cast<uint64_t>(plan.memory_bytes);
  spec.sandbox.cpu_seconds = static_cast<uint64_t>(plan.cpu_seconds);
  spec.sandbox.open_files = static_cast<uint64_t>(plan.open_files);
  spec.sandbox.max_processes = static_cast<uint64_t>(plan.max_processes);
  spec.sandbox.scratch_root = plan.scratch_root;
  return spec;
}

// Why the hub asked the attempt to stop, if it did.
enum class StopRequest { kNone, kHalt, kCancel };

// One attempt from launch to its end; fills `status` with the outcome.
class Attempt {
 public:
  Attempt(const AttemptPlan& plan, BoundedLog& log, int signal_fd)
      : plan_(plan), log_(log), signal_fd_(signal_fd) {}

  // Runs `process` (already started, its output on `output`) to its end.
  void Run(SandboxedProcess& process, UniqueFd output, AttemptStatus& status) {
    output_ = std::move(output);
    auto wall_deadline = Clock::now() + std::chrono::seconds(plan_.wall_time_s);
    std::optional<Clock::time_point> exited_at;
    while (true) {
      if (!exited_at && process.Exited()) exited_at = Clock::now();
      // After the exit, what is left in the pipe is read for a moment (a
      // background child may hold it open; Reap then ends that child).
      if (exited_at && (!output_.valid() || Clock::now() - *exited_at > std::chrono::seconds(1))) {
        break;
      }
      auto now = Clock::now();
      if (!exited_at && stop_ == StopRequest::kNone && !wall_exceeded_ && now >= wall_deadline) {
        wall_exceeded_ = true;
        log_.Note("[orrery] wall time of " + std::to_string(plan_.wall_time_s) +
                  " s exceeded: SIGTERM, then SIGKILL after " + std::to_string(plan_.halt_grace_s) +
                  " s");
        BeginStop(process);
      }
      if (!exited_at && kill_at_ && now >= *kill_at_) {
        process.Kill();
        kill_at_.reset();
      } else if (!exited_at && kill_at_ && now >= next_term_) {
        // Again each second of the grace: a job that installs its handler
        // late (the signal came while it started) still gets one.
        process.Signal(SIGTERM);
        next_term_ = now + std::chrono::seconds(1);
      }
      Wait(process, wall_deadline, exited_at.has_value());
    }
    std::string ending = process.Reap(std::chrono::milliseconds(0));
    Drain();
    status.ended_at_ms = NowUnixMillis();
    Decide(ending, status);
  }

 private:
  void BeginStop(SandboxedProcess& process) {
    process.Signal(SIGTERM);
    next_term_ = Clock::now() + std::chrono::seconds(1);
    if (!kill_at_) kill_at_ = Clock::now() + std::chrono::seconds(plan_.halt_grace_s);
  }

  // Waits for output, a signal, the exit or the next deadline (100 ms at most).
  void Wait(SandboxedProcess& process, Clock::time_point wall_deadline, bool exited) {
    auto until = Clock::now() + std::chrono::milliseconds(100);
    if (!wall_exceeded_ && stop_ == StopRequest::kNone) until = std::min(until, wall_deadline);
    if (kill_at_) until = std::min(until, *kill_at_);
    int timeout = static_cast<int>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count()));
    pollfd fds[3] = {{signal_fd_, POLLIN, 0}, {process.pidfd(), POLLIN, 0}, {output_.get(), POLLIN, 0}};
    int count = output_.valid() ? 3 : 2;
    if (::poll(fds, count, timeout) <= 0) return;
    // A stop asked for after the job exited changes nothing: it ended as it ended.
    if ((fds[0].revents & POLLIN) && !exited) OnSignal(process);
    if (count == 3 && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) ReadOutput();
  }

  void OnSignal(SandboxedProcess& process) {
    signalfd_siginfo info{};
    if (::read(signal_fd_, &info, sizeof info) != sizeof info) return;
    StopRequest asked = info.ssi_signo == SIGUSR1 ? StopRequest::kCancel : StopRequest::kHalt;
    if (stop_ == StopRequest::kCancel || stop_ == asked) return;
    bool first = stop_ == StopRequest::kNone;
    stop_ = asked;
    log_.Note(std::string("[orrery] ") + (asked == StopRequest::kCancel ? "cancel" : "halt") +
              " requested: SIGTERM to the job, SIGKILL after " +
              std::to_string(plan_.halt_grace_s) + " s");
    if (first) BeginStop(process);
  }

  // One read; closes the pipe at its end.
  void ReadOutput() {
    char buffer[65536];
    ssize_t n = ::read(output_.get(), buffer, sizeof buffer);
    if (n > 0) {
      log_.Write(std::string_view(buffer, static_cast<size_t>(n)));
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      output_ = UniqueFd();
    }
  }

  void Drain() {
    if (!output_.valid()) return;
    ::fcntl(output_.get(), F_SETFL, O_NONBLOCK);
    while (output_.valid()) ReadOutput();
  }

  void Decide(const std::string& ending, AttemptStatus& status) {
    status.state = "ended";
    if (stop_ == StopRequest::kCancel) {
      status.end = AttemptEnd::kCancelled;
      status.reason = ending;
    } else if (stop_ == StopRequest::kHalt) {
      status.end = AttemptEnd::kHalted;
      status.reason = ending;
    } else if (wall_exceeded_) {
      status.end = AttemptEnd::kFailed;
      status.reason = "wall time of " + std::to_string(plan_.wall_time_s) + " s exceeded (" +
                      ending + ")";
    } else if (ending == "exit code 0") {
      status.end = AttemptEnd::kCompleted;
      status.reason = ending;
    } else {
      status.end = AttemptEnd::kFailed;
      std::string last = log_.LastLine();
      status.reason = ending + (last.empty() ? "" : ": " + last);
    }
  }

  const AttemptPlan& plan_;
  BoundedLog& log_;
  int signal_fd_;
  UniqueFd output_;
  StopRequest stop_ = StopRequest::kNone;
  bool wall_exceeded_ = false;
  std::optional<Clock::time_point> kill_at_;
  Clock::time_point next_term_;
};

std::string Joined(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& word : words) out += (out.empty() ? "" : " ") + word;
  return out;
}

int Fail(const std::string& message) {
  ::dprintf(2, "orrery-job-supervisor: %s\n", message.c_str());
  return 1;
}

}  // namespace

Result<std::string> ResolveJobProgram(const std::string& program, const fs::path& code_dir) {
  if (program.rfind("/servable/", 0) == 0) {
    if (IsProgram(code_dir / program.substr(10))) return program;
  } else if (!program.empty() && program[0] == '/') {
    if (IsProgram(program)) return program;
  } else if (program.find('/') != std::string::npos) {
    std::string relative = program.rfind("./", 0) == 0 ? program.substr(2) : program;
    if (relative.find("..") == std::string::npos && IsProgram(code_dir / relative)) {
      return "/servable/" + relative;
    }
  } else if (!program.empty()) {
    for (const char* dir : {"/usr/local/bin", "/usr/bin", "/bin"}) {
      if (IsProgram(fs::path(dir) / program)) return std::string(dir) + "/" + program;
    }
  }
  return NotFound("command not found: " + program);
}

int RunSupervisor(const fs::path& attempt_dir) {
  // Signals become readable events before any thread exists (the sandbox's
  // launcher thread inherits the mask; its children reset it).
  sigset_t handled;
  ::sigemptyset(&handled);
  for (int sig : {SIGTERM, SIGUSR1, SIGINT, SIGHUP}) ::sigaddset(&handled, sig);
  ::sigprocmask(SIG_BLOCK, &handled, nullptr);  // NOLINT(concurrency-mt-unsafe): one thread yet
  ::signal(SIGPIPE, SIG_IGN);
  UniqueFd signal_fd(::signalfd(-1, &handled, SFD_CLOEXEC));
  if (!signal_fd.valid()) return Fail("signalfd failed");

  Result<std::string> text = ReadFile(PlanPath(attempt_dir));
  if (!text.ok()) return Fail(text.status().message());
  nlohmann::json parsed = nlohmann::json::parse(*text, nullptr, false);
  Result<AttemptPlan> plan = AttemptPlan::FromJson(parsed.is_discarded() ? nlohmann::json() : parsed);
  if (!plan.ok()) return Fail(plan.status().message());

  AttemptStatus status;
  status.state = "starting";
  status.supervisor_pid = ::getpid();
  if (Status written = WriteAttemptStatus(attempt_dir, status); !written.ok()) {
    return Fail(written.message());
  }
  UniqueFd log_fd(::open(plan->log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
  if (!log_fd.valid()) return Fail("cannot open " + plan->log_path.string());
  BoundedLog log(log_fd.get(), plan->log_limit_bytes);
  log.Note("[orrery] attempt " + std::to_string(plan->attempt) + " starts at " +
           FormatUnixMillis(NowUnixMillis()) + ": " + Joined(plan->command));

  auto end_now = [&](AttemptEnd end, const std::string& reason) {
    status.state = "ended";
    status.end = end;
    status.reason = reason;
    status.ended_at_ms = NowUnixMillis();
  };
  Result<std::string> program = ResolveJobProgram(plan->command[0], plan->code_dir);
  int pipe_fds[2];
  if (!program.ok()) {
    end_now(AttemptEnd::kFailed, program.status().message());
  } else if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    end_now(AttemptEnd::kFailed, "the supervisor could not make a pipe");
  } else {
    UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
    auto process = SandboxedProcess::Launch(SpecOf(*plan, *program), write_end.get(), {});
    write_end = UniqueFd();
    if (!process.ok()) {
      end_now(AttemptEnd::kFailed, "could not start: " + process.status().message());
    } else {
      status.state = "running";
      status.job_pid = (*process)->pid();
      status.started_at_ms = NowUnixMillis();
      if (Status written = WriteAttemptStatus(attempt_dir, status); !written.ok()) {
        return Fail(written.message());  // the job dies with us: the hub restarts it
      }
      Attempt(*plan, log, signal_fd.get()).Run(**process, std::move(read_end), status);
    }
  }
  log.Finish();
  log.Note("[orrery] attempt " + std::to_string(plan->attempt) + " ended at " +
           FormatUnixMillis(status.ended_at_ms) + ": " + AttemptEndName(status.end) + ", " +
           status.reason);
  ::fsync(log_fd.get());
  Status written = WriteAttemptStatus(attempt_dir, status);
  return written.ok() ? 0 : Fail(written.message());
}

}  // namespace orrery
