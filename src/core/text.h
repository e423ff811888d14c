// Text from outside (client bytes, archive names, library messages) made
// safe to print in messages and logs.
// Thread-safe (pure functions).
#pragma once

#include <string>
#include <string_view>

namespace orrery {

// `text` with every byte outside printable ASCII (0x20..0x7e) written as \xNN.
std::string PrintableText(std::string_view text);

// `text` with ASCII A-Z made a-z, other bytes as they are (header values,
// media types, host and distribution names compare case-insensitively).
std::string AsciiLowercase(std::string_view text);

}  // namespace orrery
