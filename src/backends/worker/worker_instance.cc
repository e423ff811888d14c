// WorkerInstance: supervision of one sandboxed worker (worker_instance.h).
//
// Threads: the thread that runs Infer() talks to the worker directly (no
// hop through another thread: that would add two wake-ups to every
// request); with the split form (Begin, then Complete or Abort) an event
// loop sends the request and reads the answer itself, and no thread waits
// in between. A supervisor thread per instance restarts the worker with
// backoff and notices a worker that dies while idle (through its pidfd). A
// log thread per instance drains the workers' stdout and stderr (one pipe
// shared by all lives of the instance) into the server log.
//
// Who owns a life: `life` is guarded by the mutex, but a request (Infer, or
// Begin to Complete/Abort) uses it outside the lock while `busy` is set;
// then only that request may end it.
// The supervisor ends only an idle life. Either way the ending life is
// taken out of the state, reaped outside the lock, and OnFailure() decides
// on the restart.
#include "backends/worker/worker_instance.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "backends/worker/frames.h"
#include "core/log.h"

namespace orrery {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kReapGrace = std::chrono::milliseconds(1000);  // for a worker that is exiting
constexpr auto kStableLife = std::chrono::seconds(30);        // resets the failure count
constexpr auto kMaxBackoff = std::chrono::milliseconds(30'000);
constexpr size_t kMaxLogLine = 2048;
constexpr int kLogLinesPerSecond = 200;  // per instance; beyond: counted, not logged
// How long a readable worker socket may take to deliver the rest of an answer.
constexpr auto kAnswerGrace = std::chrono::milliseconds(100);

int64_t MillisBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

void Wake(int eventfd) {
  uint64_t one = 1;
  ssize_t ignored = ::write(eventfd, &one, sizeof(one));
  (void)ignored;
}

// Drains the pipe that carries every life's stdout and stderr into the
// server log ("worker <label>: <line>"), so that a chatty worker never
// blocks on a full pipe. Keeps the last line for error messages.
class LogDrain {
 public:
  static Result<std::unique_ptr<LogDrain>> Create(const std::string& label,
                                                  std::shared_ptr<OutputRing> output) {
    std::unique_ptr<LogDrain> drain(new LogDrain());
    drain->output_ = std::move(output);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe");
    drain->read_ = UniqueFd(fds[0]);
    drain->write_ = UniqueFd(fds[1]);
    // Only our end is non-blocking: the workers write to theirs normally.
    if (::fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0) return ErrnoStatus("fcntl");
    drain->stop_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!drain->stop_.valid()) return ErrnoStatus("eventfd");
    drain->prefix_ = "worker " + label + ": ";
    drain->thread_ = std::thread([d = drain.get()] { d->Loop(); });
    return drain;
  }
  ~LogDrain() {
    Wake(stop_.get());
    thread_.join();
  }

  int write_fd() const { return write_.get(); }

  // Reads what is in the pipe now, then returns the last complete line.
  std::string LastLine() {
    std::lock_guard lock(mutex_);
    ReadAvailableLocked();
    return last_;
  }

 private:
  LogDrain() = default;

  void Loop() {
    pollfd p[2] = {{read_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    while (true) {
      if (::poll(p, 2, -1) < 0 && errno != EINTR) break;
      std::lock_guard lock(mutex_);
      ReadAvailableLocked();
      if (p[1].revents & POLLIN) break;  // stopping: every life has been reaped
    }
  }

  void ReadAvailableLocked() {
    char buffer[4096];
    ssize_t n;
    while ((n = ::read(read_.get(), buffer, sizeof(buffer))) > 0) {
      for (ssize_t i = 0; i < n; ++i) {
        if (buffer[i] == '\n') {
          EmitLocked();
        } else if (partial_.size() < kMaxLogLine) {
          partial_.push_back(buffer[i]);
        }
      }
    }
  }

  void EmitLocked() {
    std::string line = std::move(partial_);
    partial_.clear();
    if (!line.empty()) last_ = line;
    if (output_) output_->Add(line);  // every line: the ring bounds itself
    auto now = Clock::now();
    if (now - window_ >= std::chrono::seconds(1)) {
      if (suppressed_ > 0) {
        LogWarning(prefix_ + "(" + std::to_string(suppressed_) + " lines not logged)");
      }
      window_ = now;
      lines_ = 0;
      suppressed_ = 0;
    }
    if (++lines_ > kLogLinesPerSecond) {
      ++suppressed_;
      return;
    }
    LogInfo(prefix_ + line);
  }

  UniqueFd read_, write_, stop_;
  std::string prefix_;
  std::shared_ptr<OutputRing> output_;
  std::thread thread_;
  std::mutex mutex_;
  std::string partial_, last_;  // GUARDED_BY(mutex_)
  Clock::time_point window_{};  // GUARDED_BY(mutex_)
  int lines_ = 0;               // GUARDED_BY(mutex_)
  int64_t suppressed_ = 0;      // GUARDED_BY(mutex_)
};

struct Life {
  std::shared_ptr<SandboxedProcess> process;  // shared with MemoryBytes() readers
  FrameChannelEnds channel;                   // the server's side of the worker's channel
  Clock::time_point started;
  bool answered = false;
  ShmBuffer shm;  // reused for large requests (used by the Infer that holds `busy`)
};

// The Status for a kError frame: the worker's message, with the code it
// names when that is one a servable may choose (frames.h).
Status ServableError(const nlohmann::json& header) {
  auto error = header.find("error");
  std::string message = error != header.end() && error->is_string()
                            ? error->get<std::string>()
                            : "the servable failed without a message";
  auto code = header.find("code");
  if (code != header.end() && code->is_string()) {
    for (Code allowed :
         {Code::kInvalidArgument, Code::kUnprocessable, Code::kTooLarge, Code::kInternal}) {
      if (code->get<std::string>() == CodeName(allowed)) return Status(allowed, message);
    }
  }
  return Unprocessable(message);
}

}  // namespace

struct WorkerInstance::State {
  WorkerSpec spec;
  std::unique_ptr<LogDrain> logs;
  UniqueFd wake;  // eventfd: wakes the supervisor
  std::thread supervisor;

  mutable std::mutex mutex;
  std::unique_ptr<Life> life;         // GUARDED_BY(mutex); null while restarting or dead
  bool busy = false;                  // GUARDED_BY(mutex): an Infer uses `life`
  bool wake_after_infer = false;      // GUARDED_BY(mutex)
  SandboxedProcess* starting = nullptr;  // GUARDED_BY(mutex): being started (Kill() to cancel)
  InstanceHealth health;              // GUARDED_BY(mutex)
  uint32_t failures = 0;              // GUARDED_BY(mutex): consecutive failed lives
  std::optional<Clock::time_point> restart_at;  // GUARDED_BY(mutex)
  std::string cause;                            // GUARDED_BY(mutex): of the last failure
  bool stopping = false;                        // GUARDED_BY(mutex)
  // The request that holds `busy` (only its calls use these).
  Clock::time_point call_started;
  Deadline call_deadline;

  Result<std::unique_ptr<Life>> StartLife();
  void OnFailureLocked(const std::string& why, const Life* ended);  // REQUIRES(mutex)
  void Supervise();
};

// Launches a worker and waits for its kReady.
Result<std::unique_ptr<Life>> WorkerInstance::State::StartLife() {
  auto started = Clock::now();
  // The worker's side of the channel goes down as its descriptors 3, 4, 5
  // (kWorkerChannel) and is closed here once it is started.
  ASSIGN_OR_RETURN(auto channel, MakeFrameChannel());
  const FrameChannelEnds& child = channel.second;
  ASSIGN_OR_RETURN(std::shared_ptr<SandboxedProcess> process,
                   SandboxedProcess::Launch(spec, logs->write_fd(),
                                            {child.in.get(), child.out.get(), child.fds.get()}));
  channel.second = FrameChannelEnds();
  static_assert(kWorkerChannel.in == 3 && kWorkerChannel.out == 4 && kWorkerChannel.fds == 5);
  {
    std::lock_guard lock(mutex);
    if (stopping) return Unavailable("instance is shutting down");
    starting = process.get();
  }
  Result<Frame> frame = ReadFrame(channel.first.get(), started + spec.sandbox.start_timeout);
  {
    std::lock_guard lock(mutex);
    starting = nullptr;
  }
  if (frame.ok() && frame->type == FrameType::kReady) {
    auto life = std::make_unique<Life>();
    life->process = std::move(process);
    life->channel = std::move(channel.first);
    life->started = started;
    return life;
  }
  if (frame.ok() && frame->type == FrameType::kLoadError) {
    process->Reap(kReapGrace);
    auto error = frame->header.find("error");
    return Unprocessable(error != frame->header.end() && error->is_string()
                             ? error->get<std::string>()
                             : "the worker could not load the servable");
  }
  if (!frame.ok() && frame.status().message() == "timed out") {
    process->Reap(std::chrono::milliseconds(0));
    return Unavailable("worker did not become ready within " +
                       std::to_string(spec.sandbox.start_timeout.count()) + " ms; killed");
  }
  if (!frame.ok() && frame.status().code() == Code::kUnavailable) {
    std::string ending = process->Reap(kReapGrace);
    std::string last = logs->LastLine();
    return Unavailable("worker exited before it was ready (" + ending + ")" +
                       (last.empty() ? "" : ": " + last));
  }
  process->Reap(std::chrono::milliseconds(0));
  return Unavailable("worker broke the protocol while starting: " +
                     (frame.ok() ? std::string("unexpected frame") : frame.status().message()));
}

void WorkerInstance::State::OnFailureLocked(const std::string& why, const Life* ended) {
  bool stable =
      ended != nullptr && (ended->answered || Clock::now() - ended->started >= kStableLife);
  failures = stable ? 1 : failures + 1;
  cause = why;
  health.ready = false;
  if (failures > spec.sandbox.max_restarts) {
    health.gave_up = true;
    health.reason = why + "; gave up after " + std::to_string(failures) + " consecutive failures";
    LogError("worker " + spec.label + ": " + health.reason);
    return;
  }
  auto backoff = spec.sandbox.first_backoff * (1ll << std::min<uint32_t>(failures - 1, 20));
  backoff = std::min<std::chrono::milliseconds>(backoff, kMaxBackoff);
  restart_at = Clock::now() + backoff;
  health.reason = why + "; restarting";
  LogWarning("worker " + spec.label + ": " + why + "; restarting in " +
             std::to_string(backoff.count()) + " ms");
  Wake(wake.get());
}

void WorkerInstance::State::Supervise() {
  std::unique_lock lock(mutex);
  while (!stopping) {
    if (restart_at && Clock::now() >= *restart_at) {
      restart_at.reset();
      ++health.restarts;
      lock.unlock();
      Result<std::unique_ptr<Life>> next = StartLife();
      lock.lock();
      if (stopping) break;
      if (next.ok()) {
        life = std::move(next).value();
        health.ready = true;
        health.reason.clear();
        LogInfo("worker " + spec.label + ": restarted (pid " +
                std::to_string(life->process->pid()) + ")");
      } else {
        OnFailureLocked(next.status().message(), nullptr);
      }
      continue;
    }
    // Watch the idle worker's exit through a copy of its pidfd (the life
    // may end while we poll).
    SandboxedProcess* watched = nullptr;
    UniqueFd watch;
    if (life && !busy && life->process->pidfd() >= 0) {
      watched = life->process.get();
      watch = UniqueFd(::fcntl(watched->pidfd(), F_DUPFD_CLOEXEC, 0));
    }
    int timeout = -1;
    if (restart_at) {
      int64_t left = MillisBetween(Clock::now(), *restart_at);
      timeout = static_cast<int>(std::max<int64_t>(0, left) + 1);
    }
    lock.unlock();
    pollfd p[2] = {{wake.get(), POLLIN, 0}, {watch.get(), POLLIN, 0}};
    ::poll(p, watch.valid() ? 2 : 1, timeout);
    uint64_t count;
    ssize_t ignored = ::read(wake.get(), &count, sizeof(count));
    (void)ignored;
    lock.lock();
    if (!watch.valid() || !(p[1].revents & POLLIN) || stopping) continue;
    if (busy) {
      wake_after_infer = true;  // that Infer will see the death itself
      continue;
    }
    if (!life || life->process.get() != watched) continue;
    std::unique_ptr<Life> ended = std::move(life);
    health.ready = false;
    cause = "worker exited";
    lock.unlock();
    std::string ending = ended->process->Reap(kReapGrace);
    lock.lock();
    OnFailureLocked("worker crashed (" + ending + ")", ended.get());
  }
}

Result<std::unique_ptr<WorkerInstance>> WorkerInstance::Start(WorkerSpec spec) {
  auto state = std::make_unique<State>();
  state->spec = std::move(spec);
  ASSIGN_OR_RETURN(state->logs, LogDrain::Create(state->spec.label, state->spec.output));
  state->wake = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!state->wake.valid()) return ErrnoStatus("eventfd");
  auto started = Clock::now();
  ASSIGN_OR_RETURN(state->life, state->StartLife());
  LogInfo("worker " + state->spec.label + ": ready in " +
          std::to_string(MillisBetween(started, Clock::now())) + " ms (pid " +
          std::to_string(state->life->process->pid()) + ", " +
          (state->life->process->mode() == IsolationMode::kBubblewrap ? "bubblewrap" : "fallback") +
          " sandbox)");
  State* raw = state.get();
  state->supervisor = std::thread([raw] { raw->Supervise(); });
  return std::unique_ptr<WorkerInstance>(new WorkerInstance(std::move(state)));
}

WorkerInstance::WorkerInstance(std::unique_ptr<State> state) : state_(std::move(state)) {}

WorkerInstance::~WorkerInstance() {
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
    if (state_->starting != nullptr) state_->starting->Kill();  // ends its handshake at once
  }
  Wake(state_->wake.get());
  state_->supervisor.join();
  state_->life.reset();  // kills and reaps the worker (SandboxedProcess's destructor)
  state_->logs.reset();
}

Result<std::vector<Tensor>> WorkerInstance::Infer(const std::vector<Tensor>& inputs,
                                                  Deadline deadline) {
  RETURN_IF_ERROR(Begin(inputs, deadline).status());
  return Settle(ReadFrame(state_->life->channel.get(), deadline));  // `busy`: ours
}

Result<int> WorkerInstance::Begin(const std::vector<Tensor>& inputs, Deadline deadline) {
  State& s = *state_;
  auto started = Clock::now();
  std::unique_lock lock(s.mutex);
  if (s.health.gave_up) return Unavailable("worker is dead: " + s.health.reason);
  if (!s.life) return Unavailable("worker restarting after " + s.cause);
  if (deadline <= started) return Unavailable("the request's deadline passed before it ran");
  s.busy = true;
  s.call_started = started;
  s.call_deadline = deadline;
  Life& life = *s.life;
  FrameChannel channel = life.channel.get();
  lock.unlock();

  Status sent =
      WriteFrame(channel, FrameType::kInfer, nlohmann::json::object(), inputs, deadline, life.shm);
  if (sent.ok()) return channel.in;
  if (sent.code() != Code::kUnavailable) {
    // Too large, or no memfd here: nothing reached the worker, which is fine.
    lock.lock();
    s.busy = false;
    return sent;
  }
  return EndLife(Ending::kCrashed, "");
}

Result<std::vector<Tensor>> WorkerInstance::Complete() {
  State& s = *state_;
  FrameChannel channel = s.life->channel.get();  // `busy`: this call owns the life
  // Readable, so the answer is here or being written: a worker that stops
  // midway is broken, and must not hold the event loop until the deadline.
  Deadline grace = std::min(s.call_deadline, Clock::now() + kAnswerGrace);
  return Settle(ReadFrame(channel, grace));
}

Status WorkerInstance::Abort(bool timed_out) {
  return EndLife(timed_out ? Ending::kTimedOut : Ending::kStopping, "");
}

// The answer, or the end of the life that failed to give one.
Result<std::vector<Tensor>> WorkerInstance::Settle(Result<Frame> frame) {
  State& s = *state_;
  if (frame.ok() && (frame->type == FrameType::kResult || frame->type == FrameType::kError)) {
    std::unique_lock lock(s.mutex);
    s.busy = false;
    s.life->answered = true;
    s.failures = 0;
    if (s.wake_after_infer) {
      s.wake_after_infer = false;
      Wake(s.wake.get());
    }
    lock.unlock();
    if (frame->type == FrameType::kResult) return std::move(frame->tensors);
    return ServableError(frame->header);
  }
  if (!frame.ok() && frame.status().message() == "timed out") {
    if (Clock::now() >= s.call_deadline) return EndLife(Ending::kTimedOut, "");
    return EndLife(Ending::kBrokeProtocol, "its answer stalled midway");
  }
  if (!frame.ok() && frame.status().code() == Code::kUnavailable) {
    return EndLife(Ending::kCrashed, "");
  }
  return EndLife(Ending::kBrokeProtocol,
                 frame.ok() ? std::string("unexpected frame type") : frame.status().message());
}

// Ends the life the current request holds: takes it out, reaps it,
// schedules the restart. Returns the error the request gets.
Status WorkerInstance::EndLife(Ending ending, const std::string& detail) {
  State& s = *state_;
  std::unique_lock lock(s.mutex);
  std::unique_ptr<Life> ended = std::move(s.life);
  s.busy = false;
  s.health.ready = false;
  s.cause = "a failed request";
  auto waited = std::chrono::round<std::chrono::milliseconds>(s.call_deadline - s.call_started);
  lock.unlock();
  std::string why;
  switch (ending) {
    case Ending::kTimedOut:
      ended->process->Reap(std::chrono::milliseconds(0));
      why = "worker timed out after " + std::to_string(waited.count()) + " ms; killed";
      break;
    case Ending::kCrashed:
      why = "worker crashed (" + ended->process->Reap(kReapGrace) + ")";
      break;
    case Ending::kBrokeProtocol:
      ended->process->Reap(std::chrono::milliseconds(0));
      why = "worker broke the protocol (" + detail + "); killed";
      break;
    case Ending::kStopping:
      ended->process->Reap(std::chrono::milliseconds(0));
      why = "the server is stopping; worker killed";
      break;
  }
  lock.lock();
  s.OnFailureLocked(why, ended.get());
  return Unavailable(why);
}

uint64_t WorkerInstance::MemoryBytes() const {
  std::shared_ptr<SandboxedProcess> process;
  {
    std::lock_guard lock(state_->mutex);
    if (state_->life) process = state_->life->process;
  }
  return process ? process->ResidentBytes() : 0;
}

InstanceHealth WorkerInstance::Health() const {
  std::lock_guard lock(state_->mutex);
  return state_->health;
}

pid_t WorkerInstance::pid() const {
  std::lock_guard lock(state_->mutex);
  return state_->life ? state_->life->process->pid() : 0;
}

}  // namespace orrery
