// The host side of include/orrery/servable.h.
//
// Why things are as they are:
// - RTLD_NOW: an unresolved symbol fails the load with the linker's
//   message, not a request later; RTLD_LOCAL: two plugins (or two versions
//   of one) may define the same names.
// - Output memory comes from a host callback so that the host owns it and
//   no free() crosses the ABI (the plugin may use another allocator or
//   runtime). The callback is noexcept: an exception must never unwind
//   through the plugin's C frames.
// - create/destroy are serialised by one process-wide mutex (ABI rule 3),
//   so that plugins may set up shared globals in create without locks.
#include "backends/native/native_library.h"

#include <dlfcn.h>

#include <array>
#include <cstring>
#include <deque>
#include <iterator>
#include <mutex>
#include <set>

namespace orrery {
namespace {

static_assert(static_cast<int>(DataType::kBool) == ORRERY_TYPE_BOOL);
static_assert(static_cast<int>(DataType::kFp16) == ORRERY_TYPE_FP16);
static_assert(static_cast<int>(DataType::kFp32) == ORRERY_TYPE_FP32);
static_assert(static_cast<int>(DataType::kBf16) == ORRERY_TYPE_BF16);
static_assert(static_cast<int>(DataType::kBytes) == ORRERY_TYPE_BYTES);

constexpr size_t kErrorBufferSize = 4096;  // the ABI promises at least 256

std::mutex& LifecycleMutex() {
  static std::mutex* mutex = new std::mutex();  // never destroyed: used until exit
  return *mutex;
}

// A NUL-terminated error buffer for one ABI call.
struct ErrorBuffer {
  std::array<char, kErrorBufferSize> text{};
  std::string Message(int code) {
    text.back() = '\0';  // the plugin may have forgotten
    if (text[0] != '\0') return std::string(text.data());
    return "failed with code " + std::to_string(code) + " and no message";
  }
};

// The host_context of one infer call: builds output tensors on request.
class OutputCollector {
 public:
  explicit OutputCollector(const NativeLimits& limits) : limits_(limits) {}

  static void* Alloc(void* context, const char* name, int32_t datatype, const int64_t* shape,
                     uint32_t rank, uint64_t byte_size) noexcept {
    auto* self = static_cast<OutputCollector*>(context);
    try {
      return self->AllocImpl(name, datatype, shape, rank, byte_size);
    } catch (const std::exception& e) {  // bad_alloc, length_error
      self->Refuse(std::string("cannot allocate output: ") + e.what());
      return nullptr;
    }
  }

  const std::string& refusal() const { return refusal_; }
  std::vector<Tensor> Take() {
    return {std::make_move_iterator(outputs_.begin()), std::make_move_iterator(outputs_.end())};
  }

 private:
  void* AllocImpl(const char* name, int32_t datatype, const int64_t* shape, uint32_t rank,
                  uint64_t byte_size) {
    if (name == nullptr || *name == '\0') return Refuse("output with an empty name");
    const std::string label = "output '" + std::string(name) + "': ";
    if (!names_.insert(name).second) return Refuse(label + "allocated twice");
    if (datatype < ORRERY_TYPE_BOOL || datatype > ORRERY_TYPE_BYTES) {
      return Refuse(label + "unknown datatype " + std::to_string(datatype));
    }
    if (rank > limits_.max_rank) return Refuse(label + "rank " + std::to_string(rank) + " too big");
    if (rank > 0 && shape == nullptr) return Refuse(label + "NULL shape");
    if (byte_size > limits_.max_output_bytes) {
      return Refuse(label + std::to_string(byte_size) + " bytes is over the limit of " +
                    std::to_string(limits_.max_output_bytes));
    }
    Tensor tensor;
    tensor.name = name;
    tensor.datatype = static_cast<DataType>(datatype);
    tensor.shape.assign(shape, shape + rank);
    tensor.data.resize(byte_size);  // may throw bad_alloc: caught in Alloc
    if (Status status = CheckSize(tensor); !status.ok()) return Refuse(status.message());
    outputs_.push_back(std::move(tensor));
    return outputs_.back().data.data();
  }

  // Shape and byte size agree (BYTES content is checked after infer).
  static Status CheckSize(const Tensor& tensor) {
    if (tensor.datatype != DataType::kBytes) return ValidateTensor(tensor);
    for (int64_t dim : tensor.shape) {
      if (dim < 0) return InvalidArgument("output '" + tensor.name + "': negative dimension");
    }
    std::optional<int64_t> count = tensor.ElementCount();
    if (!count || static_cast<uint64_t>(*count) > tensor.data.size() / 4) {
      return InvalidArgument("output '" + tensor.name + "': " + std::to_string(tensor.data.size()) +
                             " bytes cannot hold the length prefixes of its BYTES elements");
    }
    return Status::Ok();
  }

  std::nullptr_t Refuse(std::string why) {
    if (refusal_.empty()) refusal_ = std::move(why);
    return nullptr;
  }

  const NativeLimits& limits_;
  std::set<std::string> names_;
  // A deque: push_back never moves the elements, so the buffers handed to
  // the plugin (inline in a short std::string) stay put.
  std::deque<Tensor> outputs_;
  std::string refusal_;  // the first refused allocation, if any
};

std::vector<OrreryTensor> ToAbi(const std::vector<Tensor>& inputs) {
  std::vector<OrreryTensor> abi;
  abi.reserve(inputs.size());
  for (const Tensor& tensor : inputs) {
    abi.push_back(OrreryTensor{tensor.name.c_str(), static_cast<int32_t>(tensor.datatype),
                               static_cast<uint32_t>(tensor.shape.size()), tensor.shape.data(),
                               tensor.data.data(), tensor.data.size()});
  }
  return abi;
}

// dlerror() names the host path; the caller sees the package's name for it.
std::string HidePath(std::string text, const std::string& path, const std::string& label) {
  for (size_t at = text.find(path); at != std::string::npos; at = text.find(path, at)) {
    text.replace(at, path.size(), label);
    at += label.size();
  }
  return text;
}

}  // namespace

std::string AbiVersionString(uint32_t version) {
  return std::to_string(version >> 16) + "." + std::to_string(version & 0xffff);
}

Result<std::shared_ptr<NativeLibrary>> NativeLibrary::Open(const std::filesystem::path& path,
                                                           std::string label, NativeLimits limits) {
  dlerror();  // NOLINT(concurrency-mt-unsafe): glibc keeps it per thread; clears a stale error
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();  // NOLINT(concurrency-mt-unsafe): per thread in glibc
    return Unprocessable("cannot load native plugin " + label + ": " +
                         HidePath(why != nullptr ? why : "dlopen failed", path.string(), label));
  }
  std::shared_ptr<NativeLibrary> library(new NativeLibrary(handle, std::move(label), limits));
  RETURN_IF_ERROR(library->Resolve());
  RETURN_IF_ERROR(library->CheckVersion());
  return library;
}

NativeLibrary::~NativeLibrary() {
  dlclose(handle_);
}

Status NativeLibrary::Resolve() {
  auto resolve = [this](const char* name, auto& slot) -> Status {
    slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(dlsym(handle_, name));
    if (slot != nullptr) return Status::Ok();
    return Unprocessable("native plugin " + label_ + " does not export " + name +
                         " (declare it extern \"C\" with ORRERY_SERVABLE_EXPORT)");
  };
  RETURN_IF_ERROR(resolve(ORRERY_SERVABLE_SYMBOL_ABI_VERSION, symbols_.abi_version));
  RETURN_IF_ERROR(resolve(ORRERY_SERVABLE_SYMBOL_CREATE, symbols_.create));
  RETURN_IF_ERROR(resolve(ORRERY_SERVABLE_SYMBOL_INFER, symbols_.infer));
  return resolve(ORRERY_SERVABLE_SYMBOL_DESTROY, symbols_.destroy);
}

Status NativeLibrary::CheckVersion() {
  abi_version_ = symbols_.abi_version();
  const uint32_t major = abi_version_ >> 16, minor = abi_version_ & 0xffff;
  const std::string versions = "native plugin " + label_ + " was built for servable ABI " +
                               AbiVersionString(abi_version_) + ", this server implements " +
                               AbiVersionString(ORRERY_SERVABLE_ABI_VERSION);
  if (major != ORRERY_SERVABLE_ABI_VERSION_MAJOR) {
    return Unprocessable(versions +
                         ": major versions differ; rebuild it against a matching "
                         "orrery/servable.h");
  }
  if (minor > ORRERY_SERVABLE_ABI_VERSION_MINOR) {
    return Unprocessable(versions + ": it needs a newer server");
  }
  return Status::Ok();
}

Result<std::unique_ptr<NativeState>> NativeLibrary::Create(const std::string& package_dir,
                                                           const std::string& config_json) {
  OrreryServableState* state = nullptr;
  ErrorBuffer error;
  int code = 0;
  {
    std::lock_guard lock(LifecycleMutex());
    code = symbols_.create(package_dir.c_str(), config_json.c_str(), &state, error.text.data(),
                           error.text.size());
  }
  if (code != ORRERY_OK) {
    return Unprocessable("native plugin " + label_ + ": create: " + error.Message(code));
  }
  if (state == nullptr) {
    return Unprocessable("native plugin " + label_ + ": create returned OK but no state");
  }
  return std::unique_ptr<NativeState>(new NativeState(shared_from_this(), state));
}

void NativeLibrary::Destroy(OrreryServableState* state) const {
  std::lock_guard lock(LifecycleMutex());
  symbols_.destroy(state);
}

NativeState::~NativeState() {
  library_->Destroy(state_);
}

Result<std::vector<Tensor>> NativeState::Infer(const std::vector<Tensor>& inputs) {
  const NativeLibrary& library = *library_;
  std::vector<OrreryTensor> abi_inputs = ToAbi(inputs);
  OutputCollector collector(library.limits_);
  OrreryOutputAllocator allocator{&collector, &OutputCollector::Alloc};
  ErrorBuffer error;
  const int code =
      library.symbols_.infer(state_, abi_inputs.data(), static_cast<uint32_t>(abi_inputs.size()),
                             &allocator, error.text.data(), error.text.size());
  const std::string prefix = "native plugin " + library.label_ + ": ";
  if (!collector.refusal().empty()) {
    std::string message = prefix + collector.refusal();
    if (code != ORRERY_OK) message += " (plugin: " + error.Message(code) + ")";
    return Internal(message);
  }
  if (code == ORRERY_ERROR_INVALID_ARGUMENT) return InvalidArgument(prefix + error.Message(code));
  if (code != ORRERY_OK) return Internal(prefix + error.Message(code));
  std::vector<Tensor> outputs = collector.Take();
  for (const Tensor& output : outputs) {
    if (Status status = ValidateTensor(output); !status.ok()) {
      return Internal(prefix + status.message());
    }
  }
  return outputs;
}

}  // namespace orrery
