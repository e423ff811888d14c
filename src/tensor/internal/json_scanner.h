// A small iterative JSON reader that reports SAX-style events (internal to
// src/tensor). It exists because the request decoder must be both safe on
// hostile input and fast on the serving hot path; see infer_decode.cc for
// the measurements against nlohmann::json::sax_parse and RapidJSON.
//
// Accepts RFC 8259 JSON plus the number tokens NaN, Infinity and -Infinity
// (Python's json module writes them). Strings must be valid UTF-8; escapes
// are decoded, \u surrogate pairs included (lone surrogates are errors).
// Numbers are reported as their text, unconverted. Nesting lives in a heap
// stack, never the native one; the events can stop the scan at any point
// (e.g. at a depth limit) by returning false.
//
// Thread-safety: one scan per buffer; no shared state.
#pragma once

#include <cstddef>
#include <string_view>

namespace orrery::tensor_internal {

// Receives the events of one scan. Views point into the scanned buffer and
// stay valid for as long as it does. Return false to stop the scan.
class JsonEvents {
 public:
  virtual ~JsonEvents() = default;
  virtual bool Null() = 0;
  virtual bool Bool(bool value) = 0;
  virtual bool Number(std::string_view text) = 0;
  virtual bool String(std::string_view text) = 0;  // decoded bytes
  virtual bool Key(std::string_view text) = 0;     // decoded bytes
  virtual bool StartObject() = 0;
  virtual bool EndObject() = 0;
  virtual bool StartArray() = 0;
  virtual bool EndArray() = 0;
};

struct ScanResult {
  bool stopped = false;         // an event returned false
  const char* error = nullptr;  // a syntax error, else nullptr
  size_t offset = 0;            // where the error is, or just past the value
};

// Scans one JSON value from [begin, end). The buffer is modified: strings
// are unescaped in place. *end must be readable and '\0' (a std::string's
// terminator does), so the scanner needs no bounds check per character.
// Text after the value is left for the caller to judge.
ScanResult ScanJson(char* begin, char* end, JsonEvents& events);

}  // namespace orrery::tensor_internal
