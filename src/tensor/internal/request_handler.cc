// Event plumbing, top level, outputs and parameters of RequestHandler.
// Inputs are in request_inputs.cc.
#include <algorithm>

#include "tensor/internal/request_handler.h"

namespace orrery::tensor_internal {
namespace {

uint32_t Bit(uint8_t field) {
  return 1u << field;
}

bool IsContainer(const Token& token) {
  return token.kind == TokenKind::kObject || token.kind == TokenKind::kArray;
}

// A parameter value as JSON; nullopt for what parameters cannot hold
// (null, objects, arrays, NaN, infinities).
std::optional<nlohmann::json> ScalarJson(const Token& token) {
  switch (token.kind) {
    case TokenKind::kBool: return nlohmann::json(token.boolean);
    case TokenKind::kString: return nlohmann::json(std::string(token.text));
    case TokenKind::kNumber: return ParameterNumber(token.text);
    default: return std::nullopt;
  }
}

std::string ParamError(std::string_view key, const Token& token) {
  return "parameter '" + std::string(key) + "' must be a string, number or boolean, got " +
         (token.kind == TokenKind::kNumber ? std::string(token.text) : TokenKindName(token.kind));
}

// The first name that appears twice, if any. Sorting keeps this O(n log n)
// for requests with many tensors.
template <typename T>
std::optional<std::string> FindDuplicateName(const std::vector<T>& items) {
  if (items.size() < 2) return std::nullopt;
  std::vector<std::string_view> names;
  names.reserve(items.size());
  for (const T& item : items) names.push_back(item.name);
  std::sort(names.begin(), names.end());
  auto it = std::adjacent_find(names.begin(), names.end());
  if (it == names.end()) return std::nullopt;
  return std::string(*it);
}

}  // namespace

RequestHandler::RequestHandler(const DecodeLimits& limits, size_t json_size)
    : limits_(limits), json_size_(json_size) {}

bool RequestHandler::Fail(std::string message) {
  error_ = InvalidArgument(std::move(message));
  return false;
}

bool RequestHandler::Enter() {
  if (++depth_ <= limits_.max_depth) return true;
  return Fail("JSON is nested deeper than " + std::to_string(limits_.max_depth) + " levels");
}

bool RequestHandler::Push(Frame frame) {
  frames_.push_back(static_cast<char>(frame));
  return true;
}

// Unknown fields are ignored; a container among them still gets a frame so
// that its end event pops the right one.
bool RequestHandler::Skip(const Token& token) {
  return !IsContainer(token) || Push(Frame::kSkip);
}

bool RequestHandler::OnValue(const Token& token) {
  if (frames_.empty()) {
    if (token.kind != TokenKind::kObject) return Fail("request body must be a JSON object");
    return Push(Frame::kTop);
  }
  switch (Top()) {
    case Frame::kTop: return TopValue(token);
    case Frame::kInputs: return BeginInput(token);
    case Frame::kInput: return InputValue(token);
    case Frame::kShape: return ShapeValue(token);
    case Frame::kData: return DataValue(token);
    case Frame::kParams: return ParamValue(token);
    case Frame::kOutputs: return BeginOutput(token);
    case Frame::kOutput: return OutputValue(token);
    case Frame::kSkip: return Skip(token);
  }
  return Fail("internal error: unknown frame");
}

bool RequestHandler::OnKey(std::string_view key) {
  switch (Top()) {
    case Frame::kTop:
      field_ = key == "inputs"       ? Field::kInputs
               : key == "outputs"    ? Field::kOutputs
               : key == "id"         ? Field::kId
               : key == "parameters" ? Field::kParameters
                                     : Field::kOther;
      if (MarkSeen(top_seen_, field_)) return true;
      return Fail("request: duplicate key '" + std::string(key) + "'");
    case Frame::kInput:
      field_ = key == "name"         ? Field::kName
               : key == "datatype"   ? Field::kDatatype
               : key == "shape"      ? Field::kShape
               : key == "data"       ? Field::kData
               : key == "parameters" ? Field::kParameters
                                     : Field::kOther;
      if (MarkSeen(input_.seen, field_)) return true;
      return Fail(InputLabel() + ": duplicate key '" + std::string(key) + "'");
    case Frame::kOutput:
      field_ = key == "name"         ? Field::kName
               : key == "parameters" ? Field::kParameters
                                     : Field::kOther;
      if (MarkSeen(output_seen_, field_)) return true;
      return Fail(OutputLabel() + ": duplicate key '" + std::string(key) + "'");
    case Frame::kParams: param_key_ = key; return true;
    default: return true;
  }
}

bool RequestHandler::MarkSeen(uint32_t& seen, Field field) {
  if (field == Field::kOther) return true;
  uint32_t bit = Bit(static_cast<uint8_t>(field));
  if (seen & bit) return false;
  seen |= bit;
  return true;
}

std::string RequestHandler::OutputLabel() const {
  return "outputs[" + std::to_string(parsed_.request.outputs.size() - 1) + "]";
}

bool RequestHandler::OnEnd() {
  --depth_;
  Frame frame = Top();
  frames_.pop_back();
  switch (frame) {
    case Frame::kTop: return FinishTop();
    case Frame::kInput: return FinishInput();
    case Frame::kOutput: return FinishOutput();
    default: return true;
  }
}

bool RequestHandler::TopValue(const Token& token) {
  InferRequest& request = parsed_.request;
  switch (field_) {
    case Field::kId:
      if (token.kind != TokenKind::kString) {
        return Fail(std::string("'id' must be a string, got ") + TokenKindName(token.kind));
      }
      request.id.assign(token.text);
      request.has_id = true;
      return true;
    case Field::kParameters:
      if (token.kind != TokenKind::kObject) {
        return Fail(std::string("'parameters' must be an object, got ") +
                    TokenKindName(token.kind));
      }
      params_owner_ = Owner::kRequest;
      return Push(Frame::kParams);
    case Field::kInputs:
    case Field::kOutputs:
      if (token.kind != TokenKind::kArray) {
        return Fail(std::string(field_ == Field::kInputs ? "'inputs'" : "'outputs'") +
                    " must be an array, got " + TokenKindName(token.kind));
      }
      return Push(field_ == Field::kInputs ? Frame::kInputs : Frame::kOutputs);
    default: return Skip(token);
  }
}

bool RequestHandler::FinishTop() {
  if (!(top_seen_ & Bit(static_cast<uint8_t>(Field::kInputs)))) return Fail("'inputs' is required");
  if (parsed_.request.inputs.empty()) return Fail("'inputs' must not be empty");
  if (!CheckUniqueNames()) return false;
  done_ = true;
  return true;
}

bool RequestHandler::CheckUniqueNames() {
  if (auto name = FindDuplicateName(parsed_.request.inputs)) {
    return Fail("input name '" + *name + "' appears more than once");
  }
  if (auto name = FindDuplicateName(parsed_.request.outputs)) {
    return Fail("output name '" + *name + "' appears more than once");
  }
  return true;
}

bool RequestHandler::BeginOutput(const Token& token) {
  if (token.kind != TokenKind::kObject) {
    return Fail("outputs[" + std::to_string(parsed_.request.outputs.size()) +
                "] must be an object, got " + TokenKindName(token.kind));
  }
  parsed_.request.outputs.emplace_back();
  output_seen_ = 0;
  return Push(Frame::kOutput);
}

bool RequestHandler::OutputValue(const Token& token) {
  RequestedOutput& output = parsed_.request.outputs.back();
  switch (field_) {
    case Field::kName:
      if (token.kind != TokenKind::kString) {
        return Fail(OutputLabel() + ": 'name' must be a string, got " + TokenKindName(token.kind));
      }
      output.name.assign(token.text);
      return true;
    case Field::kParameters:
      if (token.kind != TokenKind::kObject) {
        return Fail(OutputLabel() + ": 'parameters' must be an object, got " +
                    TokenKindName(token.kind));
      }
      params_owner_ = Owner::kOutput;
      return Push(Frame::kParams);
    default: return Skip(token);
  }
}

bool RequestHandler::FinishOutput() {
  if (output_seen_ & Bit(static_cast<uint8_t>(Field::kName))) return true;
  return Fail(OutputLabel() + ": 'name' is required");
}

bool RequestHandler::ParamValue(const Token& token) {
  switch (params_owner_) {
    case Owner::kRequest: return RequestParam(token);
    case Owner::kInput: return InputParam(token);
    case Owner::kOutput: return OutputParam(token);
  }
  return true;
}

bool RequestHandler::RequestParam(const Token& token) {
  InferRequest& request = parsed_.request;
  std::optional<nlohmann::json> value = ScalarJson(token);
  if (!value) return Fail(ParamError(param_key_, token));
  std::string key(param_key_);
  if (request.parameters.contains(key))
    return Fail("parameter '" + key + "' appears more than once");
  request.parameters[key] = std::move(*value);
  if (key == "binary_data_output") {
    if (token.kind != TokenKind::kBool)
      return Fail("parameter 'binary_data_output' must be a boolean");
    request.binary_data_output = token.boolean;
  } else if (key == "priority" || key == "timeout") {
    std::optional<int64_t> number;
    if (token.kind == TokenKind::kNumber) number = ParseNonNegativeInt64(token.text);
    if (!number) return Fail("parameter '" + key + "' must be a non-negative integer");
    (key == "priority" ? request.priority : request.timeout_us) = number;
  }
  return true;
}

bool RequestHandler::InputParam(const Token& token) {
  if (param_key_ == "binary_data_size") {
    std::optional<int64_t> size;
    if (token.kind == TokenKind::kNumber) size = ParseNonNegativeInt64(token.text);
    if (!size) return Fail(InputLabel() + ": 'binary_data_size' must be a non-negative integer");
    if (input_.binary_size)
      return Fail(InputLabel() + ": 'binary_data_size' appears more than once");
    input_.binary_size = static_cast<uint64_t>(*size);
    return true;
  }
  if (param_key_.starts_with("shared_memory_")) {
    return Fail(InputLabel() + ": shared memory ('" + std::string(param_key_) +
                "') is not supported");
  }
  if (!ScalarJson(token)) return Fail(InputLabel() + ": " + ParamError(param_key_, token));
  return true;
}

bool RequestHandler::OutputParam(const Token& token) {
  RequestedOutput& output = parsed_.request.outputs.back();
  if (param_key_ == "binary_data") {
    if (token.kind != TokenKind::kBool)
      return Fail(OutputLabel() + ": 'binary_data' must be a boolean");
    if (output.binary)
      return Fail(OutputLabel() + ": parameter 'binary_data' appears more than once");
    output.binary = token.boolean;
    return true;
  }
  std::optional<nlohmann::json> value = ScalarJson(token);
  if (!value) return Fail(OutputLabel() + ": " + ParamError(param_key_, token));
  std::string key(param_key_);
  if (output.parameters.contains(key)) {
    return Fail(OutputLabel() + ": parameter '" + key + "' appears more than once");
  }
  output.parameters[key] = std::move(*value);
  return true;
}

}  // namespace orrery::tensor_internal
