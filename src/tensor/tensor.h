// Tensor and DataType: the values inference passes between the protocol
// codecs (infer_codec.h), the serving core and the backends.
//
// Data is row-major, flattened, little-endian, no padding (the Open Inference
// Protocol's binary layout). BYTES tensors hold, per element, a uint32 LE
// length followed by that many bytes, concatenated.
//
// Thread-safety: values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace orrery {

enum class DataType : uint8_t {
  kBool,
  kUint8,
  kUint16,
  kUint32,
  kUint64,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kFp16,
  kFp32,
  kFp64,
  kBf16,
  kBytes,
};

// "BOOL", "UINT8", ..., "BYTES" (the protocol's names).
std::string_view DataTypeName(DataType type);
// nullopt for anything that is not exactly one of the 14 names.
std::optional<DataType> ParseDataType(std::string_view name);
// Bytes per element; 0 for BYTES (variable).
size_t DataTypeSize(DataType type);

struct Tensor {
  std::string name;
  DataType datatype = DataType::kFp32;
  std::vector<int64_t> shape;  // every dimension >= 0; [] is a scalar (1 element)
  std::string data;            // raw bytes as described above

  // Product of the shape; nullopt when it overflows int64.
  std::optional<int64_t> ElementCount() const;
};

// "[2,3]": a shape as messages show it.
std::string ShapeString(const std::vector<int64_t>& shape);

// BYTES tensor data holding `elements` (each a u32 LE length, then its bytes).
std::string BytesElements(const std::vector<std::string>& elements);

// The elements as doubles, for comparisons and reports: BOOL as 0/1, FP16
// and BF16 widened, 64-bit integers rounded to the nearest double. Empty
// for BYTES.
std::vector<double> TensorValues(const Tensor& tensor);

// kInvalidArgument naming the tensor when a dimension is negative, the
// element count overflows, the byte size disagrees with shape x element
// size, or (BYTES) the length-prefixed elements do not parse to exactly
// ElementCount() elements.
Status ValidateTensor(const Tensor& tensor);

}  // namespace orrery
