// The bodies `orrery infer` sends and reads: --input specs, inference
// requests (plain JSON or the binary tensor data extension, see
// shared/protocol.md section 10) and answers taken apart into output files.
//
// Everything here works on values and local files; nothing talks to the
// server, so the command's logic is testable without one. Usage problems
// (a bad spec, a missing file, a duplicate input) are kInvalidArgument;
// an answer the CLI cannot take apart is kInternal.
//
// Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "tensor/tensor.h"

namespace orrery::cli {

// One --input value: "request.json", "x.npy" or "NAME=x.npy".
struct InputSpec {
  enum class Kind { kRequestJson, kNpy };
  Kind kind = Kind::kNpy;
  std::string name;  // the NAME= part; empty for a .json or a bare .npy
  std::filesystem::path file;
};

// Parses one spec; does not look at the file. kInvalidArgument naming the
// spec for any other form (another extension, NAME=x.json, an empty part).
Result<InputSpec> ParseInputSpec(std::string_view text);

// Checks the whole --input list before anything is sent: at least one
// spec; a .json request and a bare .npy must each come alone; input names
// are unique; every file exists. kInvalidArgument naming the culprit.
Status CheckInputSpecs(const std::vector<InputSpec>& specs);

// What a request asks for besides its inputs.
struct RequestOptions {
  std::vector<std::string> outputs;   // --output; empty asks for all outputs
  bool binary_outputs = false;        // --save: every output as binary data
  std::optional<int64_t> timeout_us;  // request parameter "timeout"
};

// A request body. `json_length` is set when binary tensors follow the JSON
// part: the value of the Inference-Header-Content-Length header.
struct InferBody {
  std::string body;
  std::optional<size_t> json_length;
};

// A whole v2 request read from `source` (named in errors), with `options`
// applied: "outputs" replaced when options.outputs is not empty, output and
// request parameters added. kInvalidArgument when it is not a JSON object
// with an "inputs" array.
Result<InferBody> JsonRequestBody(std::string_view text, const std::string& source,
                                  const RequestOptions& options);

// The binary-extension request for `inputs`: a JSON header listing each
// input with parameters.binary_data_size, then their bytes in order.
Result<InferBody> BinaryRequestBody(const std::vector<Tensor>& inputs,
                                    const RequestOptions& options);

// The .npy `file` as a tensor called `name`; kInvalidArgument naming the
// file when it cannot be read or decoded.
Result<Tensor> LoadNpy(const std::filesystem::path& file, std::string name);

// One output of an answer.
struct AnswerOutput {
  nlohmann::json json;           // its object in the JSON part
  std::optional<Tensor> tensor;  // set when it came as binary data
};

// An inference answer taken apart.
struct InferAnswer {
  nlohmann::json header;  // the JSON part
  std::vector<AnswerOutput> outputs;
};

// Splits `body` at `header_length` (the Inference-Header-Content-Length
// value; empty when absent, meaning the body is all JSON). Binary outputs
// take their binary_data_size bytes from the rest, in order; the sizes must
// add up to exactly the rest.
Result<InferAnswer> SplitInferAnswer(std::string_view body, std::string_view header_length);

// Writes each output under `dir` (created if missing) and returns the files
// in output order: <name>.npy for a binary numeric output (BF16 widened to
// FP32; NumPy has no bfloat16), <name>.json for a BYTES output
// ({"name","datatype","shape","data":[strings]}) and for an output that came
// as JSON (its object as sent). kInternal for an output name that is not a
// plain file name.
Result<std::vector<std::filesystem::path>> SaveOutputs(const InferAnswer& answer,
                                                       const std::filesystem::path& dir);

}  // namespace orrery::cli
