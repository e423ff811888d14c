// Plain request/response values between the HTTP transport
// (http_transport.h, the only code that knows sockets) and the routes
// (routes_*.cc).
// Thread-safety: values.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/log.h"
#include "core/status.h"

namespace orrery {

// The captures of the route a request matched ("tenant" -> "acme"), by name.
class RouteParams {
 public:
  // The capture named `name`; "" when the route has none of that name.
  const std::string& Get(std::string_view name) const;
  bool Has(std::string_view name) const;
  // `name` must outlive the params (route patterns are static text).
  void Add(std::string_view name, std::string value) { values_.emplace_back(name, std::move(value)); }
  void PopBack() { values_.pop_back(); }
  void Clear() { values_.clear(); }

 private:
  std::vector<std::pair<std::string_view, std::string>> values_;
};

struct Route;  // api/route_table.h

struct HttpRequest {
  std::string method;                          // "GET", "POST", ...
  std::vector<std::string> segments;           // path split on '/', each percent-decoded
  std::map<std::string, std::string> query;    // decoded
  // Lower-case names, in arrival order (a handful: a scan beats a map).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;                            // non-upload routes
  std::filesystem::path body_file;             // upload routes: the body on disk
  const Route* route = nullptr;                // matched by the transport; null: no route
  RouteParams params;                          // the route's captures

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
  // {"error": message} with the status the code maps to; never the
  // status's detail (host paths), which a server error (500, 507) logs.
  static HttpResponse Error(const Status& status) {
    int http = HttpStatusFor(status.code());
    if (http >= 500 && http != 503) LogError("answered " + std::to_string(http) + ": " + status.ToString());
    return Json(http, {{"error", status.message()}});
  }
};

// Called exactly once per request, from any thread, with its answer.
using Responder = std::function<void(HttpResponse)>;

// Splits "/a/b%2Fc/d" into {"a", "b/c", "d"} and "x=1&y=%20" into a map.
// kInvalidArgument on malformed percent-encoding, and on an empty path
// segment ("/a//b"; one trailing "/" is allowed).
Result<std::vector<std::string>> SplitPath(std::string_view path);
Result<std::map<std::string, std::string>> ParseQuery(std::string_view query);

}  // namespace orrery
