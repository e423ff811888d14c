// libFuzzer target: the HTTP/1.1 request-head parser (src/api/http_parser.h).
// The head is parsed from any prefix of the input, as the transport does
// while bytes arrive: a complete head must stay the same head whatever
// follows it, and everything it points at lies inside the buffer.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "api/http_parser.h"
#include "fuzz_util.h"

using orrery::fuzz::Require;

namespace {

bool Inside(std::string_view part, std::string_view buffer) {
  return part.empty() ||
         (part.data() >= buffer.data() && part.data() + part.size() <= buffer.data() + buffer.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace orrery;
  std::string_view buffer(reinterpret_cast<const char*>(data), size);
  constexpr size_t kLimit = 4096;
  RequestHead head;
  ParseResult whole = ParseRequestHead(buffer, kLimit, head);
  if (whole.outcome != ParseOutcome::kDone) return 0;
  Require(head.head_bytes <= size);
  Require(Inside(head.method, buffer) && Inside(head.target, buffer));
  for (const auto& [name, value] : head.fields) Require(Inside(name, buffer) && Inside(value, buffer));
  // The head alone parses to the same head.
  RequestHead again;
  ParseResult prefix = ParseRequestHead(buffer.substr(0, head.head_bytes), kLimit, again);
  Require(prefix.outcome == ParseOutcome::kDone);
  Require(again.head_bytes == head.head_bytes && again.method == head.method &&
          again.target == head.target && again.content_length == head.content_length &&
          again.chunked == head.chunked && again.fields.size() == head.fields.size());
  // One byte short of it is incomplete, never a different answer.
  if (head.head_bytes > 0) {
    RequestHead shorter;
    ParseResult cut = ParseRequestHead(buffer.substr(0, head.head_bytes - 1), kLimit, shorter);
    Require(cut.outcome != ParseOutcome::kDone);
  }
  return 0;
}
