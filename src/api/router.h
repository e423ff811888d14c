// Router: authenticates a request and hands it to its route's handler
// (route_table.h; docs/api.md, and the Open Inference Protocol under /v2).
//
// Every route but liveness needs a token; a request no route matches is 404
// after authentication, so that probing paths without a token learns
// nothing. Handlers turn each Status into {"error": ...} with its HTTP
// status. Inference, verify and explicit loads answer asynchronously (the
// request thread never waits on a model); everything else answers at once.
// Ownership: borrows the Repository, the ModelManager, the JobService and the options, which
// must outlive it.
// Owns the answers of asynchronous inference requests (AsyncRequests) and
// the InferenceService the routes call.
// Thread-safety: HandleAsync() is called concurrently from the server's
// threads; the router's only mutable state is that thread-safe store.
#pragma once

#include "api/http.h"
#include "api/route_table.h"
#include "api/server.h"
#include "repository/repository.h"
#include "serving/model_manager.h"

namespace orrery {

class Router {
 public:
  // `stopping` is set when the server begins to stop (readiness answers 503).
  Router(Repository& repository, ModelManager& models, JobService& jobs,
         const ServerOptions& options, const std::atomic<bool>& stopping)
      : async_(AsyncRequests::Options{options.async_max_pending, options.async_max_bytes,
                                      std::chrono::seconds(options.async_keep_s)}),
        resolver_(models),
        inference_(models, repository, resolver_),
        hub_{repository, models, options, stopping, async_, inference_, jobs} {}

  using Responder = orrery::Responder;

  // Authenticates the "Authorization: Bearer ..." header value.
  Result<Caller> Authenticate(std::string_view authorization) const;
  // Who calls `route` with `authorization` (a header or gRPC metadata value,
  // "" when absent): nobody's caller on liveness, and on the routes open to
  // public read when the operator allows it and no token is sent; otherwise
  // the token's (kUnauthenticated when missing or invalid). REST and gRPC
  // decide here alike.
  Result<Caller> CallerFor(const Route* route, std::string_view authorization) const;
  // What the handlers work with; the gRPC service calls the same services.
  const Hub& hub() const { return hub_; }
  // Whether a package upload of `bytes` (0: unknown, chunked) may start:
  // kInsufficientStorage when it would eat into the free-space reserve.
  Status CheckUploadRoom(uint64_t bytes) const { return hub_.repository.CheckRoomFor(bytes); }

  // Answers through `respond`, at once or later. `request.route` and
  // `request.params` are the transport's MatchRoute of the request.
  void HandleAsync(HttpRequest request, Responder respond) const;

 private:
  AsyncRequests async_;
  CatalogResolver resolver_;
  InferenceService inference_;
  Hub hub_;
};

}  // namespace orrery
