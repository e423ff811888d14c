// libFuzzer target: the JSON inference-request decoder (the JSON tensor
// scanner, src/tensor/infer_codec.h). A decoded request's tensors must hold
// exactly the bytes their datatype and shape say.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "tensor/infer_codec.h"
#include "fuzz_util.h"

using orrery::fuzz::Require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace orrery;
  std::string_view body(reinterpret_cast<const char*>(data), size);
  DecodeLimits limits;
  limits.max_elements = 1 << 16;
  Result<InferRequest> request = DecodeInferRequest(body, std::nullopt, limits);
  if (!request.ok()) {
    Require(!request.status().message().empty());
    return 0;
  }
  for (const Tensor& tensor : request->inputs) {
    Require(ValidateTensor(tensor).ok());
  }
  return 0;
}
