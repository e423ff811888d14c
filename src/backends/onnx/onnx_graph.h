// OnnxGraph: the names of an ONNX model's graph inputs and outputs, read
// straight from the protobuf bytes (OpenCV DNN does not expose its input
// names or count). Initializers listed among the inputs (older exporters do
// that) are left out: they are weights, not inputs.
//
// Only ModelProto.graph (field 7) and, within it, initializer (5), input
// (11) and output (12) are read; everything else is skipped by
// wire type. Nested message bytes are bounds-checked; nothing is allocated
// from a length prefix.
//
// Thread-safety: a value; ReadOnnxGraph is a pure function.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace orrery::onnx {

struct OnnxGraph {
  std::vector<std::string> inputs;   // graph inputs that are not initializers, in order
  std::vector<std::string> outputs;  // graph outputs, in order
};

// kUnprocessable when the bytes are not a protobuf ModelProto with a graph.
Result<OnnxGraph> ReadOnnxGraph(std::string_view bytes);

}  // namespace orrery::onnx
