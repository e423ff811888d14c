// The "inputs" part of RequestHandler: one state machine step per event of
// an input object, its shape and its (possibly nested) data.
#include <algorithm>

#include "tensor/internal/request_handler.h"

namespace orrery::tensor_internal {
namespace {

bool IsBit(uint32_t seen, uint8_t field) {
  return seen & (1u << field);
}

bool IsHalf(DataType type) {
  return type == DataType::kFp16 || type == DataType::kBf16;
}

std::string HalfMessage(DataType type) {
  return std::string(DataTypeName(type)) +
         " data in JSON is not supported; send it with the binary tensor extension";
}

const char* ElementNeeds(DataType type) {
  switch (type) {
    case DataType::kBool: return "true or false";
    case DataType::kBytes: return "a string";
    case DataType::kFp32:
    case DataType::kFp64: return "a number";
    default: return "an integer";
  }
}

std::string ElementMessage(ElementError error, DataType type, const Token& token, uint64_t index) {
  std::string element = "element " + std::to_string(index);
  std::string name(DataTypeName(type));
  switch (error) {
    case ElementError::kNotInteger:
      return element + " (" + std::string(token.text) + ") is not an integer, as " + name +
             " needs";
    case ElementError::kOutOfRange:
      return element + " (" + std::string(token.text) + ") is out of range for " + name;
    case ElementError::kUnsupported: return HalfMessage(type);
    default:
      return element + " is " + TokenKindName(token.kind) + ", " + name + " needs " +
             ElementNeeds(type);
  }
}

// The key and the JSON kind each known field of an input takes.
std::pair<const char*, TokenKind> InputFieldSpec(RequestHandler::Field field) {
  switch (field) {
    case RequestHandler::Field::kName: return {"name", TokenKind::kString};
    case RequestHandler::Field::kDatatype: return {"datatype", TokenKind::kString};
    case RequestHandler::Field::kShape: return {"shape", TokenKind::kArray};
    case RequestHandler::Field::kData: return {"data", TokenKind::kArray};
    default: return {"parameters", TokenKind::kObject};
  }
}

}  // namespace

std::string RequestHandler::InputLabel() const {
  const std::vector<Tensor>& inputs = parsed_.request.inputs;
  if (input_.has_name) return "input '" + inputs.back().name + "'";
  return "inputs[" + std::to_string(inputs.size() - 1) + "]";
}

bool RequestHandler::BeginInput(const Token& token) {
  if (token.kind != TokenKind::kObject) {
    return Fail("inputs[" + std::to_string(parsed_.request.inputs.size()) +
                "] must be an object, got " + TokenKindName(token.kind));
  }
  parsed_.request.inputs.emplace_back().shape.reserve(4);
  input_.seen = 0;
  input_.has_name = input_.has_datatype = input_.has_shape = input_.has_data = false;
  input_.binary_size.reset();
  input_.elements = 0;
  input_.deferred.clear();
  return Push(Frame::kInput);
}

bool RequestHandler::InputValue(const Token& token) {
  if (field_ == Field::kOther) return Skip(token);
  auto [key, wanted] = InputFieldSpec(field_);
  if (token.kind != wanted) {
    return Fail(InputLabel() + ": '" + key + "' must be " + TokenKindName(wanted) + ", got " +
                TokenKindName(token.kind));
  }
  Tensor& tensor = parsed_.request.inputs.back();
  switch (field_) {
    case Field::kName:
      tensor.name.assign(token.text);
      input_.has_name = true;
      return true;
    case Field::kDatatype: {
      std::optional<DataType> type = ParseDataType(token.text);
      if (!type) return Fail(InputLabel() + ": unknown datatype '" + std::string(token.text) + "'");
      tensor.datatype = *type;
      input_.has_datatype = true;
      return true;
    }
    case Field::kShape: input_.has_shape = true; return Push(Frame::kShape);
    case Field::kData: return BeginData();
    default:  // kParameters
      params_owner_ = Owner::kInput;
      return Push(Frame::kParams);
  }
}

bool RequestHandler::ShapeValue(const Token& token) {
  std::optional<int64_t> dim;
  if (token.kind == TokenKind::kNumber) dim = ParseNonNegativeInt64(token.text);
  if (!dim) {
    std::string got =
        token.kind == TokenKind::kNumber ? std::string(token.text) : TokenKindName(token.kind);
    return Fail(InputLabel() +
                ": 'shape' must be an array of non-negative integers that fit int64, got " + got);
  }
  parsed_.request.inputs.back().shape.push_back(*dim);
  return true;
}

// Reserves what the shape asks for, but never more than the JSON text could
// hold (each element takes at least two characters), so a huge declared
// shape costs nothing before the data is counted.
bool RequestHandler::BeginData() {
  Tensor& tensor = parsed_.request.inputs.back();
  input_.has_data = true;
  if (input_.has_datatype && IsHalf(tensor.datatype)) {
    return Fail(InputLabel() + ": " + HalfMessage(tensor.datatype));
  }
  if (input_.has_datatype && input_.has_shape && tensor.datatype != DataType::kBytes) {
    if (std::optional<int64_t> count = tensor.ElementCount()) {
      uint64_t elements = std::min<uint64_t>(*count, json_size_ / 2 + 1);
      tensor.data.reserve(elements * DataTypeSize(tensor.datatype));
    }
  }
  return Push(Frame::kData);
}

bool RequestHandler::DataValue(const Token& token) {
  if (token.kind == TokenKind::kArray) return Push(Frame::kData);  // nested data: flattened
  if (token.kind == TokenKind::kObject || token.kind == TokenKind::kNull) {
    return Fail(InputLabel() + ": 'data' elements must be numbers, booleans or strings, got " +
                TokenKindName(token.kind));
  }
  if (++input_.elements > limits_.max_elements) {
    return Fail(InputLabel() + ": 'data' has more than " + std::to_string(limits_.max_elements) +
                " elements");
  }
  if (!input_.has_datatype) {
    input_.deferred.push_back(token);
    return true;
  }
  return ConvertElement(token, input_.elements - 1);
}

// The hot path of a JSON request: one call per number in "data".
bool RequestHandler::Number(std::string_view text) {
  Token token{TokenKind::kNumber, text};
  if (frames_.empty() || Top() != Frame::kData || !input_.has_datatype ||
      input_.elements >= limits_.max_elements) {
    return OnValue(token);  // the general path, limit errors included
  }
  return ConvertElement(token, input_.elements++);
}

bool RequestHandler::ConvertElement(const Token& token, uint64_t index) {
  Tensor& tensor = parsed_.request.inputs.back();
  ElementError error = AppendElement(tensor.datatype, token, tensor.data);
  return error == ElementError::kOk || FailElement(error, token, index);
}

// Out of line so that the hot path above carries no string building.
[[gnu::noinline, gnu::cold]] bool RequestHandler::FailElement(ElementError error,
                                                              const Token& token, uint64_t index) {
  DataType type = parsed_.request.inputs.back().datatype;
  return Fail(InputLabel() + ": " + ElementMessage(error, type, token, index));
}

bool RequestHandler::FinishInput() {
  const Tensor& tensor = parsed_.request.inputs.back();
  for (auto [field, key] :
       {std::pair{Field::kName, "name"}, std::pair{Field::kDatatype, "datatype"},
        std::pair{Field::kShape, "shape"}}) {
    if (!IsBit(input_.seen, static_cast<uint8_t>(field))) {
      return Fail(InputLabel() + ": '" + key + "' is required");
    }
  }
  std::optional<int64_t> count = tensor.ElementCount();
  if (!count)
    return Fail(InputLabel() + ": shape " + ShapeString(tensor.shape) + " overflows int64");
  if (static_cast<uint64_t>(*count) > limits_.max_elements) {
    return Fail(InputLabel() + ": shape " + ShapeString(tensor.shape) + " has " +
                std::to_string(*count) + " elements, over the limit of " +
                std::to_string(limits_.max_elements));
  }
  if (input_.has_data == input_.binary_size.has_value()) {
    return Fail(InputLabel() + (input_.has_data
                                    ? ": has both 'data' and parameters.binary_data_size"
                                    : ": needs 'data' or parameters.binary_data_size"));
  }
  if (!(input_.has_data ? FinishInputData(*count) : FinishInputBinary(*count))) return false;
  if (input_.binary_size) {
    parsed_.binary_inputs.emplace_back(parsed_.request.inputs.size() - 1, *input_.binary_size);
  }
  return true;
}

bool RequestHandler::FinishInputData(int64_t count) {
  Tensor& tensor = parsed_.request.inputs.back();
  if (IsHalf(tensor.datatype)) return Fail(InputLabel() + ": " + HalfMessage(tensor.datatype));
  for (size_t i = 0; i < input_.deferred.size(); ++i) {
    if (!ConvertElement(input_.deferred[i], i)) return false;
  }
  if (input_.elements != static_cast<uint64_t>(count)) {
    return Fail(InputLabel() + ": shape " + ShapeString(tensor.shape) + " needs " +
                std::to_string(count) + " elements, data has " + std::to_string(input_.elements));
  }
  return true;
}

// BYTES framing is checked once the bytes are attached (ValidateTensor).
bool RequestHandler::FinishInputBinary(int64_t count) {
  const Tensor& tensor = parsed_.request.inputs.back();
  if (tensor.datatype == DataType::kBytes) return true;
  uint64_t expected = static_cast<uint64_t>(count) * DataTypeSize(tensor.datatype);
  if (*input_.binary_size == expected) return true;
  return Fail(InputLabel() + ": binary_data_size " + std::to_string(*input_.binary_size) +
              " does not match shape " + ShapeString(tensor.shape) + " of " +
              std::string(DataTypeName(tensor.datatype)) + " (" + std::to_string(expected) +
              " bytes)");
}

}  // namespace orrery::tensor_internal
