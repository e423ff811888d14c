#include "core/quantity.h"

#include <charconv>
#include <limits>
#include <optional>
#include <utility>
#include <string>

namespace orrery {
namespace {

// `text` split into its leading decimal digits and the unit after them;
// nullopt when the number is missing, malformed or not positive.
std::optional<std::pair<int64_t, std::string_view>> NumberAndUnit(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  int64_t count = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + digits, count);
  if (digits == 0 || error != std::errc() || end != text.data() + digits || count <= 0) {
    return std::nullopt;
  }
  return std::make_pair(count, text.substr(digits));
}

// count * unit, or nullopt when it overflows or the unit is unknown (0).
std::optional<int64_t> Scaled(int64_t count, int64_t unit) {
  if (unit == 0 || count > std::numeric_limits<int64_t>::max() / unit) return std::nullopt;
  return count * unit;
}

int64_t SecondsPer(std::string_view unit) {
  if (unit.empty() || unit == "s") return 1;
  if (unit == "m") return 60;
  if (unit == "h") return 3600;
  if (unit == "d") return 86400;
  return 0;
}

int64_t BytesPer(std::string_view unit) {
  if (unit.empty() || unit == "B") return 1;
  static constexpr std::string_view kPrefixes = "KMGT";
  size_t power = kPrefixes.find(unit.empty() ? '\0' : unit[0]);
  if (power == std::string_view::npos) return 0;
  std::string_view rest = unit.substr(1);
  if (!rest.empty() && rest != "B" && rest != "iB") return 0;
  return int64_t{1} << (10 * (power + 1));
}

}  // namespace

Result<int64_t> ParseDuration(std::string_view text) {
  auto parsed = NumberAndUnit(text);
  std::optional<int64_t> seconds;
  if (parsed) seconds = Scaled(parsed->first, SecondsPer(parsed->second));
  if (!seconds) {
    return InvalidArgument("bad duration '" + std::string(text) +
                           "' (a positive number of seconds, or e.g. 90m, 12h, 30d)");
  }
  return *seconds;
}

Result<int64_t> ParseByteSize(std::string_view text) {
  auto parsed = NumberAndUnit(text);
  std::optional<int64_t> bytes;
  if (parsed) bytes = Scaled(parsed->first, BytesPer(parsed->second));
  if (!bytes) {
    return InvalidArgument("bad size '" + std::string(text) +
                           "' (a positive number of bytes, or e.g. 512MiB, 2GiB)");
  }
  return *bytes;
}

}  // namespace orrery
