// Quantities a person writes: durations ("90m") and sizes ("2GiB"), for
// command-line flags and job specs.
// Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <string_view>

#include "core/status.h"

namespace orrery {

// Seconds in "3600", "45s", "90m", "12h" or "30d"; must be positive.
// kInvalidArgument naming the accepted forms otherwise.
Result<int64_t> ParseDuration(std::string_view text);

// Bytes in "1048576", "512KiB", "64MiB", "2GiB" or "1TiB" (powers of 1024;
// "K", "M", "G", "T" and "KB", "MB", "GB", "TB" mean the same: memory sizes
// are binary in practice); must be positive. kInvalidArgument otherwise.
Result<int64_t> ParseByteSize(std::string_view text);

}  // namespace orrery
