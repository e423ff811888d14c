// Content codings of bodies (RFC 9110 8.4): a request body sent with
// `Content-Encoding: gzip` or `deflate` is decoded before its route sees it,
// and an answer is sent gzip-compressed to a client whose `Accept-Encoding`
// asks for it (docs/api.md, HTTP).
//
// The decoded size counts against the route's body limit: decoding stops
// once it would pass the limit (413), so a small compressed bomb costs the
// server at most `limit` bytes of memory, never its whole expansion.
//
// Thread-safety: free functions of their arguments.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/status.h"

namespace orrery {

// `body` decoded per `content_encoding`, the header's value: "" or
// "identity" (the body itself), "gzip" or "x-gzip", "deflate" (zlib, or raw
// deflate as some clients send). kTooLarge when the decoded body is over
// `limit` bytes; kInvalidArgument when the data is not what the coding
// says; kUnsupportedMediaType for another coding or a list of codings.
Result<std::string> DecodeBody(std::string_view content_encoding, std::string body, size_t limit);

// Whether `accept_encoding` (the header's value) accepts gzip: "gzip" or "*"
// listed with a q-value above 0, and gzip not refused by name ("gzip;q=0").
bool AcceptsGzip(std::string_view accept_encoding);

// `data` deflated for speed (answers are on the request path), framed as a
// gzip member (RFC 1952), a zlib stream (RFC 1950) or raw deflate (RFC 1951).
enum class Framing { kGzip, kZlib, kRaw };
std::string Compress(std::string_view data, Framing framing);
inline std::string Gzip(std::string_view data) { return Compress(data, Framing::kGzip); }

}  // namespace orrery
