#include "api/grpc/grpc_tensors.h"

#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

namespace orrery {
namespace {

using inference::InferParameter;
using inference::InferTensorContents;
using inference::ModelInferRequest;

// Appends `values` as little-endian elements of Element, each within its
// range (kInvalidArgument naming the first that is not).
template <typename Element, typename Values>
Status AppendAll(const Values& values, const std::string& label, std::string& out) {
  out.reserve(out.size() + values.size() * sizeof(Element));
  for (auto value : values) {
    using Value = decltype(value);
    if constexpr (std::is_integral_v<Element> && std::is_integral_v<Value> &&
                  !std::is_same_v<Value, bool>) {
      if (!std::in_range<Element>(value)) {
        return InvalidArgument(label + ": " + std::to_string(value) + " is out of range for " +
                               "its datatype");
      }
    }
    Element element = static_cast<Element>(value);
    char bytes[sizeof(Element)];
    std::memcpy(bytes, &element, sizeof(Element));  // x86-64 and arm64 are little-endian
    out.append(bytes, sizeof(Element));
  }
  return Status::Ok();
}

// The typed contents of `datatype`: the field's name, its size, and the
// tensor's data from it.
struct TypedField {
  const char* name;
  int size;
};

TypedField FieldOf(DataType type, const InferTensorContents& c) {
  switch (type) {
    case DataType::kBool: return {"bool_contents", c.bool_contents_size()};
    case DataType::kInt8:
    case DataType::kInt16:
    case DataType::kInt32: return {"int_contents", c.int_contents_size()};
    case DataType::kInt64: return {"int64_contents", c.int64_contents_size()};
    case DataType::kUint8:
    case DataType::kUint16:
    case DataType::kUint32: return {"uint_contents", c.uint_contents_size()};
    case DataType::kUint64: return {"uint64_contents", c.uint64_contents_size()};
    case DataType::kFp32: return {"fp32_contents", c.fp32_contents_size()};
    case DataType::kFp64: return {"fp64_contents", c.fp64_contents_size()};
    case DataType::kBytes: return {"bytes_contents", c.bytes_contents_size()};
    case DataType::kFp16:
    case DataType::kBf16: break;
  }
  return {nullptr, 0};
}

Status FillTyped(const InferTensorContents& c, const std::string& label, Tensor& tensor) {
  std::string& out = tensor.data;
  switch (tensor.datatype) {
    case DataType::kBool: return AppendAll<uint8_t>(c.bool_contents(), label, out);
    case DataType::kInt8: return AppendAll<int8_t>(c.int_contents(), label, out);
    case DataType::kInt16: return AppendAll<int16_t>(c.int_contents(), label, out);
    case DataType::kInt32: return AppendAll<int32_t>(c.int_contents(), label, out);
    case DataType::kInt64: return AppendAll<int64_t>(c.int64_contents(), label, out);
    case DataType::kUint8: return AppendAll<uint8_t>(c.uint_contents(), label, out);
    case DataType::kUint16: return AppendAll<uint16_t>(c.uint_contents(), label, out);
    case DataType::kUint32: return AppendAll<uint32_t>(c.uint_contents(), label, out);
    case DataType::kUint64: return AppendAll<uint64_t>(c.uint64_contents(), label, out);
    case DataType::kFp32: return AppendAll<float>(c.fp32_contents(), label, out);
    case DataType::kFp64: return AppendAll<double>(c.fp64_contents(), label, out);
    case DataType::kBytes: {
      std::vector<std::string> elements(c.bytes_contents().begin(), c.bytes_contents().end());
      out = BytesElements(elements);
      return Status::Ok();
    }
    case DataType::kFp16:
    case DataType::kBf16: break;
  }
  return InvalidArgument(label + ": " + std::string(DataTypeName(tensor.datatype)) +
                         " travels only as raw_input_contents");
}

Result<Tensor> DecodeInput(const ModelInferRequest::InferInputTensor& input,
                           const std::string* raw) {
  std::string label = "input '" + input.name() + "'";
  Tensor tensor;
  tensor.name = input.name();
  std::optional<DataType> type = ParseDataType(input.datatype());
  if (!type) return InvalidArgument(label + ": unknown datatype '" + input.datatype() + "'");
  tensor.datatype = *type;
  for (int64_t dim : input.shape()) {
    if (dim < 0) return InvalidArgument(label + ": shape " + ShapeString({input.shape().begin(), input.shape().end()}) + " has a negative dimension");
    tensor.shape.push_back(dim);
  }
  std::optional<int64_t> elements = tensor.ElementCount();
  if (!elements) return InvalidArgument(label + ": shape " + ShapeString(tensor.shape) + " is too large");
  for (const auto& [key, value] : input.parameters()) {
    if (key.rfind("shared_memory_", 0) == 0) {
      return InvalidArgument(label + ": shared memory ('" + key + "') is not supported");
    }
  }
  if (raw != nullptr) {
    if (input.has_contents()) {
      return InvalidArgument(label + ": contents and raw_input_contents cannot be mixed");
    }
    tensor.data = *raw;
  } else {
    TypedField field = FieldOf(tensor.datatype, input.contents());
    if (field.name == nullptr) return FillTyped(input.contents(), label, tensor);
    if (field.size != *elements) {
      return InvalidArgument(label + ": shape " + ShapeString(tensor.shape) + " holds " +
                             std::to_string(*elements) + " elements, " + field.name + " has " +
                             std::to_string(field.size));
    }
    RETURN_IF_ERROR(FillTyped(input.contents(), label, tensor));
  }
  RETURN_IF_ERROR(ValidateTensor(tensor));
  return tensor;
}

// A non-negative integer parameter (int64_param >= 0 or uint64_param that fits).
std::optional<int64_t> NonNegative(const InferParameter& parameter) {
  if (parameter.has_int64_param() && parameter.int64_param() >= 0) return parameter.int64_param();
  if (parameter.has_uint64_param() &&
      parameter.uint64_param() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return static_cast<int64_t>(parameter.uint64_param());
  }
  return std::nullopt;
}

}  // namespace

Result<nlohmann::json> GrpcParameters(
    const google::protobuf::Map<std::string, InferParameter>& parameters,
    const std::string& where) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, value] : parameters) {
    switch (value.parameter_choice_case()) {
      case InferParameter::kBoolParam: out[key] = value.bool_param(); break;
      case InferParameter::kInt64Param: out[key] = value.int64_param(); break;
      case InferParameter::kStringParam: out[key] = value.string_param(); break;
      case InferParameter::kDoubleParam: out[key] = value.double_param(); break;
      case InferParameter::kUint64Param: out[key] = value.uint64_param(); break;
      case InferParameter::PARAMETER_CHOICE_NOT_SET:
        return InvalidArgument(where + "parameter '" + key + "' holds no value");
    }
  }
  return out;
}

Result<InferRequest> DecodeGrpcRequest(const ModelInferRequest& grpc) {
  InferRequest request;
  request.id = grpc.id();
  request.has_id = !grpc.id().empty();  // proto3: an empty id is no id
  ASSIGN_OR_RETURN(request.parameters, GrpcParameters(grpc.parameters(), ""));
  for (const auto& [key, value] : grpc.parameters()) {
    if (key == "binary_data_output") {
      if (!value.has_bool_param()) {
        return InvalidArgument("parameter 'binary_data_output' must be a boolean");
      }
      request.binary_data_output = value.bool_param();
    } else if (key == "priority" || key == "timeout") {
      std::optional<int64_t> number = NonNegative(value);
      if (!number) return InvalidArgument("parameter '" + key + "' must be a non-negative integer");
      (key == "priority" ? request.priority : request.timeout_us) = number;
    }
  }
  bool raw = grpc.raw_input_contents_size() > 0;
  if (raw && grpc.raw_input_contents_size() != grpc.inputs_size()) {
    return InvalidArgument("raw_input_contents must have one entry per input: " +
                           std::to_string(grpc.raw_input_contents_size()) + " for " +
                           std::to_string(grpc.inputs_size()) + " inputs");
  }
  for (int i = 0; i < grpc.inputs_size(); ++i) {
    ASSIGN_OR_RETURN(Tensor tensor,
                     DecodeInput(grpc.inputs(i), raw ? &grpc.raw_input_contents(i) : nullptr));
    request.inputs.push_back(std::move(tensor));
  }
  for (const auto& output : grpc.outputs()) {
    std::string label = "output '" + output.name() + "'";
    RequestedOutput requested;
    requested.name = output.name();
    ASSIGN_OR_RETURN(nlohmann::json parameters, GrpcParameters(output.parameters(), label + ": "));
    for (const auto& [key, value] : parameters.items()) {
      if (key.rfind("shared_memory_", 0) == 0) {
        return InvalidArgument(label + ": shared memory ('" + key + "') is not supported");
      }
    }
    parameters.erase("binary_data");  // answers are raw anyway
    if (!parameters.empty()) requested.parameters = std::move(parameters);
    request.outputs.push_back(std::move(requested));
  }
  return request;
}

void EncodeGrpcResponse(InferResponse& response, inference::ModelInferResponse* out) {
  out->set_model_name(response.model_name);
  out->set_model_version(response.model_version);
  if (response.has_id) out->set_id(response.id);
  for (const auto& [key, value] : response.parameters.items()) {
    InferParameter& parameter = (*out->mutable_parameters())[key];
    if (value.is_boolean()) {
      parameter.set_bool_param(value.get<bool>());
    } else if (value.is_number_unsigned() &&
               value.get<uint64_t>() > uint64_t{std::numeric_limits<int64_t>::max()}) {
      parameter.set_uint64_param(value.get<uint64_t>());
    } else if (value.is_number_integer()) {
      parameter.set_int64_param(value.get<int64_t>());
    } else if (value.is_number_float()) {
      parameter.set_double_param(value.get<double>());
    } else if (value.is_string()) {
      parameter.set_string_param(value.get<std::string>());
    } else {
      parameter.set_string_param(value.dump());  // timings: an object, as JSON text
    }
  }
  for (Tensor& tensor : response.outputs) {
    auto* output = out->add_outputs();
    output->set_name(tensor.name);
    output->set_datatype(std::string(DataTypeName(tensor.datatype)));
    for (int64_t dim : tensor.shape) output->add_shape(dim);
    out->add_raw_output_contents(std::move(tensor.data));
  }
}

}  // namespace orrery
