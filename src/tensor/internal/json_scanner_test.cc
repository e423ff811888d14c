#include "tensor/internal/json_scanner.h"

#include <gtest/gtest.h>

#include <string>

namespace orrery::tensor_internal {
namespace {

// Writes each event as a short token: { } [ ] k:key s:string n:number t f null.
class Recorder final : public JsonEvents {
 public:
  std::string log;
  int stop_after = -1;  // events before returning false; -1: never

  bool Null() override { return Add("null"); }
  bool Bool(bool value) override { return Add(value ? "t" : "f"); }
  bool Number(std::string_view text) override { return Add("n:" + std::string(text)); }
  bool String(std::string_view text) override { return Add("s:" + std::string(text)); }
  bool Key(std::string_view text) override { return Add("k:" + std::string(text)); }
  bool StartObject() override { return Add("{"); }
  bool EndObject() override { return Add("}"); }
  bool StartArray() override { return Add("["); }
  bool EndArray() override { return Add("]"); }

 private:
  bool Add(const std::string& event) {
    log += (log.empty() ? "" : " ") + event;
    return stop_after < 0 || stop_after-- > 0;
  }
};

struct Scanned {
  ScanResult result;
  std::string log;
};

Scanned Scan(std::string text, int stop_after = -1) {
  Recorder recorder;
  recorder.stop_after = stop_after;
  ScanResult result = ScanJson(text.data(), text.data() + text.size(), recorder);
  return {result, recorder.log};
}

TEST(JsonScanner, ReportsEventsInOrder) {
  Scanned s = Scan(R"( {"a": [1, -2.5e+3, true, false, null, "x"], "b": {}, "c": []} tail)");
  EXPECT_EQ(s.result.error, nullptr);
  EXPECT_FALSE(s.result.stopped);
  EXPECT_EQ(s.log, "{ k:a [ n:1 n:-2.5e+3 t f null s:x ] k:b { } k:c [ ] }");
  EXPECT_EQ(s.result.offset, 63u);  // just past the value; the caller judges " tail"
}

TEST(JsonScanner, NumbersAsTextIncludingNanAndInfinity) {
  EXPECT_EQ(
      Scan("[0, -0, 0.5, 1E9, 2e-3, 123456789012345678901234567890, NaN, Infinity, -Infinity]").log,
      "[ n:0 n:-0 n:0.5 n:1E9 n:2e-3 n:123456789012345678901234567890 n:NaN n:Infinity "
      "n:-Infinity ]");
}

TEST(JsonScanner, DecodesEscapesAndKeepsUtf8) {
  Scanned s = Scan(R"(["a\"b\\c\/d\b\f\n\r\t", "\u00e9\u20ac\ud83d\ude00", "\u0000", "é€😀"])");
  ASSERT_EQ(s.result.error, nullptr);
  EXPECT_EQ(s.log,
            std::string("[ s:a\"b\\c/d\b\f\n\r\t s:\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 s:") +
                std::string(1, '\0') + " s:é€😀 ]");
}

TEST(JsonScanner, SyntaxErrors) {
  struct Case {
    const char* text;
    const char* error;
  };
  for (Case c : {
           Case{"", "unexpected end of input"},
           Case{"   ", "unexpected end of input"},
           Case{"[1,", "unexpected end of input"},
           Case{"{\"a\"", "unexpected end of input"},
           Case{"\"abc", "unexpected end of input"},
           Case{"[1 2]", "expected ',' or ']'"},
           Case{"{\"a\":1 \"b\":2}", "expected ',' or '}'"},
           Case{"{\"a\" 1}", "expected ':' after a key"},
           Case{"{a:1}", "expected a string key"},
           Case{"{\"a\":1,}", "expected a string key"},
           Case{"[1,]", "expected a value"},
           Case{"]", "expected a value"},
           Case{"+1", "expected a value"},
           Case{"'x'", "expected a value"},
           Case{"01", nullptr},  // "0", then "1" is the caller's trailing data
           Case{"1.", "unexpected end of input"},
           Case{"1.x", "invalid number"},
           Case{".5", "expected a value"},
           Case{"-", "unexpected end of input"},
           Case{"-x", "invalid number"},
           Case{"1e", "unexpected end of input"},
           Case{"1e+x", "invalid number"},
           Case{"-NaN", "invalid number"},
           Case{"nan", "invalid literal"},
           Case{"Inf", "invalid literal"},
           Case{"tru", "invalid literal"},
           Case{"trux", "invalid literal"},
           Case{"nul", "invalid literal"},
           Case{"\"a\tb\"", "control character in string"},
           Case{"\"\\x\"", "invalid escape in string"},
           Case{"\"\\u12g4\"", "invalid \\u escape"},
           Case{"\"\\u12\"", "invalid \\u escape"},
           Case{"\"\\udc00\"", "lone low surrogate in \\u escape"},
           Case{"\"\\ud800\"", "high surrogate without a low surrogate in \\u escape"},
           Case{"\"\\ud800\\u0041\"", "high surrogate without a low surrogate in \\u escape"},
           Case{"\"\xff\"", "invalid UTF-8 in string"},
           Case{"\"\xc0\xaf\"", "invalid UTF-8 in string"},          // overlong '/'
           Case{"\"\xed\xa0\x80\"", "invalid UTF-8 in string"},      // encoded surrogate
           Case{"\"\xf4\x90\x80\x80\"", "invalid UTF-8 in string"},  // past U+10FFFF
           Case{"\"\xe2\x82\"", "invalid UTF-8 in string"},          // cut short
           Case{"\"a\\\"\xff\"", "invalid UTF-8 in string"},         // after an escape
       }) {
    Scanned s = Scan(c.text);
    if (c.error == nullptr) {
      EXPECT_EQ(s.result.error, nullptr) << c.text;
    } else {
      ASSERT_NE(s.result.error, nullptr) << c.text << " -> " << s.log;
      EXPECT_STREQ(s.result.error, c.error) << c.text;
    }
  }
}

TEST(JsonScanner, EmbeddedNulIsNotTheEnd) {
  std::string text("[1,\0 2]", 7);
  Recorder recorder;
  ScanResult result = ScanJson(text.data(), text.data() + text.size(), recorder);
  ASSERT_NE(result.error, nullptr);
  EXPECT_STREQ(result.error, "expected a value");
  EXPECT_EQ(result.offset, 3u);
}

TEST(JsonScanner, EventsCanStopTheScan) {
  Scanned s = Scan("[[[[[[1]]]]]]", 3);
  EXPECT_TRUE(s.result.stopped);
  EXPECT_EQ(s.result.error, nullptr);
  EXPECT_EQ(s.log, "[ [ [ [");
}

TEST(JsonScanner, DeepNestingUsesNoNativeStack) {
  std::string deep = std::string(1'000'000, '[') + std::string(1'000'000, ']');
  Scanned s = Scan(deep);
  EXPECT_EQ(s.result.error, nullptr);
  EXPECT_EQ(s.result.offset, deep.size());
}

}  // namespace
}  // namespace orrery::tensor_internal
