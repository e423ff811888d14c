// The "torchscript" backend: runs a module saved with torch.jit.save in this
// process with libtorch (1.13), on the calling thread.
//
// Manifest config (all optional):
//   file: model.pt     the module file; default: the first .pt/.pth among `files`
//   threads: 1         intra-op (OpenMP) threads this instance's Infer may use
//   in_process: true   the only value accepted: TorchScript (no arbitrary code)
//                      runs in the server process; false is refused at load
//
// All torch code of Orrery lives in this one translation unit: each file that
// includes torch headers costs ~10 s to compile.
//
// Threading. Creating the backend (static initialisation) sets torch's
// intra-op and inter-op pools to 1 thread and OpenBLAS (which torch calls
// for matmul) to 1 thread, so an instance computes only on the request
// thread that calls it; the serving core may pin that thread. `threads`
// raises the OpenMP count for one instance: Infer sets it on the calling
// thread when it differs (OpenMP's thread count is per calling thread).
// OpenBLAS's count is process-wide and stays 1.
//
// Outputs: forward() may return a tensor (one output), a tuple or list
// (matched to the signature's outputs by position) or a Dict[str, Tensor]
// (matched by output name). Each is converted to the signature's datatype
// with Tensor.to() and must have the signature's rank and fixed dimensions.
//
// Speed. A loaded module is frozen (parameters become constants) and passed
// through torch's optimize_for_inference (e.g. Linear's weight is transposed
// once at load instead of on every call); a module either step refuses is
// served as saved. Small models are dominated by per-call dispatch, so Infer
// calls forward through a Method found once, and skips conversions of
// outputs that already have the declared datatype and layout.
#include <dlfcn.h>

#include <cstring>
#include <optional>
#include <sstream>

#include <ATen/Parallel.h>
#include <torch/script.h>

#include "backends/backend.h"
#include "backends/backend_util.h"
#include "backends/torchscript/torchscript_support.h"

namespace orrery {
namespace {

// Maps an Open Inference Protocol datatype to torch's; nullopt for those
// torch 1.13 lacks (UINT16, UINT32, UINT64) and BYTES.
std::optional<c10::ScalarType> TorchType(DataType type) {
  switch (type) {
    case DataType::kBool: return c10::kBool;
    case DataType::kUint8: return c10::kByte;
    case DataType::kInt8: return c10::kChar;
    case DataType::kInt16: return c10::kShort;
    case DataType::kInt32: return c10::kInt;
    case DataType::kInt64: return c10::kLong;
    case DataType::kFp16: return c10::kHalf;
    case DataType::kBf16: return c10::kBFloat16;
    case DataType::kFp32: return c10::kFloat;
    case DataType::kFp64: return c10::kDouble;
    default: return std::nullopt;
  }
}

// One line of a torch error: the interpreter's last line ("RuntimeError:
// ...") when it wraps the error in a TorchScript traceback, else the first.
std::string TorchMessage(const std::exception& error) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&error);
  std::string text = c10_error ? c10_error->what_without_backtrace() : error.what();
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.find_first_not_of(" \t") != std::string::npos) lines.push_back(line);
  }
  if (lines.empty()) return "unknown error";
  bool traceback = text.find("TorchScript interpreter") != std::string::npos ||
                   text.find("Traceback of TorchScript") != std::string::npos;
  std::string line = traceback ? lines.back() : lines.front();
  return PrintableText(line.substr(line.find_first_not_of(" \t")));
}

// A signature output with its torch type.
struct OutputSpec {
  TensorSpec spec;
  DataType datatype;
  c10::ScalarType torch_type;
};

Result<c10::ScalarType> SpecTorchType(const TensorSpec& spec, const char* role) {
  std::optional<DataType> type = ParseDataType(spec.datatype);
  std::optional<c10::ScalarType> torch_type = type ? TorchType(*type) : std::nullopt;
  if (!torch_type) {
    return Unprocessable(std::string("torchscript: ") + role + " '" + spec.name +
                         "' has datatype " + spec.datatype +
                         ", which torch 1.13 does not support (BOOL, UINT8, INT8..INT64, "
                         "FP16, BF16, FP32, FP64 are)");
  }
  return *torch_type;
}

std::string Names(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

// Checks forward()'s declared arguments and return type against the signature.
Status CheckSchema(const torch::jit::Module& module, const Manifest& manifest,
                   const std::string& file) {
  const c10::FunctionSchema& schema = module.get_method("forward").function().getSchema();
  std::vector<std::string> names;
  size_t required = 0;
  for (size_t i = 1; i < schema.arguments().size(); ++i) {  // 0 is self
    names.push_back(schema.arguments()[i].name());
    if (!schema.arguments()[i].default_value()) ++required;
  }
  size_t declared = manifest.inputs.size();
  if (declared < required || declared > names.size()) {
    std::vector<std::string> signature;
    for (const TensorSpec& spec : manifest.inputs) signature.push_back(spec.name);
    return Unprocessable("torchscript: forward() of " + file + " takes " +
                         std::to_string(names.size()) + " inputs (" + Names(names) +
                         ") but the signature declares " + std::to_string(declared) + " (" +
                         Names(signature) + ")");
  }
  const c10::TypePtr& type = schema.returns().at(0).type();
  size_t outputs = manifest.outputs.size();
  std::string prefix = "torchscript: forward() of " + file + " returns " + type->str();
  if (type->kind() == c10::TypeKind::TensorType && outputs != 1) {
    return Unprocessable(prefix + " but the signature declares " + std::to_string(outputs) +
                         " outputs");
  }
  if (auto tuple = type->cast<c10::TupleType>(); tuple && tuple->elements().size() != outputs) {
    return Unprocessable(prefix + " (" + std::to_string(tuple->elements().size()) +
                         " values) but the signature declares " + std::to_string(outputs) +
                         " outputs");
  }
  if (auto dict = type->cast<c10::DictType>();
      dict && dict->getKeyType()->kind() != c10::TypeKind::StringType) {
    return Unprocessable(prefix + "; a dict result needs str keys (the output names)");
  }
  switch (type->kind()) {
    case c10::TypeKind::TensorType:
    case c10::TypeKind::TupleType:
    case c10::TypeKind::ListType:
    case c10::TypeKind::DictType:
    case c10::TypeKind::AnyType: return Status::Ok();
    default:
      return Unprocessable(prefix +
                           "; expected a Tensor, a tuple or list of tensors, or a "
                           "Dict[str, Tensor]");
  }
}

// One loaded module.
// Ownership: owns its torch::jit::Module (parameters included).
// Thread-safety: Infer from one thread at a time; MemoryBytes from any.
class TorchScriptInstance final : public Instance {
 public:
  static Result<std::unique_ptr<Instance>> Create(const LoadContext& context,
                                                  const torchscript::Options& options) {
    std::vector<c10::ScalarType> input_types;
    for (const TensorSpec& spec : context.manifest->inputs) {
      ASSIGN_OR_RETURN(c10::ScalarType type, SpecTorchType(spec, "input"));
      input_types.push_back(type);
    }
    std::vector<OutputSpec> outputs;
    for (const TensorSpec& spec : context.manifest->outputs) {
      ASSIGN_OR_RETURN(c10::ScalarType type, SpecTorchType(spec, "output"));
      outputs.push_back({spec, *ParseDataType(spec.datatype), type});
    }
    torch::jit::Module module;
    std::string path = (context.dir / options.file).string();
    try {
      module = torch::jit::load(path, c10::Device(c10::kCPU));
      module.eval();
    } catch (const std::exception& e) {
      return Unprocessable("cannot load " + options.file + ": " + TorchMessage(e));
    }
    if (!module.find_method("forward")) {
      return Unprocessable("torchscript: " + options.file + " has no forward() method");
    }
    try {
      RETURN_IF_ERROR(CheckSchema(module, *context.manifest, options.file));
    } catch (const std::exception& e) {
      return Unprocessable("torchscript: cannot read forward() of " + options.file + ": " +
                           TorchMessage(e));
    }
    uint64_t memory_bytes = ParameterBytes(module);
    return std::unique_ptr<Instance>(new TorchScriptInstance(Optimized(module), memory_bytes,
                                                             std::move(input_types),
                                                             std::move(outputs), options.threads));
  }

  Result<std::vector<Tensor>> Infer(const std::vector<Tensor>& inputs, Deadline) override {
    // The deadline is not checked: forward() cannot be interrupted. Always
    // InferenceMode: torch 1.13's profiling executor fails ("Inference
    // tensors cannot be saved for backward") when one module is run both
    // with and without it.
    c10::InferenceMode inference_mode;
    c10::IValue result;
    try {
      if (at::get_num_threads() != threads_) at::set_num_threads(threads_);
      std::vector<c10::IValue> args;
      args.reserve(inputs.size());
      for (size_t i = 0; i < inputs.size(); ++i)
        args.emplace_back(ToTorch(inputs[i], input_types_[i]));
      result = forward_(std::move(args));
    } catch (const std::exception& e) {
      return InvalidArgument("torchscript: the model failed on this input: " + TorchMessage(e));
    }
    try {
      return ToOutputs(result);
    } catch (const std::exception& e) {
      return Internal("torchscript: cannot convert the model's outputs: " + TorchMessage(e));
    }
  }

  uint64_t MemoryBytes() const override { return memory_bytes_; }

 private:
  // A Module is a reference-counted handle: copying it shares the object.
  TorchScriptInstance(const torch::jit::Module& module, uint64_t memory_bytes,
                      std::vector<c10::ScalarType> input_types, std::vector<OutputSpec> outputs,
                      int threads)
      : module_(module),
        forward_(module_.get_method("forward")),
        input_types_(std::move(input_types)),
        outputs_(std::move(outputs)),
        threads_(threads),
        memory_bytes_(memory_bytes) {}

  // Counted before freezing, which turns parameters into graph constants.
  static uint64_t ParameterBytes(const torch::jit::Module& module) {
    uint64_t bytes = 0;
    for (const at::Tensor& p : module.parameters()) bytes += p.nbytes();
    for (const at::Tensor& b : module.buffers()) bytes += b.nbytes();
    return bytes;
  }

  // Frozen and optimised for inference, or the module as saved when torch
  // refuses (freezing needs every attribute forward() uses to be constant).
  static torch::jit::Module Optimized(const torch::jit::Module& module) {
    try {
      torch::jit::Module handle = module;  // freezing works on a clone; this stays as saved
      return torch::jit::optimize_for_inference(handle);
    } catch (const std::exception&) {
      return module;
    }
  }

  // A copy: Tensor::data need not be aligned, and the model may write to its inputs.
  static at::Tensor ToTorch(const Tensor& input, c10::ScalarType type) {
    at::Tensor t = at::empty(input.shape, at::TensorOptions().dtype(type));
    if (!input.data.empty()) std::memcpy(t.data_ptr(), input.data.data(), input.data.size());
    return t;
  }

  Result<std::vector<Tensor>> ToOutputs(const c10::IValue& result) {
    std::vector<c10::IValue> values;
    if (result.isTensor()) {
      values.push_back(result);
    } else if (result.isTuple()) {
      for (const c10::IValue& v : result.toTupleRef().elements()) values.push_back(v);
    } else if (result.isList()) {
      for (const c10::IValue& v : result.toListRef()) values.push_back(v);
    } else if (result.isGenericDict()) {
      return DictOutputs(result.toGenericDict());
    } else {
      return Internal("torchscript: forward() returned " + result.tagKind() +
                      "; expected a tensor, a tuple/list of tensors or a dict");
    }
    if (values.size() != outputs_.size()) {
      return Internal("torchscript: forward() returned " + std::to_string(values.size()) +
                      " values but the signature declares " + std::to_string(outputs_.size()) +
                      " outputs");
    }
    std::vector<Tensor> out;
    for (size_t i = 0; i < values.size(); ++i) {
      ASSIGN_OR_RETURN(Tensor tensor, ToOutput(values[i], outputs_[i]));
      out.push_back(std::move(tensor));
    }
    return out;
  }

  Result<std::vector<Tensor>> DictOutputs(const c10::Dict<c10::IValue, c10::IValue>& dict) {
    std::vector<Tensor> out;
    for (const OutputSpec& output : outputs_) {
      auto it = dict.find(c10::IValue(output.spec.name));
      if (it == dict.end()) {
        return Internal("torchscript: forward() returned a dict without output '" +
                        output.spec.name + "'");
      }
      ASSIGN_OR_RETURN(Tensor tensor, ToOutput(it->value(), output));
      out.push_back(std::move(tensor));
    }
    return out;
  }

  static Result<Tensor> ToOutput(const c10::IValue& value, const OutputSpec& output) {
    const std::string& name = output.spec.name;
    if (!value.isTensor()) {
      return Internal("torchscript: output '" + name + "' is a " + value.tagKind() +
                      ", not a tensor");
    }
    at::Tensor t = value.toTensor();
    if (t.is_complex() || t.is_quantized()) {
      return Internal("torchscript: output '" + name + "' is " + std::string(t.dtype().name()) +
                      ", which cannot be converted to " + output.spec.datatype);
    }
    if (t.layout() != c10::kStrided) t = t.to_dense();
    if (t.scalar_type() != output.torch_type) t = t.to(output.torch_type);
    if (!t.is_contiguous()) t = t.contiguous();
    Tensor out{name, output.datatype, t.sizes().vec(), {}};
    RETURN_IF_ERROR(torchscript::CheckOutputShape(output.spec, out.shape));
    out.data.assign(static_cast<const char*>(t.data_ptr()), t.nbytes());
    return out;
  }

  torch::jit::Module module_;
  torch::jit::Method forward_;                // module_'s, looked up once
  std::vector<c10::ScalarType> input_types_;  // per signature input
  std::vector<OutputSpec> outputs_;           // per signature output
  int threads_;
  uint64_t memory_bytes_;  // parameters + buffers
};

// Ownership: stateless; instances own their modules.
// Thread-safety: Load may run on several load threads at once.
class TorchScriptBackend final : public Backend {
 public:
  TorchScriptBackend() { ConfigureThreads(); }

  bool InProcess(const LoadContext&) const override { return true; }

  Result<std::unique_ptr<Instance>> Load(const LoadContext& context) override {
    if (context.manifest == nullptr) return Internal("torchscript: no manifest");
    ASSIGN_OR_RETURN(torchscript::Options options, torchscript::ParseOptions(context));
    return TorchScriptInstance::Create(context, options);
  }

 private:
  // Runs once, during static initialisation (the registry creates the
  // backend then), before any torch work could have started pools.
  static void ConfigureThreads() {
    try {
      at::set_num_threads(1);
      at::set_num_interop_threads(1);
    } catch (const std::exception&) {
      // The inter-op pool already started (torch used before us): keep it.
    }
    // Torch links OpenBLAS (through libblas.so.3 or directly); its pthread
    // pool would otherwise use every core for each matmul.
    using SetThreads = void (*)(int);
    if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
      set(1);
    }
  }
};

}  // namespace

ORRERY_REGISTER_BACKEND("torchscript", TorchScriptBackend);

}  // namespace orrery
