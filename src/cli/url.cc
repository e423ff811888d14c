#include "cli/url.h"

namespace orrery::cli {

std::string UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

std::string ApiPath(std::initializer_list<std::string_view> segments, const Query& query) {
  std::string path = "/api/v1";
  for (std::string_view segment : segments) path += "/" + UrlEncode(segment);
  char separator = '?';
  for (const auto& [key, value] : query) {
    if (value.empty()) continue;
    path += separator + UrlEncode(key) + "=" + UrlEncode(value);
    separator = '&';
  }
  return path;
}

Result<ServerAddress> ParseServerUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return InvalidArgument("server URL '" + std::string(url) +
                           "' must start with http:// (https is not supported)");
  }
  std::string_view rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  ServerAddress address;
  if (slash != std::string_view::npos) address.prefix = std::string(rest.substr(slash));
  while (!address.prefix.empty() && address.prefix.back() == '/') address.prefix.pop_back();
  size_t colon = authority.rfind(':');
  bool bracketed = !authority.empty() && authority.front() == '[';
  if (colon != std::string_view::npos && (!bracketed || authority[colon - 1] == ']')) {
    address.port = std::string(authority.substr(colon + 1));
    authority = authority.substr(0, colon);
  }
  if (bracketed && authority.size() >= 2 && authority.back() == ']') {
    authority = authority.substr(1, authority.size() - 2);
  }
  address.host = std::string(authority);
  bool port_ok = !address.port.empty() && address.port.size() <= 5 &&
                 address.port.find_first_not_of("0123456789") == std::string::npos &&
                 std::stoi(address.port) > 0 && std::stoi(address.port) < 65536;
  if (address.host.empty() || !port_ok) {
    return InvalidArgument("bad server URL '" + std::string(url) + "'");
  }
  return address;
}

}  // namespace orrery::cli
