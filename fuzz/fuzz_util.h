// What the fuzz targets share: Require(), an invariant whose failure is a
// finding (libFuzzer records the input that broke it).
#pragma once

#include <cstdlib>

namespace orrery::fuzz {

inline void Require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace orrery::fuzz
