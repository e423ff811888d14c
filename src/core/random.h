// Cryptographically secure random bytes from the kernel (getrandom(2)).
// Thread-safe.
#pragma once

#include <cstddef>
#include <string>

namespace orrery {

// `bytes` random bytes as 2*bytes lowercase hex characters.
std::string RandomHex(size_t bytes);

}  // namespace orrery
