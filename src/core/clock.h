// Wall-clock helpers. Thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace orrery {

int64_t NowUnixSeconds();
int64_t NowUnixMillis();
// RFC 3339 UTC, e.g. "2026-11-22T10:00:00Z".
std::string FormatUnixSeconds(int64_t seconds);
// RFC 3339 UTC with milliseconds, e.g. "2026-11-22T10:00:00.250Z".
std::string FormatUnixMillis(int64_t millis);

}  // namespace orrery
