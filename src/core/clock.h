// Wall-clock helpers. Thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace orrery {

int64_t NowUnixSeconds();
// RFC 3339 UTC, e.g. "2026-11-22T10:00:00Z".
std::string FormatUnixSeconds(int64_t seconds);

}  // namespace orrery
