// POST /api/v1/servables/{tenant}/{name}[/versions/{v}]/verify: runs every
// example of the servable's manifest through the serving path and reports
// each output against the expected one, DLHub-style. 200 with "ok": false
// when an example does not reproduce; 422 when there is nothing to verify.
// The work is the InferenceService's (Verify).
#include "api/route_handlers.h"
#include "api/route_util.h"

namespace orrery {

void Verify(RouteCall& call, Responder respond) {
  Result<ObjectRef> object = ObjectFrom(call);
  if (!object.ok()) return respond(HttpResponse::Error(object.status()));
  call.hub.inference.Verify(call.caller, TargetOf(*object),
                            [respond = std::move(respond)](Result<nlohmann::json> report) {
                              respond(Respond(report));
                            });
}

}  // namespace orrery
