// Tenants, tokens, audit log, garbage collection, the consistency check and
// overrides of serving settings.
#include "api/route_handlers.h"
#include "api/route_util.h"
#include "backends/python/python_environments.h"

namespace orrery {
namespace {

// A change of a serving override also unloads the version's model, so that
// the next request loads it with the new settings (requests in flight
// finish on the old one).
HttpResponse AfterOverrideChange(const RouteCall& call, const Result<nlohmann::json>& answer) {
  if (answer.ok()) {
    (void)call.hub.models.Unload((*answer)["servable"].get<std::string>());  // kNotFound: not loaded
  }
  return Respond(answer);
}

// /api/v1/admin/serving/{tenant}/{name}/versions/{version}
Result<ObjectRef> OverrideTarget(const RouteCall& call) { return ObjectFrom(call); }

}  // namespace

HttpResponse ListEnvironments(const RouteCall& call) {
  return HttpResponse::Json(
      200, DescribePythonEnvironments(call.hub.models.options().sandbox.python_environments));
}

HttpResponse Whoami(const RouteCall& call) {
  return HttpResponse::Json(200, {{"tenant", call.caller.tenant},
                                  {"role", RoleName(call.caller.role)},
                                  {"token_id", call.caller.token_id}});
}

HttpResponse ListTenants(const RouteCall& call) {
  return Respond(call.hub.repository.ListTenants(call.caller));
}

HttpResponse CreateTenant(const RouteCall& call) {
  ASSIGN_OR_ANSWER(nlohmann::json body, ParseJsonObject(call.request));
  ASSIGN_OR_ANSWER(std::string name, StringField(body, "name"));
  return Respond(call.hub.repository.CreateTenant(call.caller, name), 201);
}

HttpResponse ListTokens(const RouteCall& call) {
  return Respond(call.hub.repository.ListTokens(call.caller, call.request.Query("tenant")));
}

HttpResponse CreateToken(const RouteCall& call) {
  ASSIGN_OR_ANSWER(nlohmann::json body, ParseJsonObject(call.request));
  ASSIGN_OR_ANSWER(std::string role_text, StringField(body, "role"));
  ASSIGN_OR_ANSWER(Role role, ParseRole(role_text));
  std::string tenant = body.value("tenant", "");
  std::string description = body.value("description", "");
  int64_t expires_in_s = 0;
  if (body.contains("expires_in_s")) {
    const auto& value = body["expires_in_s"];
    if (!value.is_number_integer()) {
      return HttpResponse::Error(InvalidArgument("expires_in_s must be an integer"));
    }
    expires_in_s = value.get<int64_t>();
  }
  return Respond(
      call.hub.repository.CreateToken(call.caller, tenant, role, expires_in_s, description), 201);
}

HttpResponse RevokeToken(const RouteCall& call) {
  ASSIGN_OR_ANSWER(int64_t id, ParseInt(call.Param("id"), "token id", 0));
  return Respond(call.hub.repository.RevokeToken(call.caller, id));
}

HttpResponse Audit(const RouteCall& call) {
  ASSIGN_OR_ANSWER(int64_t limit, ParseInt(call.request.Query("limit"), "limit", 100));
  return Respond(call.hub.repository.Audit(call.caller, limit));
}

HttpResponse CollectGarbage(const RouteCall& call) {
  ASSIGN_OR_ANSWER(int64_t min_age, ParseInt(call.request.Query("min_age_s"), "min_age_s",
                                             call.hub.options.gc_min_age_s));
  return Respond(call.hub.repository.CollectGarbage(call.caller, min_age));
}

HttpResponse Check(const RouteCall& call) { return Respond(call.hub.repository.Check(call.caller)); }

HttpResponse GetServingOverride(const RouteCall& call) {
  ASSIGN_OR_ANSWER(ObjectRef target, OverrideTarget(call));
  return Respond(call.hub.repository.GetServingOverride(call.caller, target.name, target.version));
}

HttpResponse SetServingOverride(const RouteCall& call) {
  ASSIGN_OR_ANSWER(ObjectRef target, OverrideTarget(call));
  ASSIGN_OR_ANSWER(nlohmann::json body, ParseJsonObject(call.request));
  return AfterOverrideChange(
      call, call.hub.repository.SetServingOverride(call.caller, target.name, target.version, body));
}

HttpResponse ClearServingOverride(const RouteCall& call) {
  ASSIGN_OR_ANSWER(ObjectRef target, OverrideTarget(call));
  return AfterOverrideChange(
      call, call.hub.repository.ClearServingOverride(call.caller, target.name, target.version));
}

}  // namespace orrery
