// The routes of `orrery serve` (docs/api.md, docs/inference.md): one table
// of (method, path pattern, who may call, body policy, handler). The
// transport reads it when a request head arrives (how to take the body,
// before a byte of it is read), the router dispatches from it, `orrery
// routes` prints it, and the end-to-end route matrix
// (tests/e2e/test_route_matrix.py) fails for a route it has no entry for.
//
// Patterns are "/"-separated segments, matched against the percent-decoded
// segments of the request path:
//   literal      matches itself
//   {name}       captures one segment
//   {name:a|b}   captures one segment that is one of the listed words
//   {model}      captures one or two segments joined by "/" (the Open
//                Inference Protocol's model name may be "tenant/name" raw)
// Routes are tried in table order; the first whose method and whole pattern
// match wins, so a specific pattern comes before a general one that would
// also match ("/v2/models/stats" before "/v2/models/{model}"). A HEAD
// request matches the GET routes (the transport sends no body).
//
// `access` says who may call the route. Only kAnyone is the router's to
// enforce (no token is asked); every other route needs a valid token, and the
// role and object checks are the repository's and the model manager's, so
// that an invisible object answers exactly like an absent one.
//
// Thread-safety: the table is immutable; MatchRoute is a pure function.
#pragma once

#include <atomic>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "api/async_requests.h"
#include "api/http.h"
#include "api/server.h"
#include "jobs/job_service.h"
#include "repository/repository.h"
#include "serving/inference_service.h"
#include "serving/model_manager.h"

namespace orrery {

// How the transport takes a request's body.
enum class BodyPolicy {
  kJson,       // in memory, at most --max-json-bytes (413 beyond)
  kInference,  // in memory, at most --max-infer-bytes
  kUpload,     // a package: authenticated from the head, then streamed to a
               // file under the data directory, at most --max-upload-bytes
};

// Who may call a route (docs/api.md's "Role" column).
enum class Access {
  kAnyone,    // no token (liveness only)
  kAnyToken,  // any valid token; answers hold only what the caller may see
  kReader,    // a reader of a tenant that can see the object (or its own)
  kPublisher, // a publisher or admin of the object's tenant
  kAdmin,     // an admin of the tenant (the hub admin for any tenant)
  kHubAdmin,  // the hub admin only
};
std::string_view AccessName(Access access);  // "anyone", "any token", "reader", ...

// What a handler works with.
struct Hub {
  Repository& repository;
  ModelManager& models;
  const ServerOptions& options;
  const std::atomic<bool>& stopping;  // set once on SIGTERM/SIGINT: readiness turns false
  AsyncRequests& async;               // answers of asynchronous inference requests
  InferenceService& inference;        // the Open Inference Protocol's operations
  JobService& jobs;                   // training jobs
};

// One request being handled. Async handlers may move from `request`.
struct RouteCall {
  HttpRequest& request;
  const Caller& caller;  // valid during the handler call only
  const Hub& hub;
  const std::string& Param(std::string_view name) const { return request.params.Get(name); }
};

// Answers through `respond`, at once or later, exactly once.
using RouteHandler = void (*)(RouteCall& call, Responder respond);

struct Route {
  std::string_view method;
  std::string_view pattern;
  Access access;
  BodyPolicy body;
  RouteHandler handler;
  bool probe = false;  // liveness or readiness: answered while the server stops
};

// Every route, in matching order.
std::span<const Route> Routes();

// Whether a caller without a token may use `route` where the operator
// allows public read (ServerOptions::public_read): the routes that read,
// download, cite, search, describe and run objects. The caller then sees
// public objects only; everything else needs a token as always.
bool OpenToPublicRead(const Route* route);

// Whether `route` is answered while the server stops (liveness and
// readiness); every other request then gets 503.
bool AnswersWhileStopping(const Route* route);

// Whether a request body of `content_type` (the header's value, "" when
// absent) may go to a route taking `body`: a JSON route takes
// application/json (or any "+json" type) or no Content-Type; an inference
// route also application/octet-stream (the binary tensor extension). Other
// types, above all the ones a web page may post cross-site without asking
// (text/plain, application/x-www-form-urlencoded, multipart/form-data), are
// kUnsupportedMediaType (415). Packages (kUpload) take any type.
Status CheckContentType(BodyPolicy body, std::string_view content_type);

// The route of exactly `method` and `pattern` as the table spells them;
// null when there is none. The gRPC service names the REST route each RPC
// stands for with it, so that both are admitted alike.
const Route* FindRoute(std::string_view method, std::string_view pattern);

// The first route matching `method` and `segments`, its captures in
// `params` (cleared first); null when none matches.
const Route* MatchRoute(std::string_view method, const std::vector<std::string>& segments,
                        RouteParams* params);

}  // namespace orrery
