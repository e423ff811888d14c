// libFuzzer target: the binary tensor extension's decoders
// (src/tensor/infer_codec.h). The first two bytes give the JSON part's
// length (Inference-Header-Content-Length); the request and the raw binary
// form (length 0) must both decode to valid tensors or refuse cleanly.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "tensor/infer_codec.h"
#include "fuzz_util.h"

using orrery::fuzz::Require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace orrery;
  if (size < 4) return 0;
  uint64_t header_length = data[0] | (uint64_t{data[1]} << 8);
  DataType raw_type = static_cast<DataType>(data[2] % 14);
  int64_t raw_dim = static_cast<int8_t>(data[3]);  // -1 is the deducible dimension
  std::string_view body(reinterpret_cast<const char*>(data) + 4, size - 4);
  DecodeLimits limits;
  limits.max_elements = 1 << 16;
  Result<InferRequest> request = DecodeInferRequest(body, header_length, limits);
  if (request.ok()) {
    for (const Tensor& tensor : request->inputs) Require(ValidateTensor(tensor).ok());
  }
  Result<Tensor> raw = DecodeRawBinaryInput(body, "x", raw_type, {raw_dim, 2});
  if (raw.ok()) Require(ValidateTensor(*raw).ok());
  return 0;
}
