// Dispatch (liveness, authentication, the route's handler) and the helpers
// the route files share (route_util.h).
#include "api/router.h"

#include <charconv>

#include "api/route_handlers.h"
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

namespace {

// Whether arrays and objects in `text` nest deeper than `limit`: a scan that
// skips strings (and their escapes), run before the parser, which would
// otherwise build (and free, recursively) a body of any depth. Not a
// validator: the parser still judges the text.
bool NestsDeeperThan(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

}  // namespace

Result<nlohmann::json> ParseJsonObject(const HttpRequest& request) {
  if (NestsDeeperThan(request.body, kMaxJsonDepth)) {
    return InvalidArgument("request body nests deeper than " + std::to_string(kMaxJsonDepth) +
                           " levels");
  }
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

Result<ObjectRef> ObjectFrom(const RouteCall& call) {
  ObjectRef object;
  object.kind = call.Param("kind") == "datasets" ? PackageKind::kDataset : PackageKind::kServable;
  object.name = {call.Param("tenant"), call.Param("name")};
  RETURN_IF_ERROR(ValidateTenantName(object.name.tenant));
  RETURN_IF_ERROR(ValidateObjectName(object.name.name));
  if (call.request.params.Has("version")) {
    ASSIGN_OR_RETURN(object.version, ParseVersionRef(call.Param("version")));
  }
  return object;
}

ModelTarget TargetFrom(const RouteCall& call) {
  ModelTarget target{call.Param("model"), ""};
  if (call.request.params.Has("version")) target.version = call.Param("version");
  return target;
}

ModelTarget TargetOf(const ObjectRef& object) {
  return ModelTarget{object.name.ToString(), object.version.ToString()};
}

HttpResponse Respond(const Result<nlohmann::json>& result, int success) {
  if (!result.ok()) return HttpResponse::Error(result.status());
  return HttpResponse::Json(success, *result);
}

HttpResponse ServerLive(const RouteCall&) { return HttpResponse::Json(200, {{"live", true}}); }

Result<Caller> Router::Authenticate(std::string_view authorization) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.empty()) {
    return Unauthenticated("missing token (send Authorization: Bearer <token>)");
  }
  if (authorization.substr(0, kBearer.size()) != kBearer) {
    return Unauthenticated("Authorization must be 'Bearer <token>'");
  }
  return hub_.repository.Authenticate(std::string_view(authorization).substr(kBearer.size()));
}

Result<Caller> Router::CallerFor(const Route* route, std::string_view authorization) const {
  // Liveness is the one route without a token: probes must not hold secrets.
  if (route != nullptr && route->access == Access::kAnyone) return Caller{};
  // With public read on, no token at all on an open route: a caller of no
  // tenant (id 0 matches none), who sees public objects only.
  if (authorization.empty() && hub_.options.public_read && OpenToPublicRead(route)) {
    return Caller{};
  }
  return Authenticate(authorization);
}

void Router::HandleAsync(HttpRequest request, Responder respond) const {
  const Route* route = request.route;
  Result<Caller> caller = CallerFor(route, request.Header("authorization"));
  if (!caller.ok()) return respond(HttpResponse::Error(caller.status()));
  if (route == nullptr) {
    std::string path;
    for (const std::string& segment : request.segments) path += "/" + segment;
    return respond(HttpResponse::Error(
        NotFound("no route for " + request.method + " " + (path.empty() ? "/" : path))));
  }
  RouteCall call{request, *caller, hub_};
  route->handler(call, std::move(respond));
}

}  // namespace orrery
