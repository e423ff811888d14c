// WorkerInstance: an Instance whose model runs in a sandboxed child
// process (Python servables, untrusted native plugins), spoken to over the
// frame protocol of frames.h.
//
// The worker is started by Start() and supervised for its whole life:
// - isolation (sandbox/sandbox.h): bubblewrap namespaces when they work on this
//   host (no network unless allowed, own uid, only /usr, the servable and
//   the worker program visible), else the fallback the log names; always
//   rlimits on memory, CPU time and open files;
// - a crash (EOF, signal, exit) or a hang (no answer by the request's
//   deadline: the worker is killed with SIGKILL) fails the in-flight
//   request with kUnavailable naming the cause, marks the instance not
//   ready with that reason, and restarts the worker on a background thread
//   with exponential backoff (SandboxOptions::first_backoff doubling,
//   at most 30 s); a worker that dies while idle is noticed (pidfd) and
//   restarted the same way. Failed lives are counted in a row (a life that
//   answered at least one request, or lasted 30 s, restarts the count at
//   1; a restart that fails to start counts too): when the count exceeds
//   SandboxOptions::max_restarts, i.e. max_restarts restarts in a row have
//   failed, it gives up: Health().gave_up, and Infer fails at once;
// - Infer while the worker is restarting fails at once with kUnavailable
//   ("worker restarting after <cause>");
// - a kError answer (the servable raised) is kUnprocessable with the
//   worker's message, or the code the frame names (frames.h); the worker
//   stays up.
// Messages: "worker crashed (exit code N)" / "(signal S)", "worker timed
// out after X ms; killed". Health().restarts counts replacement workers
// launched.
//
// Ownership: owns the child process (killed and reaped by the destructor,
// which also ends a start in progress) and its socket. Threads: a
// supervisor (restarts, idle deaths) and a log drain (the workers' stdout
// and stderr, line by line into the server log) per instance.
// Thread-safety: Infer, or Begin then Complete or Abort, from one thread at
// a time (the Instance contract);
// Health(), MemoryBytes() and pid() from any thread. pid() is the process
// the server forked: bwrap's monitor, or the worker itself in fallback mode.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "sandbox/sandbox.h"

namespace orrery {

struct Frame;  // frames.h

// What to run (sandbox/sandbox.h), and what the worker's output is for.
struct WorkerSpec : SandboxSpec {
  std::string label;                   // "tenant/name:version", for messages
  std::shared_ptr<OutputRing> output;  // also gets every output line; may be null
};

class WorkerInstance final : public Instance, public AsyncInfer {
 public:
  // Starts the worker and waits (up to sandbox.start_timeout) for kReady.
  // kUnprocessable with the worker's message on kLoadError (the servable
  // is broken: retrying will not help); kUnavailable when the process
  // cannot start, dies before kReady, or times out.
  static Result<std::unique_ptr<WorkerInstance>> Start(WorkerSpec spec);
  ~WorkerInstance() override;

  Result<std::vector<Tensor>> Infer(const std::vector<Tensor>& inputs, Deadline deadline) override;
  AsyncInfer* Async() override { return this; }
  // AsyncInfer: Infer in two steps for an event loop. A readable socket
  // whose answer does not complete within 100 ms is a broken worker
  // (killed); Abort kills the worker too (its late answer would otherwise
  // be taken for the next request's).
  Result<int> Begin(const std::vector<Tensor>& inputs, Deadline deadline) override;
  Result<std::vector<Tensor>> Complete() override;
  Status Abort(bool timed_out) override;
  uint64_t MemoryBytes() const override;  // resident set of the worker process tree
  InstanceHealth Health() const override;
  pid_t pid() const;  // the current worker's pid; 0 while none runs

 private:
  struct State;
  enum class Ending { kTimedOut, kCrashed, kBrokeProtocol, kStopping };
  explicit WorkerInstance(std::unique_ptr<State> state);
  Result<std::vector<Tensor>> Settle(Result<Frame> frame);
  Status EndLife(Ending ending, const std::string& detail);
  std::unique_ptr<State> state_;
};

}  // namespace orrery
