#include "core/random.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdlib>
#include <vector>

namespace orrery {

std::string RandomHex(size_t bytes) {
  std::vector<unsigned char> buffer(bytes);
  size_t filled = 0;
  while (filled < bytes) {
    ssize_t n = getrandom(buffer.data() + filled, bytes - filled, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::abort();  // no entropy source: tokens must never be predictable
    }
    filled += static_cast<size_t>(n);
  }
  static const char kHex[] = "0123456789abcdef";
  std::string hex(bytes * 2, '0');
  for (size_t i = 0; i < bytes; ++i) {
    hex[2 * i] = kHex[buffer[i] >> 4];
    hex[2 * i + 1] = kHex[buffer[i] & 0xf];
  }
  return hex;
}

}  // namespace orrery
