// The event handler that turns the JSON scanner's events for an inference
// request's JSON part into an InferRequest (internal to src/tensor).
//
// It is a state machine over a stack of frames (one per open object or
// array), so nesting costs heap, never native stack, and it stops the parse
// at the first error (returning false) with error() set. Data elements are
// converted to the tensor's bytes as they stream by; elements that arrive
// before the input's "datatype" are kept as token views (into the scanned
// buffer, which outlives the scan) and converted when the input closes.
//
// Thread-safety: one handler per parse.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "tensor/infer_codec.h"
#include "tensor/internal/json_elements.h"
#include "tensor/internal/json_scanner.h"

namespace orrery::tensor_internal {

// What the JSON part yields; binary inputs still lack their data.
struct ParsedRequest {
  InferRequest request;
  // (input index, binary_data_size) of each binary input, in input order.
  std::vector<std::pair<size_t, uint64_t>> binary_inputs;
};

class RequestHandler final : public JsonEvents {
 public:
  // `json_size` bounds the memory reserved for an input's data.
  RequestHandler(const DecodeLimits& limits, size_t json_size);

  bool Null() override { return OnValue({TokenKind::kNull, {}, false}); }
  bool Bool(bool b) override { return OnValue({TokenKind::kBool, {}, b}); }
  bool Number(std::string_view text) override;
  bool String(std::string_view text) override { return OnValue({TokenKind::kString, text}); }
  bool Key(std::string_view text) override { return OnKey(text); }
  bool StartObject() override { return Enter() && OnValue({TokenKind::kObject, {}, false}); }
  bool StartArray() override { return Enter() && OnValue({TokenKind::kArray, {}, false}); }
  bool EndObject() override { return OnEnd(); }
  bool EndArray() override { return OnEnd(); }

  // The known keys of the objects in a request (a value's meaning depends
  // on the key before it).
  enum class Field : uint8_t {
    kOther,
    kId,
    kParameters,
    kInputs,
    kOutputs,
    kName,
    kDatatype,
    kShape,
    kData
  };

  // Set when an event was refused; the parse then stops.
  const Status& error() const { return error_; }
  // True once the top-level object has closed without error.
  bool done() const { return done_; }
  ParsedRequest& parsed() { return parsed_; }

 private:
  enum class Frame : uint8_t {
    kTop,
    kInputs,
    kInput,
    kShape,
    kData,
    kParams,
    kOutputs,
    kOutput,
    kSkip
  };
  enum class Owner : uint8_t { kRequest, kInput, kOutput };

  // Per-input state while its object is open.
  struct InputState {
    uint32_t seen = 0;  // bits of Field
    bool has_name = false, has_datatype = false, has_shape = false, has_data = false;
    std::optional<uint64_t> binary_size;
    uint64_t elements = 0;        // JSON data elements seen
    std::vector<Token> deferred;  // data elements seen before "datatype"
  };

  // Event plumbing (request_handler.cc).
  bool Enter();
  bool OnValue(const Token& token);
  bool OnKey(std::string_view key);
  bool OnEnd();
  bool Push(Frame frame);
  Frame Top() const { return static_cast<Frame>(frames_.back()); }
  bool Skip(const Token& token);
  bool Fail(std::string message);
  bool MarkSeen(uint32_t& seen, Field field);  // false when `field` was seen before

  // Top level, outputs and parameters (request_handler.cc).
  bool TopValue(const Token& token);
  bool FinishTop();
  bool BeginOutput(const Token& token);
  bool OutputValue(const Token& token);
  bool FinishOutput();
  bool ParamValue(const Token& token);
  bool RequestParam(const Token& token);
  bool InputParam(const Token& token);
  bool OutputParam(const Token& token);
  bool CheckUniqueNames();
  std::string OutputLabel() const;

  // Inputs (request_inputs.cc).
  bool BeginInput(const Token& token);
  bool InputValue(const Token& token);
  bool ShapeValue(const Token& token);
  bool BeginData();
  bool DataValue(const Token& token);
  bool ConvertElement(const Token& token, uint64_t index);
  bool FailElement(ElementError error, const Token& token, uint64_t index);
  bool FinishInput();
  bool FinishInputData(int64_t count);
  bool FinishInputBinary(int64_t count);
  std::string InputLabel() const;

  const DecodeLimits limits_;
  const size_t json_size_;
  ParsedRequest parsed_;
  std::string frames_;  // of Frame; shallow stacks stay inline (no allocation)
  int depth_ = 0;
  Field field_ = Field::kOther;  // the key whose value comes next
  std::string_view param_key_;   // ditto inside "parameters"
  Owner params_owner_ = Owner::kRequest;
  uint32_t top_seen_ = 0, output_seen_ = 0;
  InputState input_;
  bool done_ = false;
  Status error_;
};

}  // namespace orrery::tensor_internal
