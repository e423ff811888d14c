// Router: maps HTTP requests onto Repository and ModelManager calls
// (docs/api.md, and the Open Inference Protocol under /v2).
//
// The router authenticates every request except liveness, parses names and
// bodies, and turns each Status into {"error": ...} with its HTTP status.
// Inference, verify and explicit loads answer asynchronously (the request
// thread never waits on a model); everything else answers at once.
// Ownership: borrows the Repository and the ModelManager, which must
// outlive it.
// Thread-safety: HandleAsync() is called concurrently from the server's
// threads; the router holds no mutable state.
#pragma once

#include "api/http.h"
#include "api/server.h"
#include "repository/repository.h"
#include "serving/model_manager.h"

namespace orrery {

class Router {
 public:
  Router(Repository& repository, ModelManager& models, const ServerOptions& options)
      : repository_(repository), models_(models), options_(options) {}

  // Called exactly once per request, from any thread.
  using Responder = std::function<void(HttpResponse)>;

  // True for routes whose body is a package archive (streamed to a file).
  static bool IsUpload(const std::string& method, const std::vector<std::string>& segments);
  // Authenticates the "Authorization: Bearer ..." header value.
  Result<Caller> Authenticate(std::string_view authorization) const;

  // Answers through `respond`, at once or later.
  void HandleAsync(HttpRequest request, Responder respond) const;
  // The synchronous routes.
  HttpResponse Handle(const HttpRequest& request) const;

 private:
  // /v2 (routes_v2.cc) and inference (routes_infer.cc).
  HttpResponse HandleV2(const HttpRequest& request, const Caller& caller) const;
  HttpResponse ModelMetadata(const struct ModelPath& path, const Caller& caller) const;
  HttpResponse ModelReady(const struct ModelPath& path, const Caller& caller) const;
  HttpResponse ModelStats(const HttpRequest& request, const Caller& caller) const;
  HttpResponse RepositoryIndex(const HttpRequest& request, const Caller& caller) const;
  HttpResponse RepositoryUnload(const struct ModelPath& path, const Caller& caller) const;
  HttpResponse Metrics(const Caller& caller) const;
  void RepositoryLoad(const struct ModelPath& path, const Caller& caller, Responder respond) const;
  void Infer(HttpRequest request, const Caller& caller, Responder respond) const;
  void Verify(const HttpRequest& request, const Caller& caller, Responder respond) const;

  HttpResponse HandleApi(const HttpRequest& request, const Caller& caller) const;
  HttpResponse HandleAdmin(const HttpRequest& request, const Caller& caller) const;
  HttpResponse HandleObjects(const HttpRequest& request, const Caller& caller) const;
  HttpResponse HandleVersion(const HttpRequest& request, const Caller& caller) const;

  Repository& repository_;
  ModelManager& models_;
  const ServerOptions& options_;
};

}  // namespace orrery
