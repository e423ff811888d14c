#include "tensor/internal/json_text.h"

#include <charconv>
#include <cmath>
#include <cstring>

namespace orrery::tensor_internal {
namespace {

bool IsContinuation(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

}  // namespace

// The second byte's range rules out overlong forms, surrogates (ED A0..BF)
// and code points past U+10FFFF (F4 90..).
size_t Utf8SequenceLength(const unsigned char* p, size_t n) {
  unsigned char c = p[0];
  if (c < 0x80) return 1;
  size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    length = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    length = 3;
    if (c == 0xE0) low = 0xA0;
    if (c == 0xED) high = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    length = 4;
    if (c == 0xF0) low = 0x90;
    if (c == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (n < length || p[1] < low || p[1] > high) return 0;
  for (size_t i = 2; i < length; ++i) {
    if (!IsContinuation(p[i])) return 0;
  }
  return length;
}

namespace {

char* WriteEscape(char* out, unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  char simple = 0;
  switch (c) {
    case '"': simple = '"'; break;
    case '\\': simple = '\\'; break;
    case '\n': simple = 'n'; break;
    case '\r': simple = 'r'; break;
    case '\t': simple = 't'; break;
    case '\b': simple = 'b'; break;
    case '\f': simple = 'f'; break;
    default: break;
  }
  *out++ = '\\';
  if (simple) {
    *out++ = simple;
    return out;
  }
  const char code[5] = {'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
  std::memcpy(out, code, sizeof(code));
  return out + sizeof(code);
}

bool IsPlain(unsigned char c) {
  return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

template <typename T>
char* WriteChars(char* out, T value) {
  return std::to_chars(out, out + kMaxJsonNumberChars, value).ptr;  // shortest round-trip form
}

char* WriteWord(char* out, std::string_view word) {
  std::memcpy(out, word.data(), word.size());
  return out + word.size();
}

template <typename T>
char* WriteFloating(char* out, T value) {
  if (std::isnan(value)) return WriteWord(out, "NaN");
  if (std::isinf(value)) return WriteWord(out, value < 0 ? "-Infinity" : "Infinity");
  return WriteChars(out, value);
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    size_t length = Utf8SequenceLength(p + i, n - i);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

char* WriteJsonString(char* out, std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  *out++ = '"';
  size_t i = 0;
  while (i < n) {
    size_t run = i;
    while (run < n && IsPlain(p[run])) ++run;
    std::memcpy(out, text.data() + i, run - i);
    out += run - i;
    if (run == n) break;
    i = run;
    if (p[i] < 0x80) {
      out = WriteEscape(out, p[i++]);
      continue;
    }
    size_t length = Utf8SequenceLength(p + i, n - i);
    if (length == 0) {
      out = WriteWord(out, "\xEF\xBF\xBD");  // U+FFFD for one bad byte
      ++i;
    } else {
      std::memcpy(out, text.data() + i, length);
      out += length;
      i += length;
    }
  }
  *out++ = '"';
  return out;
}

char* WriteJsonNumber(char* out, float value) {
  return WriteFloating(out, value);
}
char* WriteJsonNumber(char* out, double value) {
  return WriteFloating(out, value);
}
char* WriteJsonNumber(char* out, int64_t value) {
  return WriteChars(out, value);
}
char* WriteJsonNumber(char* out, uint64_t value) {
  return WriteChars(out, value);
}

}  // namespace orrery::tensor_internal
