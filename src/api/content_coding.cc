#include "api/content_coding.h"

#include <zlib.h>

#include <cstdlib>
#include <optional>

#include "core/text.h"

namespace orrery {
namespace {

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Inflates `body` with zlib's `window_bits` (15 + 16: gzip, 15: zlib, -15:
// raw deflate), stopping with kTooLarge once the output would pass `limit`.
Result<std::string> Inflate(const std::string& body, int window_bits, size_t limit) {
  z_stream stream{};
  if (inflateInit2(&stream, window_bits) != Z_OK) return Internal("inflateInit2 failed");
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));
  stream.avail_in = static_cast<uInt>(body.size());
  std::string out;
  char chunk[64 * 1024];
  int rc = Z_OK;
  while (rc == Z_OK) {
    stream.next_out = reinterpret_cast<Bytef*>(chunk);
    stream.avail_out = sizeof chunk;
    rc = inflate(&stream, Z_NO_FLUSH);
    size_t produced = sizeof chunk - stream.avail_out;
    if (out.size() + produced > limit) {
      inflateEnd(&stream);
      return TooLarge("request body is over the " + std::to_string(limit) +
                      "-byte limit once decompressed");
    }
    out.append(chunk, produced);
    if (rc == Z_BUF_ERROR && stream.avail_in == 0) break;  // input ended early
  }
  bool whole = rc == Z_STREAM_END && stream.avail_in == 0;
  inflateEnd(&stream);
  if (!whole) return InvalidArgument("the request body is not valid data of its Content-Encoding");
  return out;
}

}  // namespace

Result<std::string> DecodeBody(std::string_view content_encoding, std::string body, size_t limit) {
  std::string coding = AsciiLowercase(Trim(content_encoding));
  if (coding.empty() || coding == "identity") return body;
  if (coding == "gzip" || coding == "x-gzip") return Inflate(body, 15 + 16, limit);
  if (coding == "deflate") {
    Result<std::string> zlib = Inflate(body, 15, limit);
    if (zlib.ok() || zlib.status().code() == Code::kTooLarge) return zlib;
    return Inflate(body, -15, limit);
  }
  return UnsupportedMediaType("Content-Encoding '" + PrintableText(content_encoding.substr(0, 60)) +
                              "' is not supported (gzip, deflate or identity)");
}

bool AcceptsGzip(std::string_view accept_encoding) {
  std::optional<bool> gzip, any;  // what the list says of each, if anything
  while (!accept_encoding.empty()) {
    size_t comma = accept_encoding.find(',');
    std::string_view item = accept_encoding.substr(0, comma);
    accept_encoding.remove_prefix(comma == std::string_view::npos ? accept_encoding.size()
                                                                  : comma + 1);
    size_t semicolon = item.find(';');
    std::string name = AsciiLowercase(Trim(item.substr(0, semicolon)));
    bool accepted = true;  // no q-value: q=1
    if (semicolon != std::string_view::npos) {
      std::string_view params = item.substr(semicolon + 1);
      size_t q = params.find("q=");
      if (q != std::string_view::npos) {
        accepted = std::strtod(std::string(params.substr(q + 2)).c_str(), nullptr) > 0;
      }
    }
    if (name == "gzip" || name == "x-gzip") gzip = accepted;
    if (name == "*") any = accepted;
  }
  return gzip.value_or(any.value_or(false));
}

std::string Compress(std::string_view data, Framing framing) {
  int window_bits = framing == Framing::kGzip ? 15 + 16 : framing == Framing::kZlib ? 15 : -15;
  z_stream stream{};
  deflateInit2(&stream, Z_BEST_SPEED, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&stream, static_cast<uLong>(data.size())), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

}  // namespace orrery
