// HTTP/1.1 request framing for the server's transport (RFC 9112): the
// request line and header fields of one request, and the chunked transfer
// coding of a body. Strict on purpose: anything that could make two parsers
// disagree about where a request ends (request smuggling) is an error.
//
// Rules (each one tested in http_parser_test.cc):
// - lines end in CRLF; a bare LF or CR is an error; empty lines before the
//   request line are skipped (RFC 9112 2.2);
// - request line: METHOD SP TARGET SP HTTP/1.0|HTTP/1.1; the method is a
//   token; the target is origin-form (starts with '/') or "*", with no
//   control characters, space or DEL;
// - header field: token ':' OWS value OWS; no whitespace before the colon,
//   no obsolete line folding, no control characters other than HTAB in the
//   value; at most kMaxHeaderFields fields;
// - a field whose value is one thing, not a list (Host, Authorization,
//   Content-Type, Content-Encoding, Inference-Header-Content-Length,
//   X-Orrery-Sha256), may not be repeated: which of two would count differs
//   between parsers and proxies, so the request is refused, not "the first
//   one wins" (RFC 9112 3.2 requires it for Host);
// - Content-Length: decimal digits only, at most 19; repeated only with the
//   same value; Transfer-Encoding: only "chunked" (any case); both present
//   is an error; HTTP/1.0 with Transfer-Encoding is an error;
// - the head is at most `header_limit` bytes (request line + fields + the
//   final CRLF) or the parse fails with kHeadTooLarge.
//
// Thread-safety: values and free functions; a ChunkedDecoder is used by one
// thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orrery {

inline constexpr size_t kMaxHeaderFields = 100;

// One parsed request head. The string_views point into the buffer given to
// ParseRequestHead and are valid while it is unchanged.
struct RequestHead {
  std::string_view method;
  std::string_view target;  // as sent, still percent-encoded
  int minor_version = 1;    // HTTP/1.<minor_version>
  // In arrival order, names as sent (compare with EqualsIgnoreCase).
  std::vector<std::pair<std::string_view, std::string_view>> fields;
  std::optional<uint64_t> content_length;
  bool chunked = false;          // Transfer-Encoding: chunked
  bool keep_alive = true;        // from the version and the Connection field
  bool expect_continue = false;  // Expect: 100-continue
  size_t head_bytes = 0;         // bytes consumed, the final CRLF included

  // The value of the first field named `name` (ASCII case-insensitive); empty if absent.
  std::string_view Field(std::string_view name) const;
  // True when the request has a body to read (Content-Length > 0 or chunked).
  bool HasBody() const { return chunked || content_length.value_or(0) > 0; }
};

enum class ParseOutcome {
  kDone,          // a complete head: `head` is filled
  kIncomplete,    // need more bytes (and the buffer is under the limit)
  kBad,           // malformed: answer 400 and close
  kHeadTooLarge,  // over header_limit: answer 431 and close
  kBadVersion,    // not HTTP/1.0 or 1.1: answer 505 and close
};

struct ParseResult {
  ParseOutcome outcome = ParseOutcome::kIncomplete;
  std::string error;  // for kBad/kHeadTooLarge/kBadVersion: what was wrong, for the client
};

// Parses the head at the start of `buffer` into `head` (cleared first).
ParseResult ParseRequestHead(std::string_view buffer, size_t header_limit, RequestHead& head);

bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// Incremental decoder of a chunked body: chunk sizes in hex (at most 15
// digits), chunk extensions ignored, trailer fields skipped. Feed it what
// arrived; it appends the body bytes it decoded to `out`.
class ChunkedDecoder {
 public:
  explicit ChunkedDecoder(size_t line_limit = 8192) : line_limit_(line_limit) {}

  enum class State { kMore, kDone, kBad };
  // Consumes a prefix of `input` (all of it unless the body ends inside it)
  // and sets `consumed`; after kDone the rest of `input` belongs to the next
  // request. kBad: error() says why. A size line, extension or trailer line
  // longer than line_limit is kBad.
  State Feed(std::string_view input, std::string& out, size_t& consumed);
  const std::string& error() const { return error_; }

 private:
  enum class Step { kSize, kData, kDataEnd, kTrailer, kDone };
  State Fail(std::string message);

  size_t line_limit_;
  Step step_ = Step::kSize;
  std::string line_;           // the partial line being read (size or trailer)
  uint64_t remaining_ = 0;     // bytes left in the current chunk
  size_t trailer_fields_ = 0;  // trailer lines so far (at most kMaxHeaderFields)
  std::string error_;
};

}  // namespace orrery
