// Helpers shared by the route files: parsing of numbers, JSON bodies and
// names from requests, and turning Results into responses.
#pragma once

#include <string>

#include "api/http.h"
#include "repository/manifest.h"
#include "repository/names.h"

namespace orrery {

// A decimal int64 from a query parameter or path segment; `fallback` when empty.
Result<int64_t> ParseInt(const std::string& text, const std::string& what, int64_t fallback);
// The body as a JSON object (kInvalidArgument otherwise).
Result<nlohmann::json> ParseJsonObject(const HttpRequest& request);
// A string field of a JSON object; kInvalidArgument when absent or not a string.
Result<std::string> StringField(const nlohmann::json& object, const std::string& field);
// "servables" / "datasets" in a URL.
Result<PackageKind> KindFromSegment(const std::string& segment);

// A model named in a /v2 URL after ".../models/": "tenant/name" raw (two
// segments) or %2F-encoded (one), a bare "name" (the caller's tenant), then
// optionally "versions/{v}", then optionally one of `actions` ("infer",
// "ready", ...). No version means "latest".
struct ModelPath {
  QualifiedName name;
  VersionRef version;
  bool has_version = false;
  std::string action;  // "" for the metadata route
};
Result<ModelPath> ParseModelPath(std::vector<std::string> rest, const std::string& caller_tenant,
                                 const std::vector<std::string>& actions);

// 200 (or `success`) with the value, or the error.
HttpResponse Respond(const Result<nlohmann::json>& result, int success = 200);

}  // namespace orrery
