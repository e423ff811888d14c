// Dispatch: liveness, authentication, then the /v2 health routes and the
// /api/v1 tree. Object routes live in routes_objects.cc, tenant, token and
// admin routes in routes_admin.cc.
#include "api/router.h"

#include <charconv>

#include "api/route_util.h"

namespace orrery {

Result<int64_t> ParseInt(const std::string& text, const std::string& what, int64_t fallback) {
  if (text.empty()) return fallback;
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) {
    return InvalidArgument(what + " must be an integer, got '" + text + "'");
  }
  return value;
}

Result<nlohmann::json> ParseJsonObject(const HttpRequest& request) {
  nlohmann::json body = nlohmann::json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return InvalidArgument("request body is not valid JSON");
  if (!body.is_object()) return InvalidArgument("request body must be a JSON object");
  return body;
}

Result<std::string> StringField(const nlohmann::json& object, const std::string& field) {
  auto it = object.find(field);
  if (it == object.end() || !it->is_string()) {
    return InvalidArgument("field '" + field + "' must be a string");
  }
  return it->get<std::string>();
}

Result<PackageKind> KindFromSegment(const std::string& segment) {
  if (segment == "servables") return PackageKind::kServable;
  if (segment == "datasets") return PackageKind::kDataset;
  return NotFound("no route /api/v1/" + segment);
}

HttpResponse Respond(const Result<nlohmann::json>& result, int success) {
  if (!result.ok()) return HttpResponse::Error(result.status());
  return HttpResponse::Json(success, *result);
}

bool Router::IsUpload(const std::string& method, const std::vector<std::string>& segments) {
  return method == "POST" && segments.size() == 6 && segments[0] == "api" && segments[1] == "v1" &&
         (segments[2] == "servables" || segments[2] == "datasets") && segments[5] == "versions";
}

Result<Caller> Router::Authenticate(std::string_view authorization) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.empty()) {
    return Unauthenticated("missing token (send Authorization: Bearer <token>)");
  }
  if (authorization.substr(0, kBearer.size()) != kBearer) {
    return Unauthenticated("Authorization must be 'Bearer <token>'");
  }
  return repository_.Authenticate(std::string_view(authorization).substr(kBearer.size()));
}

HttpResponse Router::Handle(const HttpRequest& request) const {
  const auto& s = request.segments;
  // Liveness is the one route without a token: probes must not hold secrets.
  if (s == std::vector<std::string>{"v2", "health", "live"} && request.method == "GET") {
    return HttpResponse::Json(200, {{"live", true}});
  }
  Result<Caller> caller = Authenticate(request.Header("authorization"));
  if (!caller.ok()) return HttpResponse::Error(caller.status());

  if (!s.empty() && s[0] == "v2") return HandleV2(request, *caller);
  if (s == std::vector<std::string>{"metrics"} && request.method == "GET") return Metrics(*caller);
  if (s.size() >= 3 && s[0] == "api" && s[1] == "v1") return HandleApi(request, *caller);
  return HttpResponse::Error(NotFound("no such route"));
}

HttpResponse Router::HandleApi(const HttpRequest& request, const Caller& caller) const {
  const auto& s = request.segments;
  const std::string& m = request.method;
  if (s[2] == "whoami" && s.size() == 3 && m == "GET") {
    return HttpResponse::Json(200, {{"tenant", caller.tenant},
                                    {"role", RoleName(caller.role)},
                                    {"token_id", caller.token_id}});
  }
  if (s[2] == "servables" || s[2] == "datasets" || s[2] == "search") {
    return HandleObjects(request, caller);
  }
  return HandleAdmin(request, caller);
}

}  // namespace orrery
