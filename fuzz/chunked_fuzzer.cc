// libFuzzer target: the chunked transfer-coding decoder (src/api/http_parser.h).
// The first byte picks how the rest is cut into reads; the decoder must give
// the same body, the same verdict and the same end position whether the
// bytes arrive at once or in pieces, and never consume what it was not given.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api/http_parser.h"
#include "fuzz_util.h"

using orrery::fuzz::Require;

namespace {

struct Outcome {
  orrery::ChunkedDecoder::State state;
  std::string body;
  size_t consumed = 0;  // of the whole input, when done or bad
};

Outcome Decode(std::string_view input, size_t piece) {
  orrery::ChunkedDecoder decoder(64);
  Outcome out{orrery::ChunkedDecoder::State::kMore, {}, 0};
  size_t at = 0;
  while (at < input.size()) {
    std::string_view chunk = input.substr(at, piece);
    size_t consumed = 0;
    out.state = decoder.Feed(chunk, out.body, consumed);
    Require(consumed <= chunk.size());
    at += consumed;
    if (out.state != orrery::ChunkedDecoder::State::kMore) break;
    Require(consumed == chunk.size());  // kMore takes everything it was given
  }
  out.consumed = at;
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  size_t piece = 1 + data[0] % 16;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  Outcome whole = Decode(input, input.size() + 1);
  Outcome pieces = Decode(input, piece);
  Require(whole.state == pieces.state);
  if (whole.state == orrery::ChunkedDecoder::State::kDone) {
    Require(whole.body == pieces.body && whole.consumed == pieces.consumed);
    Require(whole.body.size() <= input.size());
  }
  return 0;
}
