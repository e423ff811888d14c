#include "tensor/tensor.h"

#include <array>
#include <cmath>
#include <cstring>

namespace orrery {
namespace {

struct TypeInfo {
  DataType type;
  std::string_view name;
  size_t size;
};

constexpr std::array<TypeInfo, 14> kTypes = {{
    {DataType::kBool, "BOOL", 1},
    {DataType::kUint8, "UINT8", 1},
    {DataType::kUint16, "UINT16", 2},
    {DataType::kUint32, "UINT32", 4},
    {DataType::kUint64, "UINT64", 8},
    {DataType::kInt8, "INT8", 1},
    {DataType::kInt16, "INT16", 2},
    {DataType::kInt32, "INT32", 4},
    {DataType::kInt64, "INT64", 8},
    {DataType::kFp16, "FP16", 2},
    {DataType::kFp32, "FP32", 4},
    {DataType::kFp64, "FP64", 8},
    {DataType::kBf16, "BF16", 2},
    {DataType::kBytes, "BYTES", 0},
}};

template <typename T>
T Load(const char* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));  // Tensor::data has no alignment guarantee
  return value;
}

float HalfToFloat(uint16_t half) {
  uint32_t sign = (half & 0x8000u) << 16;
  uint32_t exponent = (half >> 10) & 0x1f;
  uint32_t mantissa = half & 0x3ff;
  if (exponent == 0) {  // zero or subnormal
    float value = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -value : value;
  }
  uint32_t bits = exponent == 0x1f ? (sign | 0x7f800000 | (mantissa << 13))
                                   : (sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

float Bf16ToFloat(uint16_t half) {
  uint32_t bits = static_cast<uint32_t>(half) << 16;
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

double ReadElement(DataType type, const char* p) {
  switch (type) {
    case DataType::kBool: return Load<uint8_t>(p) != 0;
    case DataType::kUint8: return Load<uint8_t>(p);
    case DataType::kUint16: return Load<uint16_t>(p);
    case DataType::kUint32: return Load<uint32_t>(p);
    case DataType::kUint64: return static_cast<double>(Load<uint64_t>(p));
    case DataType::kInt8: return Load<int8_t>(p);
    case DataType::kInt16: return Load<int16_t>(p);
    case DataType::kInt32: return Load<int32_t>(p);
    case DataType::kInt64: return static_cast<double>(Load<int64_t>(p));
    case DataType::kFp16: return HalfToFloat(Load<uint16_t>(p));
    case DataType::kFp32: return Load<float>(p);
    case DataType::kFp64: return Load<double>(p);
    case DataType::kBf16: return Bf16ToFloat(Load<uint16_t>(p));
    case DataType::kBytes: break;
  }
  return 0;
}

}  // namespace

std::string BytesElements(const std::vector<std::string>& elements) {
  std::string data;
  for (const std::string& element : elements) {
    uint32_t length = static_cast<uint32_t>(element.size());
    data.append(reinterpret_cast<const char*>(&length), 4);
    data += element;
  }
  return data;
}

std::vector<double> TensorValues(const Tensor& tensor) {
  size_t size = DataTypeSize(tensor.datatype);
  std::vector<double> values;
  if (size == 0) return values;  // BYTES
  values.reserve(tensor.data.size() / size);
  for (size_t offset = 0; offset + size <= tensor.data.size(); offset += size) {
    values.push_back(ReadElement(tensor.datatype, tensor.data.data() + offset));
  }
  return values;
}

std::string_view DataTypeName(DataType type) {
  return kTypes[static_cast<size_t>(type)].name;
}

std::optional<DataType> ParseDataType(std::string_view name) {
  for (const TypeInfo& info : kTypes) {
    if (info.name == name) return info.type;
  }
  return std::nullopt;
}

size_t DataTypeSize(DataType type) {
  return kTypes[static_cast<size_t>(type)].size;
}

std::optional<int64_t> Tensor::ElementCount() const {
  int64_t count = 1;
  for (int64_t dim : shape) {
    if (dim < 0) return std::nullopt;
    if (dim != 0 && count > INT64_MAX / dim) return std::nullopt;
    count *= dim;
  }
  return count;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) text += ',';
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

Status ValidateTensor(const Tensor& tensor) {
  for (int64_t dim : tensor.shape) {
    if (dim < 0) return InvalidArgument("tensor '" + tensor.name + "': negative dimension");
  }
  std::optional<int64_t> count = tensor.ElementCount();
  if (!count) return InvalidArgument("tensor '" + tensor.name + "': shape overflows");
  if (tensor.datatype != DataType::kBytes) {
    size_t element = DataTypeSize(tensor.datatype);
    if (static_cast<uint64_t>(*count) > UINT64_MAX / element ||
        static_cast<uint64_t>(*count) * element != tensor.data.size()) {
      return InvalidArgument("tensor '" + tensor.name + "': " + std::to_string(tensor.data.size()) +
                             " bytes do not match shape of " + std::to_string(*count) + " " +
                             std::string(DataTypeName(tensor.datatype)) + " elements");
    }
    return Status::Ok();
  }
  // BYTES: walk the uint32 LE length prefixes.
  int64_t elements = 0;
  size_t offset = 0;
  while (offset < tensor.data.size()) {
    if (tensor.data.size() - offset < 4) break;
    uint32_t length = 0;
    std::memcpy(&length, tensor.data.data() + offset, 4);  // little-endian host (x86_64)
    offset += 4;
    if (tensor.data.size() - offset < length) {
      return InvalidArgument("tensor '" + tensor.name + "': BYTES element runs past the data");
    }
    offset += length;
    ++elements;
  }
  if (offset != tensor.data.size() || elements != *count) {
    return InvalidArgument("tensor '" + tensor.name + "': BYTES data holds " +
                           std::to_string(elements) + " elements, shape says " +
                           std::to_string(*count));
  }
  return Status::Ok();
}

}  // namespace orrery
