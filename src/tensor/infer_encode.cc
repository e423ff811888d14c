// Response encoding, written by hand: this is the hot path. The encoder
// first bounds the body's size, sizes the output string once, then writes
// through a raw pointer: no DOM, no per-element append checks, no
// reallocation (the binary part fits in the same capacity).
#include <algorithm>
#include <cstring>
#include <memory>
#include <type_traits>

#include "tensor/infer_codec.h"
#include "tensor/internal/json_text.h"

namespace orrery {
namespace {

using tensor_internal::kMaxJsonNumberChars;
using tensor_internal::MaxJsonStringChars;
using tensor_internal::WriteJsonNumber;
using tensor_internal::WriteJsonString;

// Calls `visit(element)` for each well-framed BYTES element; stops at the
// first frame that runs past the data.
template <typename Visit>
void ForEachBytesElement(const std::string& data, Visit visit) {
  size_t offset = 0;
  while (data.size() - offset >= 4) {
    uint32_t length = 0;
    std::memcpy(&length, data.data() + offset, 4);
    offset += 4;
    if (data.size() - offset < length) return;
    visit(std::string_view(data).substr(offset, length));
    offset += length;
  }
}

bool AllElementsUtf8(const Tensor& tensor) {
  bool valid = true;
  ForEachBytesElement(tensor.data, [&](std::string_view element) {
    valid = valid && tensor_internal::IsValidUtf8(element);
  });
  return valid;
}

bool GoesBinary(const Tensor& output, const InferRequest& request, bool raw_binary_request) {
  if (raw_binary_request) return true;
  if (output.datatype == DataType::kFp16 || output.datatype == DataType::kBf16) return true;
  if (output.datatype == DataType::kBytes && !AllElementsUtf8(output)) return true;
  for (const RequestedOutput& requested : request.outputs) {
    if (requested.name == output.name && requested.binary) return *requested.binary;
  }
  return request.binary_data_output;
}

// Longest JSON text of one element, e.g. "-2147483648" for INT32 and
// "-1.1754944e-38" plus one for FP32; FP16/BF16 never go to JSON.
size_t MaxElementChars(DataType type) {
  switch (type) {
    case DataType::kBool: return 5;
    case DataType::kUint8: return 3;
    case DataType::kUint16: return 5;
    case DataType::kUint32: return 10;
    case DataType::kInt8: return 4;
    case DataType::kInt16: return 6;
    case DataType::kInt32: return 11;
    case DataType::kFp32: return 15;
    case DataType::kFp64: return 24;
    default: return 20;  // INT64, UINT64
  }
}

size_t MaxOutputChars(const Tensor& tensor, bool binary) {
  size_t size =
      96 + MaxJsonStringChars(tensor.name.size()) + tensor.shape.size() * (kMaxJsonNumberChars + 1);
  if (binary) return size + kMaxJsonNumberChars;
  if (tensor.datatype == DataType::kBytes) {  // per element: 4 framing bytes become 3 characters
    return size + MaxJsonStringChars(tensor.data.size());
  }
  size_t elements = tensor.data.size() / std::max<size_t>(1, DataTypeSize(tensor.datatype));
  return size + elements * (MaxElementChars(tensor.datatype) + 1);
}

// Integers widen to 64 bits for printing; floats print at their own width
// so FP32 gets its shortest float form, not the double expansion.
template <typename T>
auto Printable(T value) {
  if constexpr (std::is_floating_point_v<T>) {
    return value;
  } else if constexpr (std::is_signed_v<T>) {
    return static_cast<int64_t>(value);
  } else {
    return static_cast<uint64_t>(value);
  }
}

template <typename T>
char* WriteValues(char* out, const std::string& data) {
  size_t count = data.size() / sizeof(T);
  for (size_t i = 0; i < count; ++i) {
    T value;
    std::memcpy(&value, data.data() + i * sizeof(T), sizeof(T));
    if (i) *out++ = ',';
    out = WriteJsonNumber(out, Printable(value));
  }
  return out;
}

char* WriteBools(char* out, const std::string& data) {
  for (size_t i = 0; i < data.size(); ++i) {
    if (i) *out++ = ',';
    std::string_view word = data[i] ? "true" : "false";
    std::memcpy(out, word.data(), word.size());
    out += word.size();
  }
  return out;
}

char* WriteStrings(char* out, const std::string& data) {
  bool first = true;
  ForEachBytesElement(data, [&](std::string_view element) {
    if (!first) *out++ = ',';
    first = false;
    out = WriteJsonString(out, element);
  });
  return out;
}

char* WriteText(char* out, std::string_view text) {
  std::memcpy(out, text.data(), text.size());
  return out + text.size();
}

char* WriteData(char* out, const Tensor& tensor) {
  out = WriteText(out, "\"data\":[");
  switch (tensor.datatype) {
    case DataType::kBool: out = WriteBools(out, tensor.data); break;
    case DataType::kUint8: out = WriteValues<uint8_t>(out, tensor.data); break;
    case DataType::kUint16: out = WriteValues<uint16_t>(out, tensor.data); break;
    case DataType::kUint32: out = WriteValues<uint32_t>(out, tensor.data); break;
    case DataType::kUint64: out = WriteValues<uint64_t>(out, tensor.data); break;
    case DataType::kInt8: out = WriteValues<int8_t>(out, tensor.data); break;
    case DataType::kInt16: out = WriteValues<int16_t>(out, tensor.data); break;
    case DataType::kInt32: out = WriteValues<int32_t>(out, tensor.data); break;
    case DataType::kInt64: out = WriteValues<int64_t>(out, tensor.data); break;
    case DataType::kFp32: out = WriteValues<float>(out, tensor.data); break;
    case DataType::kFp64: out = WriteValues<double>(out, tensor.data); break;
    case DataType::kBytes: out = WriteStrings(out, tensor.data); break;
    case DataType::kFp16:
    case DataType::kBf16: break;  // always binary (GoesBinary)
  }
  *out++ = ']';
  return out;
}

char* WriteOutput(char* out, const Tensor& tensor, bool binary) {
  out = WriteText(out, "{\"name\":");
  out = WriteJsonString(out, tensor.name);
  out = WriteText(out, ",\"datatype\":\"");
  out = WriteText(out, DataTypeName(tensor.datatype));
  out = WriteText(out, "\",\"shape\":[");
  for (size_t i = 0; i < tensor.shape.size(); ++i) {
    if (i) *out++ = ',';
    out = WriteJsonNumber(out, static_cast<int64_t>(tensor.shape[i]));
  }
  out = WriteText(out, "],");
  if (binary) {
    out = WriteText(out, "\"parameters\":{\"binary_data_size\":");
    out = WriteJsonNumber(out, static_cast<uint64_t>(tensor.data.size()));
    *out++ = '}';
  } else {
    out = WriteData(out, tensor);
  }
  *out++ = '}';
  return out;
}

char* WriteHeader(char* out, const InferResponse& response, std::string_view parameters) {
  out = WriteText(out, "{\"model_name\":");
  out = WriteJsonString(out, response.model_name);
  out = WriteText(out, ",\"model_version\":");
  out = WriteJsonString(out, response.model_version);
  if (response.has_id) {
    out = WriteText(out, ",\"id\":");
    out = WriteJsonString(out, response.id);
  }
  if (!parameters.empty()) {
    out = WriteText(out, ",\"parameters\":");
    out = WriteText(out, parameters);
  }
  return WriteText(out, ",\"outputs\":[");
}

size_t MaxHeaderChars(const InferResponse& response, std::string_view parameters) {
  return 96 + parameters.size() + MaxJsonStringChars(response.model_name.size()) +
         MaxJsonStringChars(response.model_version.size()) + MaxJsonStringChars(response.id.size());
}

}  // namespace

EncodedBody EncodeInferResponse(const InferResponse& response, const InferRequest& request,
                                bool raw_binary_request) {
  std::string parameters;  // rare: left to nlohmann
  if (response.parameters.is_object() && !response.parameters.empty()) {
    parameters = response.parameters.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  const size_t count = response.outputs.size();
  bool inline_flags[16];
  std::unique_ptr<bool[]> heap_flags;
  bool* binary = count <= 16 ? inline_flags : (heap_flags = std::make_unique<bool[]>(count)).get();
  size_t bound = MaxHeaderChars(response, parameters) + kMaxJsonNumberChars;
  size_t binary_bytes = 0;
  for (size_t i = 0; i < count; ++i) {
    const Tensor& output = response.outputs[i];
    binary[i] = GoesBinary(output, request, raw_binary_request);
    bound += MaxOutputChars(output, binary[i]);
    if (binary[i]) binary_bytes += output.data.size();
  }
  EncodedBody encoded;
  std::string& body = encoded.body;
  body.reserve(bound + binary_bytes);
  body.resize(bound);
  char* out = WriteHeader(body.data(), response, parameters);
  for (size_t i = 0; i < count; ++i) {
    if (i) *out++ = ',';
    out = WriteOutput(out, response.outputs[i], binary[i]);
  }
  out = WriteText(out, "]}");
  body.resize(out - body.data());
  if (std::find(binary, binary + count, true) != binary + count) {
    encoded.json_length = body.size();
    for (size_t i = 0; i < count; ++i) {
      if (binary[i]) body += response.outputs[i].data;
    }
  }
  return encoded;
}

}  // namespace orrery
