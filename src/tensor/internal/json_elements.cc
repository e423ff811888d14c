#include "tensor/internal/json_elements.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "tensor/internal/json_text.h"

namespace orrery::tensor_internal {
namespace {

// The wire layout is little-endian; elements are copied as they are in memory.
static_assert(std::endian::native == std::endian::little, "little-endian host required");

bool IsIntegerLiteral(std::string_view text) {
  size_t i = (!text.empty() && text[0] == '-') ? 1 : 0;
  if (i == text.size()) return false;
  for (; i < text.size(); ++i) {
    if (!IsDigit(text[i])) return false;
  }
  return true;
}

template <typename T>
void AppendRaw(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(T));
}

template <typename T>
ElementError ParseInteger(std::string_view text, T* value) {
  if (!IsIntegerLiteral(text)) return ElementError::kNotInteger;
  const char* end = text.data() + text.size();
  if constexpr (std::is_signed_v<T>) {
    int64_t wide = 0;
    std::from_chars_result r = std::from_chars(text.data(), end, wide);
    if (r.ec != std::errc() || wide < std::numeric_limits<T>::min() ||
        wide > std::numeric_limits<T>::max()) {
      return ElementError::kOutOfRange;
    }
    *value = static_cast<T>(wide);
  } else {
    if (text[0] == '-') {  // only "-0" (any number of zeros) is not negative
      if (text.find_first_not_of('0', 1) != std::string_view::npos)
        return ElementError::kOutOfRange;
      *value = 0;
      return ElementError::kOk;
    }
    uint64_t wide = 0;
    std::from_chars_result r = std::from_chars(text.data(), end, wide);
    if (r.ec != std::errc() || wide > std::numeric_limits<T>::max())
      return ElementError::kOutOfRange;
    *value = static_cast<T>(wide);
  }
  return ElementError::kOk;
}

// True when the literal's magnitude is >= 1: its leading significant digit
// sits at a non-negative power of ten. Only called for literals that
// from_chars found out of range, which are never zero.
bool IsLargeMagnitude(std::string_view text) {
  size_t i = (text[0] == '-') ? 1 : 0;
  const size_t int_start = i;
  while (i < text.size() && IsDigit(text[i])) ++i;
  const int64_t int_digits = static_cast<int64_t>(i - int_start);
  int64_t power = 0;
  bool found = false;
  for (size_t k = int_start; k < i && !found; ++k) {
    if (text[k] != '0') power = int_digits - 1 - static_cast<int64_t>(k - int_start), found = true;
  }
  if (i < text.size() && text[i] == '.') {
    const size_t frac_start = ++i;
    for (; i < text.size() && IsDigit(text[i]); ++i) {
      if (!found && text[i] != '0') power = -static_cast<int64_t>(i - frac_start) - 1, found = true;
    }
  }
  int64_t exponent = 0;
  if (i < text.size()) {  // 'e' or 'E', an optional sign, digits
    bool negative = text[++i] == '-';
    if (text[i] == '-' || text[i] == '+') ++i;
    for (; i < text.size() && exponent < 1'000'000'000; ++i)
      exponent = exponent * 10 + (text[i] - '0');
    if (negative) exponent = -exponent;
  }
  return power + exponent >= 0;
}

// Parses a JSON number (or NaN / Infinity / -Infinity) at T's precision:
// too large is an error, too small rounds to a signed zero.
template <typename T>
ElementError ParseFloating(std::string_view text, T* value) {
  const char* end = text.data() + text.size();
  std::from_chars_result r = std::from_chars(text.data(), end, *value);
  if (r.ec == std::errc()) return r.ptr == end ? ElementError::kOk : ElementError::kWrongKind;
  if (r.ec != std::errc::result_out_of_range) return ElementError::kWrongKind;
  if (IsLargeMagnitude(text)) return ElementError::kOutOfRange;
  *value = text[0] == '-' ? -T(0) : T(0);
  return ElementError::kOk;
}

template <typename T>
ElementError AppendNumber(std::string_view text, std::string& out) {
  T value{};
  ElementError error;
  if constexpr (std::is_floating_point_v<T>) {
    error = ParseFloating(text, &value);
  } else {
    error = ParseInteger(text, &value);
  }
  if (error == ElementError::kOk) AppendRaw(out, value);
  return error;
}

ElementError AppendNumeric(DataType type, std::string_view text, std::string& out) {
  switch (type) {
    case DataType::kUint8: return AppendNumber<uint8_t>(text, out);
    case DataType::kUint16: return AppendNumber<uint16_t>(text, out);
    case DataType::kUint32: return AppendNumber<uint32_t>(text, out);
    case DataType::kUint64: return AppendNumber<uint64_t>(text, out);
    case DataType::kInt8: return AppendNumber<int8_t>(text, out);
    case DataType::kInt16: return AppendNumber<int16_t>(text, out);
    case DataType::kInt32: return AppendNumber<int32_t>(text, out);
    case DataType::kInt64: return AppendNumber<int64_t>(text, out);
    case DataType::kFp32: return AppendNumber<float>(text, out);
    case DataType::kFp64: return AppendNumber<double>(text, out);
    default: return ElementError::kWrongKind;
  }
}

ElementError AppendString(std::string_view text, std::string& out) {
  if (text.size() > std::numeric_limits<uint32_t>::max()) return ElementError::kOutOfRange;
  AppendRaw(out, static_cast<uint32_t>(text.size()));
  out.append(text);
  return ElementError::kOk;
}

}  // namespace

const char* TokenKindName(TokenKind kind) {
  switch (kind) {
    case TokenKind::kNull: return "null";
    case TokenKind::kBool: return "a boolean";
    case TokenKind::kNumber: return "a number";
    case TokenKind::kString: return "a string";
    case TokenKind::kObject: return "an object";
    case TokenKind::kArray: return "an array";
  }
  return "a value";
}

ElementError AppendElement(DataType type, const Token& token, std::string& out) {
  switch (type) {
    case DataType::kBool:
      if (token.kind != TokenKind::kBool) return ElementError::kWrongKind;
      out += static_cast<char>(token.boolean ? 1 : 0);
      return ElementError::kOk;
    case DataType::kBytes:
      if (token.kind != TokenKind::kString) return ElementError::kWrongKind;
      return AppendString(token.text, out);
    case DataType::kFp16:
    case DataType::kBf16: return ElementError::kUnsupported;
    default:
      if (token.kind != TokenKind::kNumber) return ElementError::kWrongKind;
      return AppendNumeric(type, token.text, out);
  }
}

std::optional<int64_t> ParseInt64(std::string_view text) {
  int64_t value = 0;
  if (ParseInteger(text, &value) != ElementError::kOk) return std::nullopt;
  return value;
}

std::optional<int64_t> ParseNonNegativeInt64(std::string_view text) {
  std::optional<int64_t> value = ParseInt64(text);
  if (!value || *value < 0) return std::nullopt;
  return value;
}

std::optional<nlohmann::json> ParameterNumber(std::string_view text) {
  int64_t signed_value = 0;
  if (ParseInteger(text, &signed_value) == ElementError::kOk) return nlohmann::json(signed_value);
  uint64_t unsigned_value = 0;
  if (ParseInteger(text, &unsigned_value) == ElementError::kOk) {
    return nlohmann::json(unsigned_value);
  }
  double value = 0;
  if (ParseFloating(text, &value) != ElementError::kOk || !std::isfinite(value))
    return std::nullopt;
  return nlohmann::json(value);
}

}  // namespace orrery::tensor_internal
