// The `native` backend: servables that are shared libraries implementing
// the C ABI of include/orrery/servable.h.
//
//   backend: native
//   files: [lib/model.so, ...]
//   config: {library: lib/model.so, ...}   # the whole map goes to create
//
// A trusted servable (an admin's decision, LoadContext::trusted) runs in
// the server process: fastest, but a crash takes the server down. Any other
// runs in a sandboxed orrery-native-worker process per instance
// (WorkerInstance), where a crash fails the request in flight and the
// worker is restarted.
//
// Both kinds of instance are wrapped in SignatureInstance, which puts the
// plugin's outputs in signature order and checks their names, datatypes and
// shapes: the plugin is not trusted to get the contract right, and the
// worker does not know the signature.
#include <unistd.h>

#include <algorithm>
#include <system_error>

#include "backends/backend.h"
#include "backends/native/native_library.h"
#include "backends/worker/worker_instance.h"

namespace orrery {
namespace {

constexpr size_t kMaxConfigBytes = size_t{64} << 10;  // passed on the worker's command line
constexpr const char* kWorkerName = "orrery-native-worker";
constexpr const char* kWorkerInSandbox = "/orrery/orrery-native-worker";

// -1 in the signature matches any size.
bool ShapeMatches(const std::vector<int64_t>& spec, const std::vector<int64_t>& shape) {
  if (spec.size() != shape.size()) return false;
  for (size_t i = 0; i < spec.size(); ++i) {
    if (spec[i] != -1 && spec[i] != shape[i]) return false;
  }
  return true;
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// The plugin's outputs, in signature order; kInternal naming the first
// output that is missing, extra, or of the wrong datatype or shape.
Result<std::vector<Tensor>> ArrangeOutputs(const std::vector<TensorSpec>& specs,
                                           std::vector<Tensor> produced, const std::string& who) {
  std::vector<Tensor> arranged;
  for (const TensorSpec& spec : specs) {
    auto it = std::find_if(produced.begin(), produced.end(),
                           [&](const Tensor& t) { return t.name == spec.name; });
    if (it == produced.end()) return Internal(who + " produced no output '" + spec.name + "'");
    if (DataTypeName(it->datatype) != spec.datatype) {
      return Internal(who + ": output '" + spec.name + "' is " +
                      std::string(DataTypeName(it->datatype)) + ", the signature says " +
                      spec.datatype);
    }
    if (!ShapeMatches(spec.shape, it->shape)) {
      return Internal(who + ": output '" + spec.name + "' has shape " + ShapeText(it->shape) +
                      ", the signature says " + ShapeText(spec.shape));
    }
    arranged.push_back(std::move(*it));
    produced.erase(it);
  }
  if (!produced.empty()) {
    return Internal(who + " produced output '" + produced.front().name +
                    "', which is not in the signature");
  }
  return arranged;
}

// Applies ArrangeOutputs to another instance's results.
// Ownership: owns the inner instance. Thread-safety: as the inner instance.
class SignatureInstance final : public Instance {
 public:
  SignatureInstance(std::unique_ptr<Instance> inner, std::vector<TensorSpec> outputs,
                    std::string who)
      : inner_(std::move(inner)), outputs_(std::move(outputs)), who_(std::move(who)) {}

  Result<std::vector<Tensor>> Infer(const std::vector<Tensor>& inputs, Deadline deadline) override {
    ASSIGN_OR_RETURN(std::vector<Tensor> produced, inner_->Infer(inputs, deadline));
    return ArrangeOutputs(outputs_, std::move(produced), who_);
  }
  uint64_t MemoryBytes() const override { return inner_->MemoryBytes(); }
  InstanceHealth Health() const override { return inner_->Health(); }

 private:
  std::unique_ptr<Instance> inner_;
  const std::vector<TensorSpec> outputs_;
  const std::string who_;
};

// A plugin state in this process. The deadline cannot be enforced: a
// trusted plugin is trusted to return.
// Ownership: owns the state (and through it a reference to the library).
// Thread-safety: Infer from one thread at a time; MemoryBytes from any.
class InProcessInstance final : public Instance {
 public:
  InProcessInstance(std::unique_ptr<NativeState> state, uint64_t memory_bytes)
      : state_(std::move(state)), memory_bytes_(memory_bytes) {}

  Result<std::vector<Tensor>> Infer(const std::vector<Tensor>& inputs, Deadline) override {
    return state_->Infer(inputs);
  }
  // The library's file size: the plugin's own heap is not observable here.
  uint64_t MemoryBytes() const override { return memory_bytes_; }

 private:
  std::unique_ptr<NativeState> state_;
  const uint64_t memory_bytes_;
};

// config.library: a relative path without '..' that the manifest lists
// among its files, naming a regular file inside the package.
Result<std::string> LibraryPath(const LoadContext& context) {
  const Manifest& manifest = *context.manifest;
  const nlohmann::json& config = manifest.config;
  if (!config.is_object() || !config.contains("library") || !config["library"].is_string()) {
    return Unprocessable("native: config.library must name the plugin's file in the package");
  }
  const std::string library = config["library"].get<std::string>();
  if (Status status = ValidatePackagePath(library); !status.ok()) {
    return Unprocessable("native: config.library: " + status.message());
  }
  bool listed = std::any_of(manifest.files.begin(), manifest.files.end(),
                            [&](const ManifestFile& file) { return file.path == library; });
  if (!listed) {
    return Unprocessable("native: config.library '" + library +
                         "' is not one of the manifest's files");
  }
  std::error_code root_error, file_error, type_error;
  const std::filesystem::path root = std::filesystem::canonical(context.dir, root_error);
  const std::filesystem::path file = std::filesystem::canonical(context.dir / library, file_error);
  auto [end, ignored] = std::mismatch(root.begin(), root.end(), file.begin(), file.end());
  if (root_error || file_error || end != root.end() ||
      !std::filesystem::is_regular_file(file, type_error)) {
    return Unprocessable("native: config.library '" + library +
                         "' is not a regular file inside the package");
  }
  return library;
}

Result<std::string> ConfigJson(const Manifest& manifest) {
  std::string json = manifest.config.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (json.size() > kMaxConfigBytes) {
    return Unprocessable("native: config is " + std::to_string(json.size()) +
                         " bytes of JSON, over the limit of " + std::to_string(kMaxConfigBytes) +
                         "; put large settings in a file of the package");
  }
  return json;
}

// SandboxOptions::native_worker, or orrery-native-worker beside this executable.
Result<std::filesystem::path> WorkerExecutable(const SandboxOptions& sandbox) {
  std::filesystem::path path = sandbox.native_worker;
  if (path.empty()) {
    std::error_code error;
    path = std::filesystem::read_symlink("/proc/self/exe", error).parent_path() / kWorkerName;
  }
  if (::access(path.c_str(), X_OK) != 0) {
    return Unavailable("native: the worker executable is missing on the server")
        .WithDetail("native: worker executable " + path.string() +
                    " is missing or not executable (set the native worker path)");
  }
  return path;
}

class NativeBackend final : public Backend {
 public:
  bool InProcess(const LoadContext& context) const override { return context.trusted; }

  Result<std::unique_ptr<Instance>> Load(const LoadContext& context) override {
    if (context.manifest == nullptr) return Internal("native: no manifest in the load context");
    ASSIGN_OR_RETURN(std::string library, LibraryPath(context));
    ASSIGN_OR_RETURN(std::string config, ConfigJson(*context.manifest));
    const std::string who = "native plugin " + library;
    std::unique_ptr<Instance> inner;
    if (context.trusted) {
      ASSIGN_OR_RETURN(inner, LoadInProcess(context, library, config));
    } else {
      ASSIGN_OR_RETURN(inner, StartWorker(context, library, config));
    }
    return std::unique_ptr<Instance>(
        new SignatureInstance(std::move(inner), context.manifest->outputs, who));
  }

 private:
  static Result<std::unique_ptr<Instance>> LoadInProcess(const LoadContext& context,
                                                         const std::string& library,
                                                         const std::string& config) {
    const std::filesystem::path dir = std::filesystem::absolute(context.dir);
    ASSIGN_OR_RETURN(std::shared_ptr<NativeLibrary> plugin,
                     NativeLibrary::Open(dir / library, library));
    ASSIGN_OR_RETURN(std::unique_ptr<NativeState> state, plugin->Create(dir.string(), config));
    std::error_code error;
    const uint64_t size = std::filesystem::file_size(dir / library, error);
    return std::unique_ptr<Instance>(new InProcessInstance(std::move(state), error ? 0 : size));
  }

  static Result<std::unique_ptr<Instance>> StartWorker(const LoadContext& context,
                                                       const std::string& library,
                                                       const std::string& config) {
    WorkerSpec spec;
    spec.sandbox = context.sandbox != nullptr ? *context.sandbox : SandboxOptions{};
#ifdef ORRERY_ADDRESS_SANITIZER
    // The sanitizer test build only (scripts/sanitize.sh): the native worker
    // is built with AddressSanitizer there, which reserves terabytes of
    // address space for its shadow memory and cannot start under RLIMIT_AS.
    spec.sandbox.memory_bytes = 0;
#endif
    ASSIGN_OR_RETURN(std::filesystem::path worker, WorkerExecutable(spec.sandbox));
    spec.command = {kWorkerInSandbox, "--library", "/servable/" + library, "--config", config};
    spec.read_only_binds = {{worker, kWorkerInSandbox}};
    spec.servable_dir = context.dir;
    spec.label = context.label;
    spec.output = context.output;
    spec.allow_network = context.allow_network;
    ASSIGN_OR_RETURN(std::unique_ptr<WorkerInstance> instance,
                     WorkerInstance::Start(std::move(spec)));
    return std::unique_ptr<Instance>(std::move(instance));
  }
};

ORRERY_REGISTER_BACKEND("native", NativeBackend);

}  // namespace
}  // namespace orrery
