// URLs of the REST API: percent-encoding, API paths and the server address.
//
// ApiPath is the one place that builds a request target; every command goes
// through it so that each path segment and query value is encoded exactly
// once. Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace orrery::cli {

// Percent-encodes every byte except the unreserved set [A-Za-z0-9-._~]
// (RFC 3986), so the result is safe as a path segment or a query value.
std::string UrlEncode(std::string_view text);

// Query parameters in order; pairs with an empty value are left out.
using Query = std::vector<std::pair<std::string, std::string>>;

// "/api/v1/seg1/seg2?k=v&..." with every segment and value encoded.
std::string ApiPath(std::initializer_list<std::string_view> segments, const Query& query = {});

// The parts of "http://host[:port][/prefix]" (plain HTTP only).
struct ServerAddress {
  std::string host;
  std::string port = "80";
  std::string prefix;  // path before "/api/v1", without a trailing '/'
};

Result<ServerAddress> ParseServerUrl(std::string_view url);

}  // namespace orrery::cli
