// Backend: how one kind of servable (torchscript, xgboost, onnx, python,
// native, ...) is loaded into an Instance that runs inference.
//
// Each backend lives in its own folder under src/backends/ and registers
// itself with ORRERY_REGISTER_BACKEND in one of its .cc files; the serving
// core finds it by the manifest's `backend` name and knows nothing else
// about it. Adding a backend touches no core code.
//
// Contracts:
// - Load() runs on a model-manager load thread, never on a request thread;
//   it may take seconds. Errors are kUnprocessable for a bad servable (a
//   corrupt file, an operator the runtime cannot run: the message names
//   it), kUnavailable for environment failures (a worker that cannot start).
// - Instance::Infer is called by at most one thread at a time per instance
//   (the serving core owns the scheduling). `inputs` are already checked
//   against the signature: one tensor per signature input, in signature
//   order, datatypes equal, shapes compatible (-1 matches any size).
//   It returns one tensor per signature output, in signature order, named
//   as in the signature. Errors: kInvalidArgument for inputs the model
//   rejects, kUnavailable when a worker crashed or hung (the request failed,
//   the instance recovers by itself), kInternal otherwise.
// - Instances must tolerate NaN/Inf inputs (pass them through).
//
// Thread-safety: Backend objects are shared and must be thread-safe;
// Instance as above.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/output_ring.h"
#include "core/status.h"
#include "repository/manifest.h"
#include "sandbox/sandbox_options.h"
#include "tensor/tensor.h"

namespace orrery {

using Deadline = std::chrono::steady_clock::time_point;

// Everything a backend gets to load one instance.
struct LoadContext {
  std::filesystem::path dir;       // the unpacked package (read-only to backends)
  const Manifest* manifest = nullptr;  // backend, files, config, signature
  std::string tenant;              // the servable's owner
  std::string label;               // "tenant/name:version", for messages and logs
  bool allow_network = false;      // manifest asks (config.network: true) and admin allows
  bool trusted = false;            // admin marked it trusted (native may run in process)
  const SandboxOptions* sandbox = nullptr;
  // Where a worker's stdout and stderr lines also go (besides the server
  // log), for the servable's owner; may be null.
  std::shared_ptr<OutputRing> output;
};

// Health of an instance, for readiness, /metrics and the model manager.
struct InstanceHealth {
  bool ready = true;
  std::string reason;     // why not ready, e.g. "worker crashed (signal 11); restarting"
  uint64_t restarts = 0;  // worker restarts so far
  bool gave_up = false;   // crash loop: no more restarts, the instance is dead
};

// An inference split in two so that an event loop, not a blocked thread,
// waits for the answer (instances whose Infer waits on another process).
// Begin sends the request and returns the descriptor that becomes readable
// when the answer arrives; then exactly one of Complete (once readable) or
// Abort (the deadline passed, or the loop is stopping) ends it. The three
// calls count as one Infer for the Instance's thread-safety rules.
class AsyncInfer {
 public:
  virtual ~AsyncInfer() = default;
  // The descriptor to wait on; an error when the request ended already
  // (nothing to wait for). Only for requests below kMaxAsyncBytes.
  virtual Result<int> Begin(const std::vector<Tensor>& inputs, Deadline deadline) = 0;
  // Reads the answer; the descriptor is readable, so this does not wait
  // (beyond a short grace for an answer still being written).
  virtual Result<std::vector<Tensor>> Complete() = 0;
  // Ends the request without its answer: `timed_out` says whether its
  // deadline passed (else the server is stopping); returns the error to report.
  virtual Status Abort(bool timed_out) = 0;

  // Larger requests may block while the worker reads them: they go through Infer.
  static constexpr uint64_t kMaxAsyncBytes = 64 * 1024;
};

class Instance {
 public:
  virtual ~Instance() = default;
  virtual Result<std::vector<Tensor>> Infer(const std::vector<Tensor>& inputs,
                                            Deadline deadline) = 0;
  // Estimated bytes this instance holds (resident set for workers).
  virtual uint64_t MemoryBytes() const = 0;
  virtual InstanceHealth Health() const { return {}; }
  // The split form of Infer, or nullptr when the instance has none.
  virtual AsyncInfer* Async() { return nullptr; }
};

class Backend {
 public:
  virtual ~Backend() = default;
  // True when Infer computes on the calling thread; false when it waits on
  // another process (the serving core then keeps it off request threads).
  virtual bool InProcess(const LoadContext& context) const = 0;
  virtual Result<std::unique_ptr<Instance>> Load(const LoadContext& context) = 0;
  // What one instance is expected to hold before it is loaded (the memory
  // budget reserves it; a measured size replaces it after the first load).
  // `context.dir` is not set yet. Default: twice the package's bytes in
  // process (the runtime's copy and its working buffers); a worker process
  // adds kWorkerBaseBytes for its interpreter and libraries.
  virtual uint64_t EstimateMemoryBytes(const LoadContext& context, uint64_t package_bytes) const {
    return (InProcess(context) ? 0 : kWorkerBaseBytes) + 2 * package_bytes;
  }
  // A Python worker with numpy holds about 30 MB resident; rounded up.
  static constexpr uint64_t kWorkerBaseBytes = 64ull << 20;
};

// The registry of backends by name. Thread-safe; registration happens
// during static initialisation.
using BackendFactory = std::function<std::unique_ptr<Backend>()>;
bool RegisterBackend(const std::string& name, BackendFactory factory);
// nullptr when no backend of that name is linked in.
Backend* FindBackend(std::string_view name);
std::vector<std::string> RegisteredBackends();

}  // namespace orrery

#define ORRERY_REGISTER_BACKEND(name, type)                        \
  static const bool ORRERY_CONCAT(orrery_backend_registered_, __LINE__) = \
      ::orrery::RegisterBackend(name, [] { return std::unique_ptr<::orrery::Backend>(new type()); })
