// libFuzzer target: the manifest reader (src/repository/manifest.h), YAML
// text from a client. A manifest it accepts reads the same from its own
// canonical JSON (what the catalog stores and serving parses again).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "repository/manifest.h"
#include "fuzz_util.h"

using orrery::fuzz::Require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace orrery;
  if (size > 64 * 1024) return 0;  // the archive reader's manifest limit
  Result<Manifest> manifest =
      ParseManifest(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!manifest.ok()) return 0;
  std::string canonical = manifest->ToJson().dump();
  Result<Manifest> again = ParseManifest(canonical);
  Require(again.ok());
  Require(again->ToJson().dump() == canonical);
  return 0;
}
