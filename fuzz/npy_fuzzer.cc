// libFuzzer target: the .npy reader (src/tensor/npy.h). What it accepts is a
// valid tensor, and writing it back and reading that again gives it back.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "tensor/npy.h"
#include "fuzz_util.h"

using orrery::fuzz::Require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace orrery;
  Result<Tensor> tensor = DecodeNpy(std::string_view(reinterpret_cast<const char*>(data), size), "x");
  if (!tensor.ok()) return 0;
  Require(ValidateTensor(*tensor).ok());
  Result<std::string> encoded = EncodeNpy(*tensor);
  if (!encoded.ok()) return 0;  // a datatype .npy cannot hold
  Result<Tensor> again = DecodeNpy(*encoded, "x");
  Require(again.ok());
  Require(again->datatype == tensor->datatype && again->shape == tensor->shape &&
          again->data == tensor->data);
  return 0;
}
