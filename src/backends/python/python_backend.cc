// The `python` backend (python_backend.h): WorkerInstance running
// python/orrery_worker.py, plus a check of every answer against the
// signature, because the worker runs the tenant's code and is not trusted to
// keep the Instance contract (one tensor per output, in order, named and
// typed as declared).
#include "backends/python/python_backend.h"

#include <unistd.h>

#include <cctype>
#include <memory>
#include <vector>

#include "backends/backend.h"
#include "backends/worker/worker_instance.h"

namespace orrery {
namespace {

namespace fs = std::filesystem;

constexpr const char* kWorkerInSandbox = "/orrery/orrery_worker.py";
constexpr const char* kEnvironmentsInSandbox = "/orrery/env/";  // + the environment's name

bool IsIdentifier(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

// kInternal naming the first output that breaks the signature.
Status CheckOutputs(const std::vector<Tensor>& outputs, const std::vector<TensorSpec>& specs) {
  if (outputs.size() != specs.size()) {
    return Internal("python servable returned " + std::to_string(outputs.size()) +
                    " outputs, the signature has " + std::to_string(specs.size()));
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    const Tensor& out = outputs[i];
    const TensorSpec& spec = specs[i];
    if (out.name != spec.name) {
      return Internal("python servable output " + std::to_string(i) + " is '" + out.name +
                      "', the signature says '" + spec.name + "'");
    }
    if (DataTypeName(out.datatype) != spec.datatype) {
      return Internal("python servable output '" + spec.name + "' is " +
                      std::string(DataTypeName(out.datatype)) + ", the signature says " +
                      spec.datatype);
    }
    bool fits = out.shape.size() == spec.shape.size();
    for (size_t d = 0; fits && d < spec.shape.size(); ++d) {
      fits = spec.shape[d] < 0 || spec.shape[d] == out.shape[d];
    }
    if (!fits) {
      return Internal("python servable output '" + spec.name + "' has shape " +
                      ShapeText(out.shape) + ", the signature says " + ShapeText(spec.shape));
    }
  }
  return Status::Ok();
}

nlohmann::json SignatureJson(const Manifest& manifest) {
  auto list = [](const std::vector<TensorSpec>& specs) {
    nlohmann::json out = nlohmann::json::array();
    for (const TensorSpec& spec : specs) {
      out.push_back({{"name", spec.name}, {"datatype", spec.datatype}, {"shape", spec.shape}});
    }
    return out;
  };
  return {{"inputs", list(manifest.inputs)}, {"outputs", list(manifest.outputs)}};
}

// A Python servable's instance: the worker plus the output check.
// Thread-safety: as WorkerInstance (Infer from one thread at a time).
class PythonInstance final : public Instance, public AsyncInfer {
 public:
  PythonInstance(std::unique_ptr<WorkerInstance> worker, std::vector<TensorSpec> outputs)
      : worker_(std::move(worker)), outputs_(std::move(outputs)) {}

  Result<std::vector<Tensor>> Infer(const std::vector<Tensor>& inputs, Deadline deadline) override {
    ASSIGN_OR_RETURN(std::vector<Tensor> outputs, worker_->Infer(inputs, deadline));
    RETURN_IF_ERROR(CheckOutputs(outputs, outputs_));
    return outputs;
  }
  AsyncInfer* Async() override { return this; }
  Result<int> Begin(const std::vector<Tensor>& inputs, Deadline deadline) override {
    return worker_->Begin(inputs, deadline);
  }
  Result<std::vector<Tensor>> Complete() override {
    ASSIGN_OR_RETURN(std::vector<Tensor> outputs, worker_->Complete());
    RETURN_IF_ERROR(CheckOutputs(outputs, outputs_));
    return outputs;
  }
  Status Abort(bool timed_out) override { return worker_->Abort(timed_out); }
  uint64_t MemoryBytes() const override { return worker_->MemoryBytes(); }
  InstanceHealth Health() const override { return worker_->Health(); }

 private:
  std::unique_ptr<WorkerInstance> worker_;
  std::vector<TensorSpec> outputs_;
};

class PythonBackend final : public Backend {
 public:
  bool InProcess(const LoadContext&) const override { return false; }

  Result<std::unique_ptr<Instance>> Load(const LoadContext& context) override {
    if (context.manifest == nullptr) return Internal("python backend: no manifest");
    const Manifest& manifest = *context.manifest;
    auto entry = manifest.config.find("entrypoint");
    if (entry == manifest.config.end() || !entry->is_string()) {
      return Unprocessable(
          "python servable: config.entrypoint must name the function, e.g. \"predict:predict\"");
    }
    std::string entrypoint = entry->get<std::string>();
    RETURN_IF_ERROR(ValidatePythonEntrypoint(entrypoint));

    WorkerSpec spec;
    spec.sandbox = context.sandbox != nullptr ? *context.sandbox : SandboxOptions{};
    fs::path worker = spec.sandbox.python_worker;
    if (worker.empty()) {
      ASSIGN_OR_RETURN(worker, FindPythonWorker());
    }
    spec.command = {spec.sandbox.python, kWorkerInSandbox, "--entrypoint", entrypoint};
    spec.read_only_binds = {{worker, kWorkerInSandbox}};
    spec.servable_dir = context.dir;
    spec.env = {{"ORRERY_SIGNATURE", SignatureJson(manifest).dump()}};
    const std::string& environment = manifest.python.environment;
    if (!environment.empty()) {
      auto it = spec.sandbox.python_environments.find(environment);
      if (it == spec.sandbox.python_environments.end()) {
        std::string names;
        for (const auto& [name, dir] : spec.sandbox.python_environments) {
          names += (names.empty() ? "" : ", ") + name;
        }
        return Unprocessable("python.environment '" + environment +
                             "' is not an environment of this hub (it has " +
                             (names.empty() ? std::string("none") : names) +
                             "; orrery env list shows what each provides)");
      }
      std::string inside = std::string(kEnvironmentsInSandbox) + environment;
      spec.read_only_binds.push_back({it->second, inside});
      spec.command.insert(spec.command.end(), {"--path", inside});  // a path: rewritten in fallback
    }
    if (!manifest.python.requires_modules.empty()) {
      spec.env["ORRERY_REQUIRES"] = nlohmann::json(manifest.python.requires_modules).dump();
    }
    spec.label = context.label;
    spec.output = context.output;
    spec.allow_network = context.allow_network;
    ASSIGN_OR_RETURN(std::unique_ptr<WorkerInstance> instance,
                     WorkerInstance::Start(std::move(spec)));
    return std::unique_ptr<Instance>(new PythonInstance(std::move(instance), manifest.outputs));
  }
};

}  // namespace

Status ValidatePythonEntrypoint(const std::string& entrypoint) {
  size_t colon = entrypoint.find(':');
  bool valid = colon != std::string::npos && IsIdentifier(entrypoint.substr(colon + 1));
  std::string_view module = std::string_view(entrypoint).substr(0, valid ? colon : 0);
  while (valid) {
    size_t dot = module.find('.');
    valid = IsIdentifier(module.substr(0, dot));
    if (dot == std::string_view::npos) break;
    module.remove_prefix(dot + 1);
  }
  if (valid) return Status::Ok();
  return Unprocessable("python servable: config.entrypoint '" + entrypoint +
                       "' is not \"module:function\" (Python identifiers, e.g. "
                       "\"predict:predict\")");
}

Result<fs::path> FindPythonWorker() {
  const fs::path relative = fs::path("python") / "orrery_worker.py";
  std::vector<fs::path> tried;
  std::error_code error;
  fs::path exe = fs::read_symlink("/proc/self/exe", error);
  if (!error) {
    fs::path dir = exe.parent_path();
    for (int level = 0; level < 6 && !dir.empty(); ++level, dir = dir.parent_path()) {
      tried.push_back(dir / relative);
      if (fs::is_regular_file(tried.back(), error)) return tried.back();
      if (dir == dir.root_path()) break;
    }
  }
#ifdef ORRERY_PYTHON_WORKER_SOURCE
  tried.emplace_back(ORRERY_PYTHON_WORKER_SOURCE);
  if (fs::is_regular_file(tried.back(), error)) return tried.back();
#endif
  std::string where;
  for (const fs::path& path : tried) where += (where.empty() ? "" : ", ") + path.string();
  return Unavailable("python worker program not found on the server")
      .WithDetail("python worker program not found (tried " + where +
                  "); set the sandbox's python_worker");
}

ORRERY_REGISTER_BACKEND("python", PythonBackend);

}  // namespace orrery
