// Tenants, tokens, audit log, garbage collection, the consistency check and
// overrides of serving settings.
#include "api/route_util.h"
#include "api/router.h"

namespace orrery {
namespace {

HttpResponse CreateToken(Repository& repository, const HttpRequest& request, const Caller& caller) {
  Result<nlohmann::json> body = ParseJsonObject(request);
  if (!body.ok()) return HttpResponse::Error(body.status());
  Result<std::string> role_text = StringField(*body, "role");
  if (!role_text.ok()) return HttpResponse::Error(role_text.status());
  Result<Role> role = ParseRole(*role_text);
  if (!role.ok()) return HttpResponse::Error(role.status());
  std::string tenant = body->value("tenant", "");
  std::string description = body->value("description", "");
  int64_t expires_in_s = 0;
  if (body->contains("expires_in_s")) {
    const auto& value = (*body)["expires_in_s"];
    if (!value.is_number_integer()) {
      return HttpResponse::Error(InvalidArgument("expires_in_s must be an integer"));
    }
    expires_in_s = value.get<int64_t>();
  }
  return Respond(repository.CreateToken(caller, tenant, *role, expires_in_s, description), 201);
}

// /api/v1/admin/serving/{tenant}/{name}/versions/{version}: an admin's
// override of a servable version's serving settings. A change also unloads
// the version's model, so that the next request loads it with the new
// settings (requests in flight finish on the old one).
HttpResponse ServingOverride(Repository& repository, ModelManager& models,
                             const HttpRequest& request, const Caller& caller) {
  const auto& s = request.segments;
  const std::string& m = request.method;
  Status valid = ValidateTenantName(s[4]);
  if (valid.ok()) valid = ValidateObjectName(s[5]);
  if (!valid.ok()) return HttpResponse::Error(valid);
  QualifiedName name{s[4], s[5]};
  Result<VersionRef> version = ParseVersionRef(s[7]);
  if (!version.ok()) return HttpResponse::Error(version.status());
  Result<nlohmann::json> answer = NotFound("no route for " + m + " /api/v1/admin/serving");
  if (m == "GET") {
    answer = repository.GetServingOverride(caller, name, *version);
  } else if (m == "PUT") {
    Result<nlohmann::json> body = ParseJsonObject(request);
    if (!body.ok()) return HttpResponse::Error(body.status());
    answer = repository.SetServingOverride(caller, name, *version, *body);
  } else if (m == "DELETE") {
    answer = repository.ClearServingOverride(caller, name, *version);
  }
  if (answer.ok() && m != "GET") {
    (void)models.Unload((*answer)["servable"].get<std::string>());  // kNotFound: not loaded
  }
  return Respond(answer);
}

}  // namespace

HttpResponse Router::HandleAdmin(const HttpRequest& request, const Caller& caller) const {
  const auto& s = request.segments;
  const std::string& m = request.method;
  const std::string& what = s[2];
  if (what == "tenants" && s.size() == 3) {
    if (m == "GET") return Respond(repository_.ListTenants(caller));
    if (m == "POST") {
      Result<nlohmann::json> body = ParseJsonObject(request);
      if (!body.ok()) return HttpResponse::Error(body.status());
      Result<std::string> name = StringField(*body, "name");
      if (!name.ok()) return HttpResponse::Error(name.status());
      return Respond(repository_.CreateTenant(caller, *name), 201);
    }
  }
  if (what == "tokens" && s.size() == 3) {
    if (m == "GET") return Respond(repository_.ListTokens(caller, request.Query("tenant")));
    if (m == "POST") return CreateToken(repository_, request, caller);
  }
  if (what == "tokens" && s.size() == 4 && m == "DELETE") {
    Result<int64_t> id = ParseInt(s[3], "token id", 0);
    if (!id.ok()) return HttpResponse::Error(id.status());
    return Respond(repository_.RevokeToken(caller, *id));
  }
  if (what == "audit" && s.size() == 3 && m == "GET") {
    Result<int64_t> limit = ParseInt(request.Query("limit"), "limit", 100);
    if (!limit.ok()) return HttpResponse::Error(limit.status());
    return Respond(repository_.Audit(caller, *limit));
  }
  if (what == "admin" && s.size() == 4) {
    if (s[3] == "gc" && m == "POST") {
      Result<int64_t> min_age =
          ParseInt(request.Query("min_age_s"), "min_age_s", options_.gc_min_age_s);
      if (!min_age.ok()) return HttpResponse::Error(min_age.status());
      return Respond(repository_.CollectGarbage(caller, *min_age));
    }
    if (s[3] == "check" && m == "GET") return Respond(repository_.Check(caller));
  }
  if (what == "admin" && s.size() == 8 && s[3] == "serving" && s[6] == "versions") {
    return ServingOverride(repository_, models_, request, caller);
  }
  return HttpResponse::Error(NotFound("no route for " + m + " /api/v1/" + what));
}

}  // namespace orrery
