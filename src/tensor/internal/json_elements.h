// Conversion of JSON scalar tokens into tensor elements and parameter
// values (internal to src/tensor).
//
// Tokens are views into the parser's buffer: numbers arrive as their JSON
// text (or NaN / Infinity / -Infinity), so each datatype parses them at its
// own precision and range instead of going through double.
//
// Thread-safety: free functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tensor/tensor.h"

namespace orrery::tensor_internal {

enum class TokenKind : uint8_t { kNull, kBool, kNumber, kString, kObject, kArray };

struct Token {
  TokenKind kind = TokenKind::kNull;
  std::string_view text;  // kNumber: the literal; kString: the decoded bytes
  bool boolean = false;   // kBool
};

// "null", "a boolean", "a number", ... for messages.
const char* TokenKindName(TokenKind kind);

enum class ElementError : uint8_t {
  kOk,
  kWrongKind,    // e.g. a string for INT32, 1 for BOOL
  kNotInteger,   // 1.5, 1e3, NaN for an integer datatype
  kOutOfRange,   // 300 for UINT8, -1 for UINT32, 1e39 for FP32
  kUnsupported,  // FP16 / BF16 have no JSON form
};

// Appends `token` to `out` as one little-endian element of `type` (BYTES: a
// uint32 length, then the bytes). On error `out` is unchanged.
ElementError AppendElement(DataType type, const Token& token, std::string& out);

// The value of an integer literal (digits with an optional '-'; no
// fraction, no exponent) when it fits int64.
std::optional<int64_t> ParseInt64(std::string_view text);
// The same for non-negative literals that fit int64 (shapes, sizes, ...).
std::optional<int64_t> ParseNonNegativeInt64(std::string_view text);

// A parameter's number as JSON: int64 or uint64 when it is an integer
// literal that fits, else double; nullopt for NaN and infinities.
std::optional<nlohmann::json> ParameterNumber(std::string_view text);

}  // namespace orrery::tensor_internal
