// Plain request/response values between the HTTP transport
// (http_transport.h, the only code that knows sockets) and the routes
// (routes_*.cc).
// Thread-safety: values.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace orrery {

struct HttpRequest {
  std::string method;                          // "GET", "POST", ...
  std::vector<std::string> segments;           // path split on '/', each percent-decoded
  std::map<std::string, std::string> query;    // decoded
  // Lower-case names, in arrival order (a handful: a scan beats a map).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;                            // non-upload routes
  std::filesystem::path body_file;             // upload routes: the body on disk

  // The first field named `name` (lower case), or "". Valid while the request is.
  std::string_view Header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (key == name) return value;
    }
    return {};
  }
  std::string Query(const std::string& name) const {
    auto it = query.find(name);
    return it == query.end() ? std::string() : it->second;
  }
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::filesystem::path file;  // when set, sent as the body and then removed
  std::vector<std::pair<std::string, std::string>> headers;

  static HttpResponse Json(int status, const nlohmann::json& value) {
    HttpResponse response;
    response.status = status;
    // Messages may quote client bytes that are not UTF-8: replace, never throw.
    response.body = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return response;
  }
  // {"error": message} with the status the code maps to.
  static HttpResponse Error(const Status& status) {
    return Json(HttpStatusFor(status.code()), {{"error", status.message()}});
  }
};

// Splits "/a/b%2Fc/d" into {"a", "b/c", "d"} and "x=1&y=%20" into a map.
// kInvalidArgument on malformed percent-encoding.
Result<std::vector<std::string>> SplitPath(std::string_view path);
Result<std::map<std::string, std::string>> ParseQuery(std::string_view query);

}  // namespace orrery
