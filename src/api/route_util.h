// Helpers shared by the route files: parsing of numbers, JSON bodies and
// the names a route captured, and turning Results into responses.
#pragma once

#include <string>

#include "api/http.h"
#include "api/route_table.h"
#include "repository/manifest.h"
#include "repository/names.h"
#include "serving/resolver.h"

namespace orrery {

// A decimal int64 from a query parameter or path segment; `fallback` when empty.
Result<int64_t> ParseInt(const std::string& text, const std::string& what, int64_t fallback);
// The deepest nesting of arrays and objects a JSON body of a route may have
// (inference bodies have their own, DecodeLimits::max_depth, also 64).
inline constexpr int kMaxJsonDepth = 64;
// The body as a JSON object (kInvalidArgument otherwise, and when it nests
// deeper than kMaxJsonDepth).
Result<nlohmann::json> ParseJsonObject(const HttpRequest& request);
// A string field of a JSON object; kInvalidArgument when absent or not a string.
Result<std::string> StringField(const nlohmann::json& object, const std::string& field);

// The object an /api/v1 route names: {kind}, {tenant} and {name} (validated,
// kInvalidArgument), and {version} when the route has one ("latest" if not).
struct ObjectRef {
  PackageKind kind = PackageKind::kServable;
  QualifiedName name;
  VersionRef version{0, "latest"};
};
Result<ObjectRef> ObjectFrom(const RouteCall& call);

// The model a /v2 route names: {model} is "tenant/name" or a bare "name"
// (the caller's tenant), then {version} when the route has one (the
// InferenceService's Resolver checks both).
ModelTarget TargetFrom(const RouteCall& call);
// An /api/v1 object as the InferenceService names it.
ModelTarget TargetOf(const ObjectRef& object);

// 200 (or `success`) with the value, or the error.
HttpResponse Respond(const Result<nlohmann::json>& result, int success = 200);

// `ASSIGN_OR_ANSWER(auto x, F());` in a handler that returns an
// HttpResponse: declares x from a Result, or answers its error.
#define ASSIGN_OR_ANSWER(lhs, expr) \
  ASSIGN_OR_ANSWER_IMPL(ORRERY_CONCAT(_answer_, __LINE__), lhs, expr)
#define ASSIGN_OR_ANSWER_IMPL(tmp, lhs, expr)                       \
  auto tmp = (expr);                                                \
  if (!tmp.ok()) return ::orrery::HttpResponse::Error(tmp.status()); \
  lhs = std::move(tmp).value()

}  // namespace orrery
