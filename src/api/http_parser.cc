#include "api/http_parser.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace orrery {
namespace {

constexpr size_t kNpos = std::string_view::npos;
// 19 digits always fit in uint64_t (10^19 - 1 < 2^64 - 1).
constexpr size_t kMaxContentLengthDigits = 19;
// 15 hex digits always fit in uint64_t (2^60 - 1).
constexpr size_t kMaxChunkSizeDigits = 15;
// Names and values echoed in error messages are cut to this many bytes.
constexpr size_t kMaxEchoed = 64;

// tchar (RFC 9110 5.6.2).
constexpr std::array<bool, 256> MakeTokenTable() {
  std::array<bool, 256> table{};
  for (int c = '0'; c <= '9'; ++c) table[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) table[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) table[static_cast<unsigned char>(c)] = true;
  return table;
}
constexpr std::array<bool, 256> kTokenChar = MakeTokenTable();

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!kTokenChar[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

// CTL: 0x00-0x1F and DEL.
bool IsControl(char c) {
  auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

bool IsOws(char c) {
  return c == ' ' || c == '\t';
}

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

char AsciiLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && IsOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back())) s.remove_suffix(1);
  return s;
}

// field-value: VCHAR, obs-text, SP and HTAB; any other CTL (CR and NUL
// included) is refused (RFC 9110 5.5).
bool IsFieldValue(std::string_view value) {
  // No early exit: the loop vectorizes, and values are short.
  bool bad = false;
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    bad |= (u < 0x20 && u != '\t') | (u == 0x7f);
  }
  return !bad;
}

// `text` in quotes for an error message, cut to kMaxEchoed bytes. Callers only
// echo tokens or checked field values, so no control characters get through.
std::string Quoted(std::string_view text) {
  std::string out = "'";
  out += text.substr(0, kMaxEchoed);
  if (text.size() > kMaxEchoed) out += "...";
  out += "'";
  return out;
}

ParseResult Bad(std::string message) {
  return {ParseOutcome::kBad, std::move(message)};
}

// ---- field lines, shared by the head and the chunked trailer ----

enum class FieldError { kNone, kFolded, kNoColon, kSpaceBeforeColon, kBadName, kBadValue };

// field-line = field-name ":" OWS field-value OWS (RFC 9112 5). On kNone,
// `name` and `value` (OWS trimmed) point into `line`, which is not empty.
FieldError SplitFieldLine(std::string_view line, std::string_view& name, std::string_view& value) {
  // Leading whitespace is obs-fold, or (on the first field) a field that some
  // parsers would attach to the request line: refused (RFC 9112 2.2, 5.2).
  if (IsOws(line.front())) return FieldError::kFolded;
  size_t colon = line.find(':');
  if (colon == kNpos) return FieldError::kNoColon;
  name = line.substr(0, colon);
  // "Host : x" is read as "Host" by some parsers and not by others; a server
  // must refuse it (RFC 9112 5.1).
  if (!name.empty() && IsOws(name.back())) {
    name = TrimOws(name);
    return IsToken(name) ? FieldError::kSpaceBeforeColon : FieldError::kBadName;
  }
  if (!IsToken(name)) return FieldError::kBadName;
  value = TrimOws(line.substr(colon + 1));
  return IsFieldValue(value) ? FieldError::kNone : FieldError::kBadValue;
}

// `kind` is "header" or "trailer".
std::string FieldErrorMessage(FieldError error, std::string_view name, std::string_view kind) {
  std::string field = std::string(kind) + " field";
  switch (error) {
    case FieldError::kFolded: return field + " line starts with whitespace (obsolete line folding)";
    case FieldError::kNoColon: return field + " line has no colon";
    case FieldError::kSpaceBeforeColon:
      return field + " " + Quoted(name) + " has whitespace before the colon";
    case FieldError::kBadName: return "malformed " + field + " name";
    case FieldError::kBadValue: return field + " " + Quoted(name) + " has a control character";
    case FieldError::kNone: break;
  }
  return {};
}

// ---- the request head ----

// Fields whose value is one thing, not a comma-separated list: a repeat is
// ambiguous (docs in http_parser.h).
bool IsSingleValued(std::string_view name) {
  for (std::string_view single : {"Host", "Authorization", "Content-Type", "Content-Encoding",
                                  "Inference-Header-Content-Length", "X-Orrery-Sha256"}) {
    if (EqualsIgnoreCase(name, single)) return true;
  }
  return false;
}

enum class LineStatus { kLine, kNoLine, kBareLf, kBareCr };

// The CRLF-terminated line at `pos` of `text`: `line` without the CRLF, and
// `next` just after it. A lone CR or LF is refused, since parsers that accept
// it as a line end disagree with those that do not (RFC 9112 2.2).
LineStatus NextLine(std::string_view text, size_t pos, std::string_view& line, size_t& next) {
  if (pos == text.size()) return LineStatus::kNoLine;
  const void* lf = std::memchr(text.data() + pos, '\n', text.size() - pos);
  if (lf == nullptr) return LineStatus::kNoLine;
  size_t end = static_cast<const char*>(lf) - text.data();
  if (end == pos || text[end - 1] != '\r') return LineStatus::kBareLf;
  line = text.substr(pos, end - 1 - pos);
  if (std::memchr(line.data(), '\r', line.size()) != nullptr) return LineStatus::kBareCr;
  next = end + 1;
  return LineStatus::kLine;
}

// origin-form ("/path?query") or "*"; obs-text is let through, the router
// decodes the path.
bool IsValidTarget(std::string_view target) {
  if (target == "*") return true;
  if (target.empty() || target.front() != '/') return false;
  for (char c : target) {
    if (IsControl(c) || c == ' ') return false;
  }
  return true;
}

// HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 2.3).
bool IsVersionSyntax(std::string_view version) {
  return version.size() == 8 && version.substr(0, 5) == "HTTP/" && IsDigit(version[5]) &&
         version[6] == '.' && IsDigit(version[7]);
}

class HeadParser {
 public:
  HeadParser(std::string_view buffer, size_t limit, RequestHead& head)
      : buffer_(buffer), limit_(limit), head_(head) {}

  ParseResult Run();

 private:
  // Reads the next line into `line`; anything but kLine ends the parse with `result`.
  bool ReadLine(std::string_view& line, ParseResult& result);
  ParseResult RequestLine(std::string_view line);
  ParseResult FieldLine(std::string_view line);
  ParseResult FramingField(std::string_view name, std::string_view value);
  ParseResult ContentLength(std::string_view value);
  ParseResult TransferEncoding(std::string_view value);
  void Connection(std::string_view value);
  ParseResult Finish();

  std::string_view buffer_;
  // The first `limit_` bytes of the buffer: a head that fits the limit ends
  // inside them, so nothing past them is scanned.
  std::string_view window_;
  size_t limit_;
  RequestHead& head_;
  size_t pos_ = 0;
  bool close_ = false;       // Connection: close
  bool keep_alive_ = false;  // Connection: keep-alive
};

ParseResult HeadParser::Run() {
  window_ = buffer_.substr(0, std::min(buffer_.size(), limit_));
  // Empty lines before the request line are ignored (RFC 9112 2.2); they
  // still count as consumed bytes, and against the limit.
  while (window_.substr(pos_, 2) == "\r\n") pos_ += 2;

  ParseResult result;
  std::string_view line;
  if (!ReadLine(line, result)) return result;
  result = RequestLine(line);
  if (result.outcome != ParseOutcome::kDone) return result;
  while (true) {
    if (!ReadLine(line, result)) return result;
    if (line.empty()) return Finish();
    result = FieldLine(line);
    if (result.outcome != ParseOutcome::kDone) return result;
  }
}

bool HeadParser::ReadLine(std::string_view& line, ParseResult& result) {
  switch (NextLine(window_, pos_, line, pos_)) {
    case LineStatus::kLine: return true;
    case LineStatus::kNoLine:
      if (buffer_.size() > limit_) {
        result = {ParseOutcome::kHeadTooLarge,
                  "request head larger than " + std::to_string(limit_) + " bytes"};
      } else {
        result = {ParseOutcome::kIncomplete, {}};
      }
      return false;
    case LineStatus::kBareLf: result = Bad("line ends in a bare LF, not CRLF"); return false;
    case LineStatus::kBareCr: result = Bad("bare CR in the request head"); return false;
  }
  return false;
}

// request-line = method SP request-target SP HTTP-version, one space each
// (RFC 9112 3).
ParseResult HeadParser::RequestLine(std::string_view line) {
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == kNpos ? kNpos : line.find(' ', sp1 + 1);
  if (sp2 == kNpos) return Bad("malformed request line");
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method) || target.empty()) return Bad("malformed request line");
  if (!IsValidTarget(target)) return Bad("malformed request target");
  if (!IsVersionSyntax(version)) return Bad("malformed request line");
  if (version[5] != '1' || (version[7] != '0' && version[7] != '1')) {
    return {ParseOutcome::kBadVersion, "unsupported HTTP version " + Quoted(version)};
  }
  head_.method = method;
  head_.target = target;
  head_.minor_version = version[7] - '0';
  return {ParseOutcome::kDone, {}};
}

ParseResult HeadParser::FieldLine(std::string_view line) {
  std::string_view name;
  std::string_view value;
  FieldError error = SplitFieldLine(line, name, value);
  if (error != FieldError::kNone) return Bad(FieldErrorMessage(error, name, "header"));
  if (head_.fields.size() == kMaxHeaderFields) {
    return Bad("too many header fields (over " + std::to_string(kMaxHeaderFields) + ")");
  }
  if (IsSingleValued(name) &&
      std::any_of(head_.fields.begin(), head_.fields.end(),
                  [&](const auto& field) { return EqualsIgnoreCase(field.first, name); })) {
    return Bad("repeated header field " + Quoted(name) + ": it may be sent once");
  }
  head_.fields.emplace_back(name, value);
  return FramingField(name, value);
}

// The fields that decide where the request ends and what follows it.
ParseResult HeadParser::FramingField(std::string_view name, std::string_view value) {
  ParseResult result{ParseOutcome::kDone, {}};
  if (EqualsIgnoreCase(name, "Content-Length")) {
    result = ContentLength(value);
  } else if (EqualsIgnoreCase(name, "Transfer-Encoding")) {
    result = TransferEncoding(value);
  } else if (EqualsIgnoreCase(name, "Connection")) {
    Connection(value);
  } else if (EqualsIgnoreCase(name, "Expect")) {
    // A 100-continue expectation in an HTTP/1.0 request is ignored (RFC 9110 10.1.1).
    if (head_.minor_version == 1 && EqualsIgnoreCase(value, "100-continue")) {
      head_.expect_continue = true;
    }
  }
  // Either may be a smuggler's decoy for the other: refused (RFC 9112 6.3).
  if (result.outcome == ParseOutcome::kDone && head_.chunked && head_.content_length) {
    return Bad("both Content-Length and Transfer-Encoding");
  }
  return result;
}

// Content-Length = 1*DIGIT (RFC 9112 6.2); no sign, no list ("5, 5"). A repeat
// must carry the same value (RFC 9112 6.3).
ParseResult HeadParser::ContentLength(std::string_view value) {
  if (value.empty() || !std::all_of(value.begin(), value.end(), IsDigit)) {
    return Bad("Content-Length is not a number");
  }
  if (value.size() > kMaxContentLengthDigits) return Bad("Content-Length is too large");
  uint64_t length = 0;
  for (char c : value) length = length * 10 + static_cast<uint64_t>(c - '0');
  if (head_.content_length && *head_.content_length != length) {
    return Bad("conflicting Content-Length values");
  }
  head_.content_length = length;
  return {ParseOutcome::kDone, {}};
}

// Only "chunked" alone: with any other coding the body's end depends on
// codings this server does not decode (RFC 9112 6.1).
ParseResult HeadParser::TransferEncoding(std::string_view value) {
  // HTTP/1.0 has no Transfer-Encoding; a 1.0 intermediary would frame the
  // body differently (RFC 9112 6.1).
  if (head_.minor_version == 0) return Bad("Transfer-Encoding in an HTTP/1.0 request");
  // A second field would make "chunked, chunked": chunked applied twice.
  if (head_.chunked) return Bad("repeated Transfer-Encoding field");
  if (!EqualsIgnoreCase(value, "chunked")) {
    return Bad("unsupported Transfer-Encoding " + Quoted(value));
  }
  head_.chunked = true;
  return {ParseOutcome::kDone, {}};
}

// Connection = #connection-option (RFC 9110 7.6.1); only "close" and
// "keep-alive" matter, other options and empty list elements are skipped.
void HeadParser::Connection(std::string_view value) {
  while (true) {
    size_t comma = value.find(',');
    std::string_view option = TrimOws(value.substr(0, comma));
    if (EqualsIgnoreCase(option, "close")) close_ = true;
    if (EqualsIgnoreCase(option, "keep-alive")) keep_alive_ = true;
    if (comma == kNpos) return;
    value.remove_prefix(comma + 1);
  }
}

// HTTP/1.1 is persistent unless "close"; HTTP/1.0 only with "keep-alive"
// (RFC 9112 9.3).
ParseResult HeadParser::Finish() {
  head_.keep_alive = !close_ && (head_.minor_version == 1 || keep_alive_);
  head_.head_bytes = pos_;
  return {ParseOutcome::kDone, {}};
}

// ---- chunked body ----

enum class ChunkLine { kLine, kMore, kTooLong, kBareLf };

// Reads the CRLF-terminated line at input[pos], advancing `pos`. A line split
// across calls collects in `partial` (`line` then points into it; the caller
// clears it once done with the line). `line` excludes the CRLF; longer than
// `limit` is kTooLong, found without buffering more than limit + 1 bytes.
ChunkLine ReadChunkLine(std::string_view input, size_t& pos, std::string& partial, size_t limit,
                        std::string_view& line) {
  std::string_view rest = input.substr(pos);
  const void* lf = std::memchr(rest.data(), '\n', rest.size());
  if (lf == nullptr) {
    // + 1: the CR that may end the line.
    if (partial.size() + rest.size() > limit + 1) return ChunkLine::kTooLong;
    partial.append(rest);
    pos = input.size();
    return ChunkLine::kMore;
  }
  size_t length = static_cast<const char*>(lf) - rest.data();
  line = rest.substr(0, length);
  pos += length + 1;
  if (!partial.empty()) {
    partial.append(line);
    line = partial;
  }
  if (line.empty() || line.back() != '\r') return ChunkLine::kBareLf;
  line.remove_suffix(1);
  return line.size() > limit ? ChunkLine::kTooLong : ChunkLine::kLine;
}

// chunk-size [ chunk-ext ] (RFC 9112 7.1): 1-15 hex digits, then nothing or
// ";" and an extension, which is ignored but may not hide a CR or other CTL.
// Returns the reason on error, nullptr when fine.
const char* ParseChunkSize(std::string_view line, uint64_t& size) {
  size_t digits = 0;
  size = 0;
  for (; digits < line.size() && HexValue(line[digits]) >= 0; ++digits) {
    if (digits == kMaxChunkSizeDigits) return "chunk size has more than 15 hex digits";
    size = size * 16 + static_cast<uint64_t>(HexValue(line[digits]));
  }
  if (digits == 0) return line.empty() ? "empty chunk size" : "chunk size is not a hex number";
  std::string_view extension = line.substr(digits);
  if (extension.empty()) return nullptr;
  if (extension.front() != ';') return "malformed chunk size";
  if (!IsFieldValue(extension)) return "control character in a chunk extension";
  return nullptr;
}

// Why a size or trailer line could not be read.
std::string ChunkLineError(ChunkLine status, bool size_line, size_t limit) {
  std::string what = size_line ? "chunk size line" : "trailer line";
  if (status == ChunkLine::kTooLong) {
    return what + " longer than " + std::to_string(limit) + " bytes";
  }
  return what + " ends in a bare LF, not CRLF";
}

// Trailer fields are skipped, but checked like header fields and bounded in
// number like them (their bytes do not count towards the body size). Returns
// the error, empty when fine.
std::string CheckTrailerLine(std::string_view line, size_t& count) {
  std::string_view name;
  std::string_view value;
  FieldError error = SplitFieldLine(line, name, value);
  if (error != FieldError::kNone) return FieldErrorMessage(error, name, "trailer");
  if (++count > kMaxHeaderFields) {
    return "too many trailer fields (over " + std::to_string(kMaxHeaderFields) + ")";
  }
  return {};
}

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

std::string_view RequestHead::Field(std::string_view name) const {
  for (const auto& [field_name, value] : fields) {
    if (EqualsIgnoreCase(field_name, name)) return value;
  }
  return {};
}

ParseResult ParseRequestHead(std::string_view buffer, size_t header_limit, RequestHead& head) {
  // Cleared, but keeping the fields' capacity for the connection's next request.
  auto fields = std::move(head.fields);
  fields.clear();
  fields.reserve(16);
  head = RequestHead{};
  head.fields = std::move(fields);
  return HeadParser(buffer, header_limit, head).Run();
}

ChunkedDecoder::State ChunkedDecoder::Feed(std::string_view input, std::string& out,
                                           size_t& consumed) {
  consumed = 0;
  if (!error_.empty()) return State::kBad;
  size_t pos = 0;
  while (step_ != Step::kDone && pos < input.size()) {
    if (step_ == Step::kData) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, input.size() - pos));
      out.append(input.data() + pos, n);
      pos += n;
      remaining_ -= n;
      if (remaining_ == 0) step_ = Step::kDataEnd;
      continue;
    }
    if (step_ == Step::kDataEnd) {
      // The CRLF after the data, checked byte by byte so that a wrong byte
      // fails at once; line_ holds the CR once it arrived.
      char expected = line_.empty() ? '\r' : '\n';
      if (input[pos++] != expected) {
        consumed = pos;
        return Fail("missing CRLF after chunk data");
      }
      if (expected == '\r') {
        line_ = "\r";
      } else {
        line_.clear();
        step_ = Step::kSize;
      }
      continue;
    }
    // kSize or kTrailer: a line.
    const bool size_line = step_ == Step::kSize;
    std::string_view line;
    ChunkLine status = ReadChunkLine(input, pos, line_, line_limit_, line);
    consumed = pos;
    if (status == ChunkLine::kMore) break;
    if (status != ChunkLine::kLine) return Fail(ChunkLineError(status, size_line, line_limit_));
    if (size_line) {
      if (const char* error = ParseChunkSize(line, remaining_)) return Fail(error);
      // The last chunk (size 0) has no data and no CRLF after it: the trailer
      // section follows at once (RFC 9112 7.1).
      step_ = remaining_ == 0 ? Step::kTrailer : Step::kData;
    } else if (line.empty()) {
      step_ = Step::kDone;
    } else if (std::string error = CheckTrailerLine(line, trailer_fields_); !error.empty()) {
      return Fail(std::move(error));
    }
    line_.clear();
  }
  consumed = pos;
  return step_ == Step::kDone ? State::kDone : State::kMore;
}

ChunkedDecoder::State ChunkedDecoder::Fail(std::string message) {
  error_ = std::move(message);
  return State::kBad;
}

}  // namespace orrery
