// The Open Inference Protocol (KServe v2) REST inference codec: request
// bodies in, response bodies out, including the binary tensor data
// extension and raw binary requests (docs/inference.md).
//
// Decoding is strict: every malformed request is a kInvalidArgument whose
// message names the field or tensor at fault (HTTP 400). The decoder never
// recurses on input nesting, and never allocates from a declared shape
// before the data has been checked against it, so hostile bodies cost at
// most time and memory proportional to their own size.
//
// JSON numbers in `data` follow the datatype strictly: BOOL takes only
// true/false; integer datatypes take only integer literals (no fraction or
// exponent) within the type's range; FP32/FP64 take any number and the
// tokens NaN, Infinity and -Infinity that Python's json module writes
// (values past the type's range are errors, values too small round to 0);
// BYTES takes strings; FP16/BF16 cannot travel as JSON.
//
// Thread-safety: free functions over values; safe to call concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "tensor/tensor.h"

namespace orrery {

struct RequestedOutput {
  std::string name;
  std::optional<bool> binary;  // the output's "parameters": {"binary_data": bool}
  // The output's other "parameters" as sent (binary_data excluded), e.g. for
  // the caller to refuse "classification", which the codec does not
  // implement. Null when there are none: no allocation on the hot path.
  nlohmann::json parameters;
};

struct InferRequest {
  std::string id;
  bool has_id = false;
  std::vector<Tensor> inputs;            // in request order, data decoded to raw bytes
  std::vector<RequestedOutput> outputs;  // empty = all outputs
  bool binary_data_output = false;       // request-level "binary_data_output"
  std::optional<int64_t> priority;       // request parameter "priority"
  std::optional<int64_t> timeout_us;     // request parameter "timeout" (microseconds)
  nlohmann::json parameters = nlohmann::json::object();  // all request-level parameters as sent
};

struct DecodeLimits {
  int max_depth = 64;                  // JSON nesting (objects and arrays)
  uint64_t max_elements = 1ull << 28;  // per tensor
};

// Decodes a POST .../infer body. `body` is the whole HTTP body;
// `header_length` the Inference-Header-Content-Length header value when
// present (the JSON part's length; binary tensors follow it). Without the
// header the whole body is JSON. A header value of 0 announces a raw binary
// request, which needs the model's signature: use DecodeRawBinaryInput.
//
// Inputs keep request order; each binary input (parameters.binary_data_size)
// takes its bytes from the part after the JSON, in the order inputs are
// listed, and those sizes must add up to exactly that part's length.
// Unknown fields are ignored. Input parameters other than binary_data_size
// are checked (string, number or boolean) and dropped; shared_memory_* is
// refused (the shared-memory extension is not offered: GET /v2 does not list it).
Result<InferRequest> DecodeInferRequest(std::string_view body,
                                        std::optional<uint64_t> header_length,
                                        const DecodeLimits& limits = {});

// Raw binary request (Inference-Header-Content-Length: 0): the body is one
// tensor of the model's only input. `shape` is the signature's shape with at
// most one -1, deduced from the byte size (which must divide evenly). A
// BYTES input must have shape [1] (or another shape of one element, no -1):
// the whole body is that element's bytes, and the tensor gets the uint32
// length prefix. kInvalidArgument otherwise.
Result<Tensor> DecodeRawBinaryInput(std::string_view body, const std::string& name,
                                    DataType datatype, const std::vector<int64_t>& shape);

struct InferResponse {
  std::string model_name, model_version, id;
  bool has_id = false;
  std::vector<Tensor> outputs;
  nlohmann::json parameters = nlohmann::json::object();  // omitted from the JSON when empty
};

struct EncodedBody {
  std::string body;
  // Set when binary tensors follow: the Inference-Header-Content-Length value.
  std::optional<size_t> json_length;
};

// Encodes a 200 response: {"model_name","model_version","id"? (when
// has_id),"parameters"? (when not empty),"outputs":[...]}, then the binary
// outputs' bytes in output order. Every output in `response.outputs` is
// written, in that order (choosing which outputs to return is the caller's
// job).
//
// Each output goes binary when its RequestedOutput::binary (matched by name)
// says so, else when request.binary_data_output. FP16 and BF16 outputs
// always go binary, and so does a BYTES output with any element that is not
// valid UTF-8 (JSON strings cannot carry arbitrary bytes). With
// `raw_binary_request` every output goes binary (the spec's rule).
//
// JSON numbers are the shortest text that reads back to the same value
// (FP32 as float); NaN and infinities are written NaN, Infinity, -Infinity.
// Outputs are expected to pass ValidateTensor; data that does not is encoded
// without reading past it. Strings that are not valid UTF-8 (names, id) get
// U+FFFD in place of the bad bytes.
EncodedBody EncodeInferResponse(const InferResponse& response, const InferRequest& request,
                                bool raw_binary_request = false);

}  // namespace orrery
