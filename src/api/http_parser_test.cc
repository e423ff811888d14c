#include "api/http_parser.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace orrery {
namespace {

constexpr size_t kLimit = 8192;

// The head's views point into `buffer`, a copy of what was parsed that
// stays put when a Parsed is moved.
struct Parsed {
  std::unique_ptr<const std::string> buffer;
  ParseResult result;
  RequestHead head;
};

Parsed Parse(std::string_view buffer, size_t limit = kLimit) {
  Parsed parsed;
  parsed.buffer = std::make_unique<const std::string>(buffer);
  parsed.result = ParseRequestHead(*parsed.buffer, limit, parsed.head);
  return parsed;
}

ParseOutcome Outcome(std::string_view buffer, size_t limit = kLimit) {
  return Parse(buffer, limit).result.outcome;
}

// A head with the given request line and field lines (each without CRLF).
std::string Head(std::string_view request_line, std::initializer_list<std::string_view> fields) {
  std::string head(request_line);
  head += "\r\n";
  for (std::string_view field : fields) {
    head += field;
    head += "\r\n";
  }
  head += "\r\n";
  return head;
}

// ---- request line and fields ----

TEST(ParseRequestHeadTest, SimpleGet) {
  std::string request = "GET /index.html?q=a%20b HTTP/1.1\r\nHost: example.com\r\n\r\n";
  Parsed parsed = Parse(request);
  ASSERT_EQ(parsed.result.outcome, ParseOutcome::kDone) << parsed.result.error;
  EXPECT_EQ(parsed.result.error, "");
  EXPECT_EQ(parsed.head.method, "GET");
  EXPECT_EQ(parsed.head.target, "/index.html?q=a%20b");
  EXPECT_EQ(parsed.head.minor_version, 1);
  ASSERT_EQ(parsed.head.fields.size(), 1u);
  EXPECT_EQ(parsed.head.fields[0].first, "Host");
  EXPECT_EQ(parsed.head.fields[0].second, "example.com");
  EXPECT_FALSE(parsed.head.content_length.has_value());
  EXPECT_FALSE(parsed.head.chunked);
  EXPECT_TRUE(parsed.head.keep_alive);
  EXPECT_FALSE(parsed.head.expect_continue);
  EXPECT_FALSE(parsed.head.HasBody());
  EXPECT_EQ(parsed.head.head_bytes, request.size());
}

TEST(ParseRequestHeadTest, RequestWithoutFields) {
  Parsed parsed = Parse("GET / HTTP/1.1\r\n\r\n");
  ASSERT_EQ(parsed.result.outcome, ParseOutcome::kDone);
  EXPECT_TRUE(parsed.head.fields.empty());
  EXPECT_EQ(parsed.head.head_bytes, 18u);
}

TEST(ParseRequestHeadTest, PostWithContentLength) {
  std::string head = Head("POST /v1/infer HTTP/1.1", {"Host: x", "Content-Length: 5"});
  Parsed parsed = Parse(head + "hello");
  ASSERT_EQ(parsed.result.outcome, ParseOutcome::kDone) << parsed.result.error;
  EXPECT_EQ(parsed.head.method, "POST");
  EXPECT_EQ(parsed.head.content_length, 5u);
  EXPECT_TRUE(parsed.head.HasBody());
  EXPECT_EQ(parsed.head.head_bytes, head.size());
}

TEST(ParseRequestHeadTest, ZeroContentLengthHasNoBody) {
  Parsed parsed = Parse(Head("POST / HTTP/1.1", {"Content-Length: 0"}));
  ASSERT_EQ(parsed.result.outcome, ParseOutcome::kDone);
  EXPECT_EQ(parsed.head.content_length, 0u);
  EXPECT_FALSE(parsed.head.HasBody());
}

TEST(ParseRequestHeadTest, FieldsInArrivalOrderWithNamesAsSent) {
  Parsed parsed =
      Parse(Head("GET / HTTP/1.1", {"Host: x", "X-Trace: one", "ACCEPT: */*", "x-trace: two"}));
  ASSERT_EQ(parsed.result.outcome, ParseOutcome::kDone);
  ASSERT_EQ(parsed.head.fields.size(), 4u);
  EXPECT_EQ(parsed.head.fields[0].first, "Host");
  EXPECT_EQ(parsed.head.fields[1].first, "X-Trace");
  EXPECT_EQ(parsed.head.fields[2].first, "ACCEPT");
  EXPECT_EQ(parsed.head.fields[3].first, "x-trace");
  EXPECT_EQ(parsed.head.fields[3].second, "two");
}

TEST(ParseRequestHeadTest, FieldIsCaseInsensitiveAndReturnsTheFirst) {
  Parsed parsed = Parse(Head("GET / HTTP/1.1", {"X-Trace: one", "Accept: */*", "x-trace: two"}));
  ASSERT_EQ(parsed.result.outcome, ParseOutcome::kDone);
  EXPECT_EQ(parsed.head.Field("x-TRACE"), "one");
  EXPECT_EQ(parsed.head.Field("accept"), "*/*");
  EXPECT_EQ(parsed.head.Field("Missing"), "");
  EXPECT_EQ(parsed.head.Field("X-Trac"), "");
}

TEST(ParseRequestHeadTest, RefusesARepeatedSingleValuedField) {
  Parsed parsed = Parse(Head("GET / HTTP/1.1", {"Authorization: Bearer a", "Host: x",
                                               "authorization: Bearer b"}));
  EXPECT_EQ(parsed.result.outcome, ParseOutcome::kBad);
  EXPECT_EQ(parsed.result.error, "repeated header field 'authorization': it may be sent once");
  for (const char* name : {"Host", "Content-Type", "Content-Encoding",
                           "Inference-Header-Content-Length", "X-Orrery-Sha256"}) {
    std::string field = std::string(name) + ": 1";
    EXPECT_EQ(Outcome(Head("GET / HTTP/1.1", {field, field})), ParseOutcome::kBad) << name;
  }
  // Even with an empty first value; lists (Accept, X-...) may repeat.
  EXPECT_EQ(Outcome(Head("GET / HTTP/1.1", {"Host:", "Host: x"})), ParseOutcome::kBad);
  EXPECT_EQ(Outcome(Head("GET / HTTP/1.1", {"Accept: a", "Accept: b", "X-T: 1", "X-T: 2"})),
            ParseOutcome::kDone);
}

TEST(ParseRequestHeadTest, ValuesLoseSurroundingWhitespaceButKeepInnerTabs) {
  Parsed parsed = Parse(Head(
      "GET / HTTP/1.1", {"A: \t  spaced out \t ", "B:tight", "C:", "D: a\tb", "E: caf\xc3\xa9"}));
  ASSERT_EQ(parsed.result.outcome, ParseOutcome::kDone) << parsed.result.error;
  EXPECT_EQ(parsed.head.Field("A"), "spaced out");
  EXPECT_EQ(parsed.head.Field("B"), "tight");
  EXPECT_EQ(parsed.head.Field("C"), "");
  EXPECT_EQ(parsed.head.Field("D"), "a\tb");
  EXPECT_EQ(parsed.head.Field("E"), "caf\xc3\xa9");  // obs-text is allowed
}

TEST(ParseRequestHeadTest, ClearsTheHeadFirst) {
  std::string first =
      Head("POST /a HTTP/1.0", {"A: 1", "Content-Length: 3", "Connection: keep-alive"});
  std::string second = Head("GET /b HTTP/1.1", {"B: 2"});
  RequestHead head;
  ASSERT_EQ(ParseRequestHead(first, kLimit, head).outcome, ParseOutcome::kDone);
  ASSERT_TRUE(head.keep_alive);
  ASSERT_EQ(ParseRequestHead(second, kLimit, head).outcome, ParseOutcome::kDone);
  EXPECT_EQ(head.target, "/b");
  EXPECT_EQ(head.minor_version, 1);
  ASSERT_EQ(head.fields.size(), 1u);
  EXPECT_EQ(head.fields[0].first, "B");
  EXPECT_FALSE(head.content_length.has_value());
}

TEST(EqualsIgnoreCaseTest, FoldsAsciiOnly) {
  EXPECT_TRUE(EqualsIgnoreCase("Content-Length", "content-LENGTH"));
  EXPECT_TRUE(EqualsIgnoreCase("", ""));
  EXPECT_FALSE(EqualsIgnoreCase("close", "closed"));
  EXPECT_FALSE(EqualsIgnoreCase("a", "b"));
  EXPECT_FALSE(EqualsIgnoreCase("[", "{"));  // 0x5B vs 0x7B: not letters
  EXPECT_FALSE(EqualsIgnoreCase("\xc3\xa9", "\xc3\x89"));
}

TEST(ParseRequestHeadTest, SkipsEmptyLinesBeforeTheRequestLine) {
  std::string request = "\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
  Parsed parsed = Parse(request);
  ASSERT_EQ(parsed.result.outcome, ParseOutcome::kDone) << parsed.result.error;
  EXPECT_EQ(parsed.head.method, "GET");
  EXPECT_EQ(parsed.head.head_bytes, request.size());  // the empty lines are consumed too
  EXPECT_EQ(Outcome("\r\n"), ParseOutcome::kIncomplete);
  EXPECT_EQ(Outcome("\r\n\r"), ParseOutcome::kIncomplete);
}

TEST(ParseRequestHeadTest, RefusesBareLf) {
  EXPECT_EQ(Outcome("GET / HTTP/1.1\nHost: x\r\n\r\n"), ParseOutcome::kBad);
  EXPECT_EQ(Outcome("GET / HTTP/1.1\r\nHost: x\n\r\n"), ParseOutcome::kBad);
  EXPECT_EQ(Outcome("GET / HTTP/1.1\r\nHost: x\r\n\n"), ParseOutcome::kBad);
  EXPECT_EQ(Outcome("\nGET / HTTP/1.1\r\n\r\n"), ParseOutcome::kBad);
  EXPECT_EQ(Outcome("\r\n\nGET / HTTP/1.1\r\n\r\n"), ParseOutcome::kBad);
  Parsed parsed = Parse("GET / HTTP/1.1\n\n");
  EXPECT_EQ(parsed.result.outcome, ParseOutcome::kBad);
  EXPECT_NE(parsed.result.error.find("bare LF"), std::string::npos) << parsed.result.error;
}

TEST(ParseRequestHeadTest, RefusesBareCr) {
  EXPECT_EQ(Outcome("GET / HTTP/1.1\r\nA: 1\rB: 2\r\n\r\n"), ParseOutcome::kBad);
  EXPECT_EQ(Outcome("GET /\r HTTP/1.1\r\n\r\n"), ParseOutcome::kBad);
  EXPECT_EQ(Outcome("GET / HTTP/1.1\r\r\n\r\n"), ParseOutcome::kBad);
  EXPECT_EQ(Outcome("GET / HTTP/1.1\r\nA: 1\r\r\n\r\n"), ParseOutcome::kBad);
}

TEST(ParseRequestHeadTest, RefusesObsoleteLineFolding) {
  Parsed parsed = Parse(Head("GET / HTTP/1.1", {"X-Long: first", " second"}));
  EXPECT_EQ(parsed.result.outcome, ParseOutcome::kBad);
  EXPECT_NE(parsed.result.error.find("folding"), std::string::npos) << parsed.result.error;
  EXPECT_EQ(Outcome(Head("GET / HTTP/1.1", {"X-Long: first", "\tsecond"})), ParseOutcome::kBad);
  // Whitespace between the request line and the first field (RFC 9112 2.2).
  EXPECT_EQ(Outcome(Head("GET / HTTP/1.1", {" Host: x"})), ParseOutcome::kBad);
}

TEST(ParseRequestHeadTest, RefusesWhitespaceBeforeTheColon) {
  Parsed parsed = Parse(Head("GET / HTTP/1.1", {"X-Foo : bar"}));
  EXPECT_EQ(parsed.result.outcome, ParseOutcome::kBad);
  EXPECT_EQ(parsed.result.error, "header field 'X-Foo' has whitespace before the colon");
  EXPECT_EQ(Outcome(Head("GET / HTTP/1.1", {"X-Foo\t: bar"})), ParseOutcome::kBad);
  EXPECT_EQ(Outcome(Head("GET / HTTP/1.1", {"Content-Length : 5"})), ParseOutcome::kBad);
}

TEST(ParseRequestHeadTest, RefusesMalformedFieldNames) {
  EXPECT_EQ(Outcome(Head("GET / HTTP/1.1", {"NoColon"})), ParseOutcome::kBad);
  EXPECT_EQ(Outcome(Head("GET / HTTP/1.1", {": no name"})), ParseOutcome::kBad);
  EXPECT_EQ(Outcome(Head("GET / HTTP/1.1", {"X Foo: bar"})), ParseOutcome::kBad);
  EXPECT_EQ(Outcome(Head("GET / HTTP/1.1", {"X(Foo): bar"})), ParseOutcome::kBad);
  EXPECT_EQ(Outcome(Head("GET / HTTP/1.1", {"X\x01: bar"})), ParseOutcome::kBad);
  EXPECT_EQ(Outcome(Head("GET / HTTP/1.1", {"X-\xc3\xa9: bar"})), ParseOutcome::kBad);
  // The name is everything up to the first colon; later colons are in the value.
  Parsed parsed = Parse(Head("GET / HTTP/1.1", {"X-Url: http://a:80/"}));
  ASSERT_EQ(parsed.result.outcome, ParseOutcome::kDone);
  EXPECT_EQ(parsed.head.Field("X-Url"), "http://a:80/");
  EXPECT_EQ(Outcome(Head("GET / HTTP/1.1", {"!#$%&'*+-.^_`|~09azAZ: token chars"})),
            ParseOutcome::kDone);
}

TEST(ParseRequestHeadTest, RefusesControlCharactersInValues) {
  using namespace std::string_literals;
  for (std::string bad : {"\x01"s, "\x1f"s, "\x7f"s, "\0"s, "\x0b"s}) {
    std::string request = Head("GET / HTTP/1.1", {"X-Foo: a" + bad + "b"});
    Parsed parsed = Parse(request);
    EXPECT_EQ(parsed.result.outcome, ParseOutcome::kBad) << static_cast<int>(bad[0]);
    EXPECT_EQ(parsed.result.error, "header field 'X-Foo' has a control character");
  }
  EXPECT_EQ(Outcome(Head("GET / HTTP/1.1", {"X-Foo: a\tb"})), ParseOutcome::kDone);
}

TEST(ParseRequestHeadTest, AcceptsOriginFormAndAsteriskTargets) {
  EXPECT_EQ(Outcome(Head("OPTIONS * HTTP/1.1", {})), ParseOutcome::kDone);
  EXPECT_EQ(Parse(Head("OPTIONS * HTTP/1.1", {})).head.target, "*");
  EXPECT_EQ(Outcome(Head("GET /a/b?c=d&e#f HTTP/1.1", {})), ParseOutcome::kDone);
  EXPECT_EQ(Outcome(Head("GET /caf\xc3\xa9 HTTP/1.1", {})), ParseOutcome::kDone);
}

TEST(ParseRequestHeadTest, RefusesOtherTargets) {
  Parsed parsed = Parse(Head("GET /a\x01z HTTP/1.1", {}));
  EXPECT_EQ(parsed.result.outcome, ParseOutcome::kBad);
  EXPECT_EQ(parsed.result.error, "malformed request target");
  EXPECT_EQ(Outcome(Head("GET /a\x7fz HTTP/1.1", {})), ParseOutcome::kBad);
  EXPECT_EQ(Outcome(Head("GET /a\tz HTTP/1.1", {})), ParseOutcome::kBad);
  EXPECT_EQ(Outcome(std::string("GET /a\0z HTTP/1.1\r\n\r\n", 22)), ParseOutcome::kBad);
  EXPECT_EQ(Outcome(Head("GET index.html HTTP/1.1", {})), ParseOutcome::kBad);
  EXPECT_EQ(Outcome(Head("GET http://example.com/ HTTP/1.1", {})), ParseOutcome::kBad);
  EXPECT_EQ(Outcome(Head("CONNECT example.com:443 HTTP/1.1", {})), ParseOutcome::kBad);
  EXPECT_EQ(Outcome(Head("OPTIONS ** HTTP/1.1", {})), ParseOutcome::kBad);
}

TEST(ParseRequestHeadTest, RefusesMalformedRequestLines) {
  for (std::string_view line : {
           "GET / HTTP/1.1 ",   // trailing space
           "GET  / HTTP/1.1",   // two spaces
           "GET /  HTTP/1.1",   // two spaces
           " GET / HTTP/1.1",   // leading space
           "GET /",             // no version
           "GET / a HTTP/1.1",  // space in the target
           "GET\t/\tHTTP/1.1",  // tabs are not separators
           "GE(T / HTTP/1.1",   // method not a token
           "/ HTTP/1.1",        // no method
           "GET / http/1.1",    // the name is case-sensitive
           "GET / HTTP/1.10",   // one digit each
           "GET / HTTP/11",     //
           "GET / HTTP/1.x",    //
           "GET / HTTPS/1.1",   //
       }) {
    Parsed parsed = Parse(std::string(line) + "\r\nHost: x\r\n\r\n");
    EXPECT_EQ(parsed.result.outcome, ParseOutcome::kBad) << line;
    EXPECT_NE(parsed.result.error.find("malformed request"), std::string::npos) << line;
    // Refused as soon as the line is complete.
    EXPECT_EQ(Outcome(std::string(line) + "\r\n"), ParseOutcome::kBad) << line;
  }
  EXPECT_EQ(Parse(Head("GET  / HTTP/1.1", {})).result.error, "malformed request line");
  // Any token is a method; the router decides which ones it serves.
  EXPECT_EQ(Outcome(Head("M-SEARCH / HTTP/1.1", {})), ParseOutcome::kDone);
}

TEST(ParseRequestHeadTest, RefusesTooManyFields) {
  std::string request = "GET / HTTP/1.1\r\n";
  for (size_t i = 0; i < kMaxHeaderFields; ++i) request += "X-" + std::to_string(i) + ": v\r\n";
  Parsed parsed = Parse(request + "\r\n");
  ASSERT_EQ(parsed.result.outcome, ParseOutcome::kDone) << parsed.result.error;
  EXPECT_EQ(parsed.head.fields.size(), kMaxHeaderFields);

  parsed = Parse(request + "X-Last: v\r\n\r\n");
  EXPECT_EQ(parsed.result.outcome, ParseOutcome::kBad);
  EXPECT_EQ(parsed.result.error, "too many header fields (over 100)");
}

// ---- the head limit and incomplete heads ----

TEST(ParseRequestHeadTest, HeadExactlyAtTheLimitIsAccepted) {
  std::string request = Head("GET / HTTP/1.1", {"X-Pad: " + std::string(100, 'p')});
  EXPECT_EQ(Outcome(request, request.size()), ParseOutcome::kDone);
  // Bytes after the head (a body, the next request) do not count.
  EXPECT_EQ(Outcome(request + std::string(1000, 'b'), request.size()), ParseOutcome::kDone);
}

TEST(ParseRequestHeadTest, CompleteHeadOverTheLimitIsTooLarge) {
  std::string request = Head("GET / HTTP/1.1", {"X-Pad: " + std::string(100, 'p')});
  Parsed parsed = Parse(request, request.size() - 1);
  EXPECT_EQ(parsed.result.outcome, ParseOutcome::kHeadTooLarge);
  EXPECT_FALSE(parsed.result.error.empty());
  // Also when only the final LF is past the limit.
  EXPECT_EQ(Outcome(request, request.size() - 1), ParseOutcome::kHeadTooLarge);
  EXPECT_EQ(Outcome(request, 10), ParseOutcome::kHeadTooLarge);
}

TEST(ParseRequestHeadTest, IncompleteHeadOverTheLimitIsTooLarge) {
  std::string partial = "GET / HTTP/1.1\r\nX-Pad: " + std::string(200, 'p');
  EXPECT_EQ(Outcome(partial, partial.size()), ParseOutcome::kIncomplete);
  EXPECT_EQ(Outcome(partial, partial.size() - 1), ParseOutcome::kHeadTooLarge);
  // A request line that never ends.
  EXPECT_EQ(Outcome(std::string(kLimit + 1, 'A')), ParseOutcome::kHeadTooLarge);
  EXPECT_EQ(Outcome(std::string(kLimit, 'A')), ParseOutcome::kIncomplete);
  // Endless empty lines count against the limit too.
  std::string empty_lines;
  while (empty_lines.size() <= 64) empty_lines += "\r\n";
  EXPECT_EQ(Outcome(empty_lines, 64), ParseOutcome::kHeadTooLarge);
  EXPECT_EQ(Outcome(empty_lines, empty_lines.size()), ParseOutcome::kIncomplete);
}

TEST(ParseRequestHeadTest, EveryPrefixOfAValidRequestIsIncomplete) {
  std::string request = Head("\r\nPOST /v1/models/m:predict?x=1 HTTP/1.1",
                             {"Host: example.com", "Content-Length: 11", "Connection: close",
                              "X-Empty:", "Accept: application/json"});
  for (size_t length = 0; length < request.size(); ++length) {
    Parsed parsed = Parse(std::string_view(request).substr(0, length));
    EXPECT_EQ(parsed.result.outcome, ParseOutcome::kIncomplete) << "prefix of " << length;
    EXPECT_EQ(parsed.result.error, "");
  }
  Parsed parsed = Parse(request);
  ASSERT_EQ(parsed.result.outcome, ParseOutcome::kDone) << parsed.result.error;
  EXPECT_EQ(parsed.head.head_bytes, request.size());
}

TEST(ParseRequestHeadTest, ErrorsInCompleteLinesAreReportedBeforeTheHeadEnds) {
  EXPECT_EQ(Outcome("GET / HTTP/2.0\r\n"), ParseOutcome::kBadVersion);
  EXPECT_EQ(Outcome("GET / HTTP/1.1\r\nX-Foo : bar\r\n"), ParseOutcome::kBad);
  EXPECT_EQ(Outcome("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n"),
            ParseOutcome::kBad);
}

// ---- versions and persistence ----

TEST(ParseRequestHeadTest, Http10ClosesUnlessKeepAlive) {
  Parsed parsed = Parse(Head("GET / HTTP/1.0", {}));
  ASSERT_EQ(parsed.result.outcome, ParseOutcome::kDone);
  EXPECT_EQ(parsed.head.minor_version, 0);
  EXPECT_FALSE(parsed.head.keep_alive);

  parsed = Parse(Head("GET / HTTP/1.0", {"Connection: Keep-Alive"}));
  ASSERT_EQ(parsed.result.outcome, ParseOutcome::kDone);
  EXPECT_TRUE(parsed.head.keep_alive);

  parsed = Parse(Head("GET / HTTP/1.0", {"Connection: keep-alive, close"}));
  EXPECT_FALSE(parsed.head.keep_alive);
  parsed = Parse(Head("GET / HTTP/1.0", {"Connection: upgrade"}));
  EXPECT_FALSE(parsed.head.keep_alive);
  parsed = Parse(Head("GET / HTTP/1.0", {"Connection: keep-alives"}));
  EXPECT_FALSE(parsed.head.keep_alive);
}

TEST(ParseRequestHeadTest, Http11KeepsAliveUnlessClose) {
  EXPECT_TRUE(Parse(Head("GET / HTTP/1.1", {})).head.keep_alive);
  EXPECT_TRUE(Parse(Head("GET / HTTP/1.1", {"Connection: keep-alive"})).head.keep_alive);
  EXPECT_TRUE(Parse(Head("GET / HTTP/1.1", {"Connection: closed"})).head.keep_alive);
  EXPECT_FALSE(Parse(Head("GET / HTTP/1.1", {"Connection: close"})).head.keep_alive);
  EXPECT_FALSE(Parse(Head("GET / HTTP/1.1", {"Connection: CLOSE"})).head.keep_alive);
  EXPECT_FALSE(Parse(Head("GET / HTTP/1.1", {"Connection: Upgrade ,\t close , "})).head.keep_alive);
  EXPECT_FALSE(Parse(Head("GET / HTTP/1.1", {"Connection: ,,close"})).head.keep_alive);
  // The options of every Connection field count.
  EXPECT_FALSE(
      Parse(Head("GET / HTTP/1.1", {"Connection: upgrade", "connection: close"})).head.keep_alive);
}

TEST(ParseRequestHeadTest, ExpectContinue) {
  EXPECT_TRUE(Parse(Head("PUT / HTTP/1.1", {"Expect: 100-continue"})).head.expect_continue);
  EXPECT_TRUE(Parse(Head("PUT / HTTP/1.1", {"expect:  100-Continue "})).head.expect_continue);
  EXPECT_FALSE(Parse(Head("PUT / HTTP/1.1", {"Expect: 100-continue-ish"})).head.expect_continue);
  EXPECT_FALSE(Parse(Head("PUT / HTTP/1.1", {})).head.expect_continue);
  // Ignored in an HTTP/1.0 request (RFC 9110 10.1.1).
  EXPECT_FALSE(Parse(Head("PUT / HTTP/1.0", {"Expect: 100-continue"})).head.expect_continue);
}

TEST(ParseRequestHeadTest, OtherVersionsAreBadVersion) {
  for (std::string_view version : {"HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/3.0", "HTTP/9.9"}) {
    Parsed parsed = Parse(Head("GET / " + std::string(version), {}));
    EXPECT_EQ(parsed.result.outcome, ParseOutcome::kBadVersion) << version;
    EXPECT_NE(parsed.result.error.find(version), std::string::npos) << parsed.result.error;
  }
  // The HTTP/2 connection preface.
  EXPECT_EQ(Outcome("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), ParseOutcome::kBadVersion);
}

// ---- body framing ----

TEST(ParseRequestHeadTest, RefusesContentLengthWithTransferEncoding) {
  Parsed parsed =
      Parse(Head("POST / HTTP/1.1", {"Content-Length: 5", "Transfer-Encoding: chunked"}));
  EXPECT_EQ(parsed.result.outcome, ParseOutcome::kBad);
  EXPECT_EQ(parsed.result.error, "both Content-Length and Transfer-Encoding");
  parsed = Parse(Head("POST / HTTP/1.1", {"Transfer-Encoding: chunked", "Content-Length: 0"}));
  EXPECT_EQ(parsed.result.outcome, ParseOutcome::kBad);
  EXPECT_EQ(parsed.result.error, "both Content-Length and Transfer-Encoding");
}

TEST(ParseRequestHeadTest, RepeatedContentLengthMustAgree) {
  Parsed parsed = Parse(Head("POST / HTTP/1.1", {"Content-Length: 5", "content-length: 5"}));
  ASSERT_EQ(parsed.result.outcome, ParseOutcome::kDone) << parsed.result.error;
  EXPECT_EQ(parsed.head.content_length, 5u);

  parsed = Parse(Head("POST / HTTP/1.1", {"Content-Length: 5", "Content-Length: 6"}));
  EXPECT_EQ(parsed.result.outcome, ParseOutcome::kBad);
  EXPECT_EQ(parsed.result.error, "conflicting Content-Length values");
}

TEST(ParseRequestHeadTest, ContentLengthIsDecimalDigitsOnly) {
  for (std::string_view value : {"abc", "-1", "+5", "5, 5", "5,5", "0x10", "5 5", "1e3", "",
                                 "\xd9\xa5" /* ARABIC-INDIC DIGIT FIVE */}) {
    Parsed parsed = Parse(Head("POST / HTTP/1.1", {"Content-Length: " + std::string(value)}));
    EXPECT_EQ(parsed.result.outcome, ParseOutcome::kBad) << value;
    EXPECT_EQ(parsed.result.error, "Content-Length is not a number") << value;
  }
  Parsed parsed = Parse(Head("POST / HTTP/1.1", {"Content-Length:\t 007 "}));
  ASSERT_EQ(parsed.result.outcome, ParseOutcome::kDone);
  EXPECT_EQ(parsed.head.content_length, 7u);
}

TEST(ParseRequestHeadTest, ContentLengthHasAtMost19Digits) {
  Parsed parsed = Parse(Head("POST / HTTP/1.1", {"Content-Length: 9999999999999999999"}));
  ASSERT_EQ(parsed.result.outcome, ParseOutcome::kDone) << parsed.result.error;
  EXPECT_EQ(parsed.head.content_length, 9999999999999999999u);

  // 20 digits: 2^64 and beyond would overflow.
  for (std::string_view value :
       {"18446744073709551616", "10000000000000000000", "00000000000000000005"}) {
    parsed = Parse(Head("POST / HTTP/1.1", {"Content-Length: " + std::string(value)}));
    EXPECT_EQ(parsed.result.outcome, ParseOutcome::kBad) << value;
    EXPECT_EQ(parsed.result.error, "Content-Length is too large");
  }
}

TEST(ParseRequestHeadTest, TransferEncodingChunkedInAnyCase) {
  for (std::string_view value : {"chunked", "Chunked", "CHUNKED", "  chunked\t"}) {
    Parsed parsed = Parse(Head("POST / HTTP/1.1", {"Transfer-Encoding: " + std::string(value)}));
    ASSERT_EQ(parsed.result.outcome, ParseOutcome::kDone) << value;
    EXPECT_TRUE(parsed.head.chunked);
    EXPECT_TRUE(parsed.head.HasBody());
    EXPECT_FALSE(parsed.head.content_length.has_value());
  }
}

TEST(ParseRequestHeadTest, RefusesOtherTransferEncodings) {
  for (std::string_view value :
       {"gzip", "gzip, chunked", "chunked, gzip", "identity", "chunked, chunked", "chunkedx", ""}) {
    Parsed parsed = Parse(Head("POST / HTTP/1.1", {"Transfer-Encoding: " + std::string(value)}));
    EXPECT_EQ(parsed.result.outcome, ParseOutcome::kBad) << value;
    EXPECT_EQ(parsed.result.error, "unsupported Transfer-Encoding '" + std::string(value) + "'");
  }
  // Two fields make "chunked, chunked".
  Parsed parsed =
      Parse(Head("POST / HTTP/1.1", {"Transfer-Encoding: chunked", "Transfer-Encoding: chunked"}));
  EXPECT_EQ(parsed.result.outcome, ParseOutcome::kBad);
  EXPECT_FALSE(parsed.result.error.empty());
}

TEST(ParseRequestHeadTest, RefusesTransferEncodingInHttp10) {
  Parsed parsed = Parse(Head("POST / HTTP/1.0", {"Transfer-Encoding: chunked"}));
  EXPECT_EQ(parsed.result.outcome, ParseOutcome::kBad);
  EXPECT_EQ(parsed.result.error, "Transfer-Encoding in an HTTP/1.0 request");
}

TEST(ParseRequestHeadTest, PipelinedRequestsEndExactlyAtTheFirstHead) {
  std::string first = Head("POST /a HTTP/1.1", {"Host: x", "Content-Length: 3"});
  std::string second = Head("GET /b HTTP/1.1", {"Host: x"});
  std::string third = Head("GET /c HTTP/1.1", {});
  std::string buffer = first + "abc" + second + third;

  Parsed parsed = Parse(buffer);
  ASSERT_EQ(parsed.result.outcome, ParseOutcome::kDone);
  EXPECT_EQ(parsed.head.target, "/a");
  ASSERT_EQ(parsed.head.head_bytes, first.size());
  EXPECT_EQ(parsed.head.fields.size(), 2u);

  std::string_view rest = std::string_view(buffer).substr(parsed.head.head_bytes + 3);
  parsed = Parse(rest);
  ASSERT_EQ(parsed.result.outcome, ParseOutcome::kDone);
  EXPECT_EQ(parsed.head.target, "/b");
  ASSERT_EQ(parsed.head.head_bytes, second.size());

  parsed = Parse(rest.substr(parsed.head.head_bytes));
  ASSERT_EQ(parsed.result.outcome, ParseOutcome::kDone);
  EXPECT_EQ(parsed.head.target, "/c");
  EXPECT_EQ(parsed.head.head_bytes, third.size());
}

// ---- chunked bodies ----

struct Decoded {
  ChunkedDecoder::State state = ChunkedDecoder::State::kMore;
  std::string body;
  size_t consumed = 0;  // in total
  std::string error;
};

Decoded DecodeAll(std::string_view input, size_t line_limit = 8192) {
  ChunkedDecoder decoder(line_limit);
  Decoded decoded;
  decoded.state = decoder.Feed(input, decoded.body, decoded.consumed);
  decoded.error = decoder.error();
  return decoded;
}

// Feeds `input` in pieces of `piece` bytes, stopping at kDone or kBad.
Decoded DecodeInPieces(std::string_view input, size_t piece, size_t line_limit = 8192) {
  ChunkedDecoder decoder(line_limit);
  Decoded decoded;
  for (size_t pos = 0; pos < input.size(); pos += piece) {
    size_t consumed = 0;
    std::string_view part = input.substr(pos, piece);
    decoded.state = decoder.Feed(part, decoded.body, consumed);
    decoded.consumed += consumed;
    if (decoded.state != ChunkedDecoder::State::kMore) break;
    EXPECT_EQ(consumed, part.size());
  }
  decoded.error = decoder.error();
  return decoded;
}

constexpr std::string_view kChunked = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";

TEST(ChunkedDecoderTest, DecodesAWholeBody) {
  Decoded decoded = DecodeAll(kChunked);
  EXPECT_EQ(decoded.state, ChunkedDecoder::State::kDone) << decoded.error;
  EXPECT_EQ(decoded.body, "hello world");
  EXPECT_EQ(decoded.consumed, kChunked.size());
  EXPECT_EQ(decoded.error, "");
}

TEST(ChunkedDecoderTest, EmptyBody) {
  Decoded decoded = DecodeAll("0\r\n\r\n");
  EXPECT_EQ(decoded.state, ChunkedDecoder::State::kDone);
  EXPECT_EQ(decoded.body, "");
  EXPECT_EQ(decoded.consumed, 5u);
}

TEST(ChunkedDecoderTest, OneByteAtATimeGivesTheSameResult) {
  Decoded decoded = DecodeInPieces(kChunked, 1);
  EXPECT_EQ(decoded.state, ChunkedDecoder::State::kDone) << decoded.error;
  EXPECT_EQ(decoded.body, "hello world");
  EXPECT_EQ(decoded.consumed, kChunked.size());
}

TEST(ChunkedDecoderTest, AnySplitInTwoGivesTheSameResult) {
  std::string input = "A;ext=1\r\n0123456789\r\n1\r\n!\r\n0\r\nX-Sum: 1\r\n\r\n";
  for (size_t split = 0; split <= input.size(); ++split) {
    ChunkedDecoder decoder;
    std::string body;
    size_t consumed = 0;
    auto state = decoder.Feed(std::string_view(input).substr(0, split), body, consumed);
    ASSERT_EQ(consumed, split);
    if (split < input.size()) {
      ASSERT_EQ(state, ChunkedDecoder::State::kMore) << split;
      state = decoder.Feed(std::string_view(input).substr(split), body, consumed);
      EXPECT_EQ(consumed, input.size() - split);
    }
    EXPECT_EQ(state, ChunkedDecoder::State::kDone) << split << ": " << decoder.error();
    EXPECT_EQ(body, "0123456789!") << split;
  }
}

TEST(ChunkedDecoderTest, HexSizesInEitherCase) {
  Decoded decoded = DecodeAll("a\r\n0123456789\r\nB\r\nabcdefghijk\r\n0\r\n\r\n");
  EXPECT_EQ(decoded.state, ChunkedDecoder::State::kDone) << decoded.error;
  EXPECT_EQ(decoded.body, "0123456789abcdefghijk");
  // 15 digits, leading zeros included, are fine.
  decoded = DecodeAll("000000000000003\r\nabc\r\n000000000000000\r\n\r\n");
  EXPECT_EQ(decoded.state, ChunkedDecoder::State::kDone) << decoded.error;
  EXPECT_EQ(decoded.body, "abc");
}

TEST(ChunkedDecoderTest, IgnoresExtensions) {
  std::string input = "5;name=value\r\nhello\r\n6;a;b=\"q;x\"\r\n world\r\n0;last\r\n\r\n";
  Decoded decoded = DecodeAll(input);
  EXPECT_EQ(decoded.state, ChunkedDecoder::State::kDone) << decoded.error;
  EXPECT_EQ(decoded.body, "hello world");
  EXPECT_EQ(decoded.consumed, input.size());
  EXPECT_EQ(DecodeInPieces(input, 1).body, "hello world");
}

TEST(ChunkedDecoderTest, RefusesControlCharactersInExtensions) {
  EXPECT_EQ(DecodeAll("5;a\rb\r\nhello\r\n0\r\n\r\n").state, ChunkedDecoder::State::kBad);
  EXPECT_EQ(DecodeAll(std::string("5;a\0b\r\nhello\r\n0\r\n\r\n", 20)).state,
            ChunkedDecoder::State::kBad);
  // A bare LF in an extension ends the line without a CR.
  EXPECT_EQ(DecodeAll("5;a\nhello\r\n0\r\n\r\n").state, ChunkedDecoder::State::kBad);
}

TEST(ChunkedDecoderTest, SkipsTrailers) {
  std::string input = "3\r\nabc\r\n0\r\nX-Checksum: 1234\r\nX-Other:\r\n\r\n";
  Decoded decoded = DecodeAll(input);
  EXPECT_EQ(decoded.state, ChunkedDecoder::State::kDone) << decoded.error;
  EXPECT_EQ(decoded.body, "abc");
  EXPECT_EQ(decoded.consumed, input.size());
  decoded = DecodeInPieces(input, 1);
  EXPECT_EQ(decoded.state, ChunkedDecoder::State::kDone) << decoded.error;
  EXPECT_EQ(decoded.body, "abc");
}

TEST(ChunkedDecoderTest, RefusesMalformedTrailers) {
  for (std::string_view trailer : {"NoColon", "X-Foo : 1", " folded", "X-Foo: a\x01", ": x"}) {
    Decoded decoded = DecodeAll("0\r\n" + std::string(trailer) + "\r\n\r\n");
    EXPECT_EQ(decoded.state, ChunkedDecoder::State::kBad) << trailer;
    EXPECT_NE(decoded.error.find("trailer"), std::string::npos) << decoded.error;
  }
  EXPECT_EQ(DecodeAll("0\r\nX-Foo: 1\n\r\n").state, ChunkedDecoder::State::kBad);
  EXPECT_EQ(DecodeAll("0\r\n\n").state, ChunkedDecoder::State::kBad);
}

TEST(ChunkedDecoderTest, RefusesTooManyTrailers) {
  std::string input = "0\r\n";
  for (size_t i = 0; i < kMaxHeaderFields; ++i) input += "X-T: 1\r\n";
  EXPECT_EQ(DecodeAll(input + "\r\n").state, ChunkedDecoder::State::kDone);
  Decoded decoded = DecodeAll(input + "X-T: 1\r\n\r\n");
  EXPECT_EQ(decoded.state, ChunkedDecoder::State::kBad);
  EXPECT_EQ(decoded.error, "too many trailer fields (over 100)");
}

TEST(ChunkedDecoderTest, LeavesTheRestOfTheInputUnconsumed) {
  std::string next = "GET /next HTTP/1.1\r\n\r\n";
  std::string input = std::string(kChunked) + next;
  ChunkedDecoder decoder;
  std::string body;
  size_t consumed = 0;
  EXPECT_EQ(decoder.Feed(input, body, consumed), ChunkedDecoder::State::kDone);
  EXPECT_EQ(body, "hello world");
  EXPECT_EQ(consumed, kChunked.size());
  EXPECT_LT(consumed, input.size());
  EXPECT_EQ(input.substr(consumed), next);
  // Once done, it takes nothing more.
  EXPECT_EQ(decoder.Feed(next, body, consumed), ChunkedDecoder::State::kDone);
  EXPECT_EQ(consumed, 0u);
  EXPECT_EQ(body, "hello world");

  // Also when the end arrives in the middle of a later Feed.
  ChunkedDecoder split;
  body.clear();
  EXPECT_EQ(split.Feed("5\r\nhello\r\n0\r\n", body, consumed), ChunkedDecoder::State::kMore);
  EXPECT_EQ(split.Feed("\r\nGET", body, consumed), ChunkedDecoder::State::kDone);
  EXPECT_EQ(consumed, 2u);
}

TEST(ChunkedDecoderTest, RefusesBadSizes) {
  for (std::string_view size_line : {
           "",                  // empty
           "g",                 // not hex
           "-5",                //
           "+5",                //
           " 5",                // whitespace before
           "5 ",                // whitespace after
           "5 ;ext",            // whitespace before the extension
           "0x5",               //
           "5z",                //
           "1000000000000000",  // 16 digits
           "0000000000000005",  // 16 digits, even with leading zeros
       }) {
    Decoded decoded = DecodeAll(std::string(size_line) + "\r\nhello\r\n0\r\n\r\n");
    EXPECT_EQ(decoded.state, ChunkedDecoder::State::kBad) << size_line;
    EXPECT_FALSE(decoded.error.empty()) << size_line;
  }
  EXPECT_EQ(DecodeAll("\r\n").error, "empty chunk size");
  EXPECT_EQ(DecodeAll("1000000000000000\r\n").error, "chunk size has more than 15 hex digits");
  EXPECT_EQ(DecodeAll("5\nhello\r\n0\r\n\r\n").state, ChunkedDecoder::State::kBad);  // bare LF
}

TEST(ChunkedDecoderTest, RefusesMissingCrlfAfterData) {
  for (std::string_view input :
       {"5\r\nhelloX\r\n0\r\n\r\n", "5\r\nhello\rX0\r\n\r\n", "5\r\nhello\n0\r\n\r\n",
        "5\r\nhello0\r\n\r\n", "5\r\nhello world\r\n0\r\n\r\n"}) {
    Decoded decoded = DecodeAll(input);
    EXPECT_EQ(decoded.state, ChunkedDecoder::State::kBad) << input;
    EXPECT_EQ(decoded.error, "missing CRLF after chunk data") << input;
    // The wrong byte is refused when it arrives.
    decoded = DecodeInPieces(input, 1);
    EXPECT_EQ(decoded.state, ChunkedDecoder::State::kBad) << input;
  }
}

TEST(ChunkedDecoderTest, StaysBadAfterAnError) {
  ChunkedDecoder decoder;
  std::string body;
  size_t consumed = 0;
  EXPECT_EQ(decoder.Feed("z\r\n", body, consumed), ChunkedDecoder::State::kBad);
  std::string error = decoder.error();
  EXPECT_FALSE(error.empty());
  EXPECT_EQ(decoder.Feed("0\r\n\r\n", body, consumed), ChunkedDecoder::State::kBad);
  EXPECT_EQ(consumed, 0u);
  EXPECT_EQ(decoder.error(), error);
}

TEST(ChunkedDecoderTest, RefusesOverLongLines) {
  constexpr size_t kLineLimit = 16;
  // A size line of exactly the limit (CRLF not counted) is fine.
  std::string at_limit = "5;" + std::string(kLineLimit - 2, 'e') + "\r\nhello\r\n0\r\n\r\n";
  EXPECT_EQ(DecodeAll(at_limit, kLineLimit).state, ChunkedDecoder::State::kDone);
  EXPECT_EQ(DecodeInPieces(at_limit, 1, kLineLimit).state, ChunkedDecoder::State::kDone);

  std::string over = "5;" + std::string(kLineLimit - 1, 'e') + "\r\nhello\r\n0\r\n\r\n";
  Decoded decoded = DecodeAll(over, kLineLimit);
  EXPECT_EQ(decoded.state, ChunkedDecoder::State::kBad);
  EXPECT_EQ(decoded.error, "chunk size line longer than 16 bytes");
  EXPECT_EQ(DecodeInPieces(over, 1, kLineLimit).state, ChunkedDecoder::State::kBad);
  EXPECT_EQ(DecodeInPieces(over, 5, kLineLimit).state, ChunkedDecoder::State::kBad);

  // A line that never ends is refused without waiting for its end.
  decoded = DecodeInPieces("5;" + std::string(1000, 'e'), 1, kLineLimit);
  EXPECT_EQ(decoded.state, ChunkedDecoder::State::kBad);
  EXPECT_LE(decoded.consumed, kLineLimit + 2);

  std::string trailer = "0\r\nX-T: " + std::string(kLineLimit, 't') + "\r\n\r\n";
  decoded = DecodeAll(trailer, kLineLimit);
  EXPECT_EQ(decoded.state, ChunkedDecoder::State::kBad);
  EXPECT_EQ(decoded.error, "trailer line longer than 16 bytes");
  EXPECT_EQ(DecodeInPieces(trailer, 1, kLineLimit).state, ChunkedDecoder::State::kBad);
}

TEST(ChunkedDecoderTest, LargeChunkArrivesAcrossFeeds) {
  std::string data(100000, 'x');
  data[99999] = 'y';
  std::string input = "186a0\r\n" + data + "\r\n0\r\n\r\n";
  Decoded decoded = DecodeInPieces(input, 4096);
  EXPECT_EQ(decoded.state, ChunkedDecoder::State::kDone) << decoded.error;
  EXPECT_EQ(decoded.body, data);
  EXPECT_EQ(decoded.consumed, input.size());
}

}  // namespace
}  // namespace orrery
