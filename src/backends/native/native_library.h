// NativeLibrary and NativeState: the host side of the C ABI in
// include/orrery/servable.h, used by the in-process `native` backend and by
// the orrery-native-worker executable alike.
//
// NativeLibrary::Open dlopen()s a plugin (RTLD_NOW | RTLD_LOCAL), resolves
// the four exports and checks the version handshake. NativeLibrary::Create
// builds one plugin state; NativeState::Infer converts orrery::Tensor to and
// from the C structs and checks what the plugin produced.
//
// Errors: a plugin that cannot be opened, lacks an export, speaks another
// ABI version or fails create is kUnprocessable (the servable is broken);
// an infer failure is kInvalidArgument (ORRERY_ERROR_INVALID_ARGUMENT) or
// kInternal, with the plugin's message. Nothing here can survive a plugin
// that crashes: that is what the worker process is for.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "orrery/servable.h"
#include "tensor/tensor.h"

namespace orrery {

class NativeState;

struct NativeLimits {
  uint64_t max_output_bytes = 1ull << 30;  // per output tensor (the frame limit)
  uint32_t max_rank = 64;                  // dimensions of an output tensor
};

// One dlopen()ed plugin.
// Ownership: owns the dlopen handle (dlclose()d by the destructor); states
// hold a shared_ptr to it, so the code stays mapped while any state lives.
// Thread-safety: immutable after Open; Create may be called from any thread
// (plugin create/destroy calls are serialised process-wide, per the ABI).
class NativeLibrary : public std::enable_shared_from_this<NativeLibrary> {
 public:
  // `label` names the library in messages (e.g. "lib/model.so").
  static Result<std::shared_ptr<NativeLibrary>> Open(const std::filesystem::path& path,
                                                     std::string label, NativeLimits limits = {});
  ~NativeLibrary();
  NativeLibrary(const NativeLibrary&) = delete;
  NativeLibrary& operator=(const NativeLibrary&) = delete;

  // Calls orrery_servable_create. kUnprocessable with the plugin's message.
  Result<std::unique_ptr<NativeState>> Create(const std::string& package_dir,
                                              const std::string& config_json);

  const std::string& label() const { return label_; }
  uint32_t abi_version() const { return abi_version_; }

 private:
  friend class NativeState;
  struct Symbols {
    OrreryServableAbiVersionFn abi_version = nullptr;
    OrreryServableCreateFn create = nullptr;
    OrreryServableInferFn infer = nullptr;
    OrreryServableDestroyFn destroy = nullptr;
  };
  NativeLibrary(void* handle, std::string label, NativeLimits limits)
      : handle_(handle), label_(std::move(label)), limits_(limits) {}
  Status Resolve();
  Status CheckVersion();
  void Destroy(OrreryServableState* state) const;

  void* handle_;
  std::string label_;
  NativeLimits limits_;
  Symbols symbols_;
  uint32_t abi_version_ = 0;
};

// One plugin state: what one instance (or one worker process) runs.
// Ownership: owns the plugin state (orrery_servable_destroy in the
// destructor) and shares ownership of its library.
// Thread-safety: Infer from one thread at a time (ABI rule 1).
class NativeState {
 public:
  ~NativeState();
  NativeState(const NativeState&) = delete;
  NativeState& operator=(const NativeState&) = delete;

  // Runs the plugin on `inputs`; returns its outputs in the order it
  // allocated them, each checked with ValidateTensor.
  Result<std::vector<Tensor>> Infer(const std::vector<Tensor>& inputs);

 private:
  friend class NativeLibrary;
  NativeState(std::shared_ptr<NativeLibrary> library, OrreryServableState* state)
      : library_(std::move(library)), state_(state) {}

  std::shared_ptr<NativeLibrary> library_;
  OrreryServableState* state_;
};

// "1.0" for an ABI version word.
std::string AbiVersionString(uint32_t version);

}  // namespace orrery
