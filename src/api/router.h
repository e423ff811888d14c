// Router: maps HTTP requests onto Repository calls (docs/api.md).
//
// The router authenticates every request except liveness, parses names and
// bodies, and turns each Status into {"error": ...} with its HTTP status.
// Ownership: borrows the Repository, which must outlive it.
// Thread-safety: Handle() is called concurrently from the server's threads;
// the router holds no mutable state.
#pragma once

#include "api/http.h"
#include "api/server.h"
#include "repository/repository.h"

namespace orrery {

class Router {
 public:
  Router(Repository& repository, const ServerOptions& options)
      : repository_(repository), options_(options) {}

  // True for routes whose body is a package archive (streamed to a file).
  static bool IsUpload(const std::string& method, const std::vector<std::string>& segments);
  // Authenticates the "Authorization: Bearer ..." header value.
  Result<Caller> Authenticate(const std::string& authorization) const;

  HttpResponse Handle(const HttpRequest& request) const;

 private:
  HttpResponse HandleApi(const HttpRequest& request, const Caller& caller) const;
  HttpResponse HandleAdmin(const HttpRequest& request, const Caller& caller) const;
  HttpResponse HandleObjects(const HttpRequest& request, const Caller& caller) const;
  HttpResponse HandleVersion(const HttpRequest& request, const Caller& caller) const;

  Repository& repository_;
  const ServerOptions& options_;
};

}  // namespace orrery
