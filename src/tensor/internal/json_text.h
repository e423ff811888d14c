// JSON text helpers for the hand-written codecs (internal to src/tensor):
// UTF-8 checks, and writers that put JSON text at a raw pointer into a
// buffer the caller has sized with the Max* bounds below (the encoder sizes
// its output once, then writes without further checks or reallocation).
//
// Thread-safety: free functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace orrery::tensor_internal {

constexpr bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

// Length of the well-formed UTF-8 sequence at p[0] (n > 0 bytes readable),
// or 0 when there is none.
size_t Utf8SequenceLength(const unsigned char* p, size_t n);

// True when `text` is well-formed UTF-8 (no overlong forms, no surrogates,
// nothing past U+10FFFF).
bool IsValidUtf8(std::string_view text);

// Most characters WriteJsonString writes for `bytes` bytes of text (each
// byte at worst \u00XX), quotes included.
constexpr size_t MaxJsonStringChars(size_t bytes) {
  return 6 * bytes + 2;
}
// Room WriteJsonNumber needs (it writes at most 24 characters).
constexpr size_t kMaxJsonNumberChars = 32;

// Writes `text` at `out` as a quoted JSON string and returns the new end:
// '"', '\\' and control characters escaped, other bytes as they are, except
// bytes that are not part of valid UTF-8, which become U+FFFD so the output
// is always valid JSON.
char* WriteJsonString(char* out, std::string_view text);

// Writes the shortest text that reads back to the same value (FP32 as a
// float), or NaN, Infinity, -Infinity; returns the new end.
char* WriteJsonNumber(char* out, float value);
char* WriteJsonNumber(char* out, double value);
char* WriteJsonNumber(char* out, int64_t value);
char* WriteJsonNumber(char* out, uint64_t value);

}  // namespace orrery::tensor_internal
