// A table-free JSON scanner: one loop over a state (what may come next) and
// a stack of open containers. The '\0' after the buffer stops every inner
// loop (it is neither a digit, a quote, nor a valid string byte), so only
// the places that report errors compare against `end`.
#include "tensor/internal/json_scanner.h"

#include <cstdint>
#include <string>

#include "tensor/internal/json_text.h"

namespace orrery::tensor_internal {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads 4 hex digits at q; stops at the first non-hex character, so never
// reads past the terminating '\0'.
bool ReadHex4(const char* q, uint32_t* value) {
  *value = 0;
  for (int i = 0; i < 4; ++i) {
    int digit = HexValue(q[i]);
    if (digit < 0) return false;
    *value = *value << 4 | static_cast<uint32_t>(digit);
  }
  return true;
}

char* WriteUtf8(char* w, uint32_t cp) {
  if (cp < 0x80) {
    *w++ = static_cast<char>(cp);
  } else if (cp < 0x800) {
    *w++ = static_cast<char>(0xC0 | cp >> 6);
    *w++ = static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *w++ = static_cast<char>(0xE0 | cp >> 12);
    *w++ = static_cast<char>(0x80 | (cp >> 6 & 0x3F));
    *w++ = static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *w++ = static_cast<char>(0xF0 | cp >> 18);
    *w++ = static_cast<char>(0x80 | (cp >> 12 & 0x3F));
    *w++ = static_cast<char>(0x80 | (cp >> 6 & 0x3F));
    *w++ = static_cast<char>(0x80 | (cp & 0x3F));
  }
  return w;
}

// Bytes a string's fast path copies as they are: printable ASCII but '"'
// and '\\' (control characters, escapes, UTF-8 and the end need a look).
struct PlainTable {
  bool plain[256] = {};
  constexpr PlainTable() {
    for (int c = 0x20; c < 0x80; ++c) plain[c] = c != '"' && c != '\\';
  }
};
constexpr PlainTable kPlain;

bool IsPlain(char c) {
  return kPlain.plain[static_cast<unsigned char>(c)];
}

enum class Expect : uint8_t { kValue, kValueOrEnd, kKey, kKeyOrEnd, kCommaOrEnd, kDone };

class Scanner {
 public:
  Scanner(char* begin, char* end, JsonEvents& events)
      : begin_(begin), p_(begin), end_(end), events_(events) {}

  ScanResult Run();

 private:
  bool Value();
  bool Open(char bracket);
  bool Close();
  bool KeyAndColon();
  bool CommaOrEnd();
  bool Literal(std::string_view word);
  bool Number();
  bool ScanNumberText();
  bool String(std::string_view* text);
  bool EscapedString(char* start, std::string_view* text);
  bool Unescape(char** w);
  bool Utf8Sequence(char** w);

  bool Emit(bool ok) { return ok || (stopped_ = true, false); }
  bool Fail(const char* message) {
    error_ = p_ >= end_ ? "unexpected end of input" : message;
    return false;
  }
  void SkipSpace() {
    char* p = p_;  // a local: writes through char* would force p_ to memory
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') ++p;
    p_ = p;
  }
  Expect AfterValue() const { return stack_.empty() ? Expect::kDone : Expect::kCommaOrEnd; }

  char* const begin_;
  char* p_;
  char* const end_;
  JsonEvents& events_;
  std::string stack_;  // '{' or '[' per open container; shallow stacks stay inline
  Expect expect_ = Expect::kValue;
  const char* error_ = nullptr;
  bool stopped_ = false;
};

ScanResult Scanner::Run() {
  while (true) {
    SkipSpace();
    bool ok = true;
    switch (expect_) {
      case Expect::kDone: return {false, nullptr, static_cast<size_t>(p_ - begin_)};
      case Expect::kValueOrEnd: ok = *p_ == ']' ? Close() : Value(); break;
      case Expect::kValue: ok = Value(); break;
      case Expect::kKeyOrEnd: ok = *p_ == '}' ? Close() : KeyAndColon(); break;
      case Expect::kKey: ok = KeyAndColon(); break;
      case Expect::kCommaOrEnd: ok = CommaOrEnd(); break;
    }
    if (!ok) return {stopped_, error_, static_cast<size_t>(p_ - begin_)};
  }
}

bool Scanner::Value() {
  switch (*p_) {
    case '{':
    case '[': return Open(*p_);
    case '"': {
      std::string_view text;
      if (!String(&text)) return false;
      expect_ = AfterValue();
      return Emit(events_.String(text));
    }
    case 't': return Literal("true");
    case 'f': return Literal("false");
    case 'n': return Literal("null");
    default: return Number();
  }
}

bool Scanner::Open(char bracket) {
  ++p_;
  stack_ += bracket;
  expect_ = bracket == '{' ? Expect::kKeyOrEnd : Expect::kValueOrEnd;
  return Emit(bracket == '{' ? events_.StartObject() : events_.StartArray());
}

bool Scanner::Close() {
  ++p_;
  bool object = stack_.back() == '{';
  stack_.pop_back();
  expect_ = AfterValue();
  return Emit(object ? events_.EndObject() : events_.EndArray());
}

bool Scanner::KeyAndColon() {
  if (*p_ != '"') return Fail("expected a string key");
  std::string_view key;
  if (!String(&key)) return false;
  SkipSpace();
  if (*p_ != ':') return Fail("expected ':' after a key");
  ++p_;
  expect_ = Expect::kValue;
  return Emit(events_.Key(key));
}

bool Scanner::CommaOrEnd() {
  bool object = stack_.back() == '{';
  if (*p_ == ',') {  // go straight on to what follows: one loop turn per element
    ++p_;
    SkipSpace();
    return object ? KeyAndColon() : Value();
  }
  if (*p_ == (object ? '}' : ']')) return Close();
  return Fail(object ? "expected ',' or '}'" : "expected ',' or ']'");
}

bool Scanner::Literal(std::string_view word) {
  for (size_t i = 0; i < word.size(); ++i) {  // stops at the first mismatch, '\0' included
    if (p_[i] != word[i]) return Fail("invalid literal");
  }
  p_ += word.size();
  expect_ = AfterValue();
  switch (word[0]) {
    case 't': return Emit(events_.Bool(true));
    case 'f': return Emit(events_.Bool(false));
    default: return Emit(events_.Null());
  }
}

// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? or NaN, Infinity, -Infinity.
bool Scanner::Number() {
  char* start = p_;
  if (*p_ != '-' && *p_ != 'I' && *p_ != 'N' && !IsDigit(*p_)) return Fail("expected a value");
  if (*p_ == '-') ++p_;
  std::string_view word = *p_ == 'I' ? "Infinity" : (*p_ == 'N' && p_ == start) ? "NaN" : "";
  if (!word.empty()) {
    for (size_t i = 0; i < word.size(); ++i) {
      if (p_[i] != word[i]) return Fail("invalid literal");
    }
    p_ += word.size();
  } else {
    if (!ScanNumberText()) return false;
  }
  expect_ = AfterValue();
  return Emit(events_.Number(std::string_view(start, p_ - start)));
}

// The digits of a JSON number, from just after its optional '-'.
bool Scanner::ScanNumberText() {
  char* p = p_;
  bool ok = true;
  if (*p == '0') {
    ++p;
  } else if (IsDigit(*p)) {
    while (IsDigit(*p)) ++p;
  } else {
    ok = false;
  }
  if (ok && *p == '.') {
    ok = IsDigit(*++p);
    while (IsDigit(*p)) ++p;
  }
  if (ok && (*p == 'e' || *p == 'E')) {
    ++p;
    if (*p == '+' || *p == '-') ++p;
    ok = IsDigit(*p);
    while (IsDigit(*p)) ++p;
  }
  p_ = p;
  return ok || Fail("invalid number");
}

// The fast path: no escapes, so the text is the bytes between the quotes.
bool Scanner::String(std::string_view* text) {
  char* start = ++p_;
  while (true) {
    char* p = p_;
    while (IsPlain(*p)) ++p;
    p_ = p;
    unsigned char c = static_cast<unsigned char>(*p_);
    if (c == '"') break;
    if (c == '\\') return EscapedString(start, text);
    if (c < 0x20) return Fail("control character in string");
    if (!Utf8Sequence(nullptr)) return false;
  }
  *text = std::string_view(start, p_ - start);
  ++p_;
  return true;
}

// Decodes in place from the first escape on: the write position `w` never
// passes the read position, since no escape is shorter than its UTF-8.
bool Scanner::EscapedString(char* start, std::string_view* text) {
  char* w = p_;
  while (true) {
    unsigned char c = static_cast<unsigned char>(*p_);
    if (c == '"') break;
    if (c == '\\') {
      if (!Unescape(&w)) return false;
    } else if (c < 0x20) {
      return Fail("control character in string");
    } else if (c < 0x80) {
      *w++ = *p_++;
    } else if (!Utf8Sequence(&w)) {
      return false;
    }
  }
  *text = std::string_view(start, w - start);
  ++p_;
  return true;
}

// Steps over one multi-byte UTF-8 sequence at p_, copying it to *w if given.
bool Scanner::Utf8Sequence(char** w) {
  size_t length = Utf8SequenceLength(reinterpret_cast<const unsigned char*>(p_), end_ - p_);
  if (length == 0) return Fail("invalid UTF-8 in string");
  for (size_t i = 0; i < length; ++i) {
    if (w) *(*w)++ = p_[i];
  }
  p_ += length;
  return true;
}

bool Scanner::Unescape(char** w) {
  char simple = 0;
  switch (p_[1]) {
    case '"': simple = '"'; break;
    case '\\': simple = '\\'; break;
    case '/': simple = '/'; break;
    case 'b': simple = '\b'; break;
    case 'f': simple = '\f'; break;
    case 'n': simple = '\n'; break;
    case 'r': simple = '\r'; break;
    case 't': simple = '\t'; break;
    case 'u': break;
    default: return Fail("invalid escape in string");
  }
  if (simple) {
    *(*w)++ = simple;
    p_ += 2;
    return true;
  }
  uint32_t cp = 0, low = 0;
  if (!ReadHex4(p_ + 2, &cp)) return Fail("invalid \\u escape");
  p_ += 6;
  if (cp >= 0xDC00 && cp <= 0xDFFF) return Fail("lone low surrogate in \\u escape");
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    if (p_[0] != '\\' || p_[1] != 'u' || !ReadHex4(p_ + 2, &low) || low < 0xDC00 || low > 0xDFFF) {
      return Fail("high surrogate without a low surrogate in \\u escape");
    }
    p_ += 6;
    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
  }
  *w = WriteUtf8(*w, cp);
  return true;
}

}  // namespace

ScanResult ScanJson(char* begin, char* end, JsonEvents& events) {
  return Scanner(begin, end, events).Run();
}

}  // namespace orrery::tensor_internal
