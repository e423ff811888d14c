// Torch-free parts of the torchscript backend: its manifest config and the
// output shape check. Kept out of torchscript_backend.cc so that they compile
// without torch's headers and can be tested on their own.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.h"

namespace orrery::torchscript {

// The manifest's `config` for this backend.
struct Options {
  std::string file;  // config.file, else the first .pt/.pth of `files`; relative to the package
  int threads = 1;   // config.threads: intra-op threads of one instance, 1..64
};

// kUnprocessable for a bad config, no model file, or a file that is absent
// ("cannot load model.pt: file not found").
Result<Options> ParseOptions(const LoadContext& context);

// kInternal unless `shape` has the rank of `spec` and its fixed dimensions.
Status CheckOutputShape(const TensorSpec& spec, const std::vector<int64_t>& shape);



}  // namespace orrery::torchscript
