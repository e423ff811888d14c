// Parts of the onnx backend that do not call OpenCV: its manifest config,
// binding signature names to graph names, OpenCV's error text, and output
// shapes. Separate so that each can be tested on its own.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.h"

namespace orrery::onnx {

// The manifest's `config` for this backend.
struct Options {
  std::string file;  // config.file, else the first .onnx of `files`; relative to the package
  int threads = 1;   // config.threads, 1..64: see onnx_backend.cc (process-wide in OpenCV)
};

// kUnprocessable for a bad config, no model file, or an absent file
// ("cannot load model.onnx: file not found").
Result<Options> ParseOptions(const LoadContext& context);

// The graph names of the signature's tensors, in signature order: by name
// when the signature names exactly the graph's tensors (in any order), else
// by position when the counts agree. kUnprocessable otherwise, e.g. "onnx:
// model.onnx has 2 inputs (a, b) but the signature declares 1 (x)".
// `role` is "inputs" or "outputs".
Result<std::vector<std::string>> Bind(const std::vector<TensorSpec>& specs,
                                      const std::vector<std::string>& graph_names,
                                      const std::string& role, const std::string& file);

// The load error for OpenCV's exception text: "onnx: operator 'Hardmax' is
// not supported by the OpenCV DNN runtime (layer 'hardmax_1')" when it could
// not create a layer, else "cannot load <file>: <CleanMessage>".
Status LoadError(std::string_view what, const std::string& file);

// OpenCV's exception text on one line, without its "OpenCV(4.6.0)
// file.cpp:12: error: (-2:Unspecified error)" and "in function '...'"
// parts, in printable ASCII (other bytes as \xNN).
std::string CleanMessage(std::string_view what);

// The shape to report for an output the runtime returned with `shape`:
// `shape` itself when it fits `spec` (rank and fixed dimensions), else
// `spec` with its single -1 (if any) computed from the element count, as
// OpenCV may add or drop unit dimensions. kInternal when neither fits.
Result<std::vector<int64_t>> FitShape(const TensorSpec& spec, const std::vector<int64_t>& shape);

}  // namespace orrery::onnx
