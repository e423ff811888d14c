// The REST API (docs/api.md) as the CLI uses it: authenticated JSON calls,
// package uploads and downloads, with the server's {"error"} answers turned
// into Status values.
//
// Error codes: a 4xx/5xx answer becomes the Code of its HTTP status, with the
// message "<server's error> (HTTP <status>)"; a 400 becomes kUnprocessable
// because the CLI reserves kInvalidArgument for its own usage errors (exit
// status 2, see ExitCodeFor in commands.h). Transport failures are
// kUnavailable.
//
// Thread-compatible: one ApiClient per thread.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/config.h"
#include "cli/http_client.h"
#include "core/status.h"

namespace orrery::cli {

class ApiClient {
 public:
  // Resolves the server URL and the token (config.h); a missing token or a
  // bad URL is kInvalidArgument.
  static Result<std::unique_ptr<ApiClient>> Create(const ClientOptions& options,
                                                   const EnvLookup& env);

  // `method` on `target` (from ApiPath) with an optional JSON body; returns
  // the answer's JSON.
  Result<nlohmann::json> Call(const std::string& method, const std::string& target,
                              const nlohmann::json& body = nullptr);

  // POSTs the file as the body with the given extra headers; returns the JSON.
  Result<nlohmann::json> Upload(const std::string& target, const std::filesystem::path& file,
                                std::vector<std::pair<std::string, std::string>> headers);

  // POSTs `body` with the given extra headers and returns the raw answer
  // (status, headers, body), for bodies that are not plain JSON such as the
  // inference protocol's binary tensor extension. 4xx/5xx become a Status
  // as for Call.
  Result<HttpResponse> Post(const std::string& target, std::string body,
                            std::vector<std::pair<std::string, std::string>> headers);

  // GETs `target` and returns its body as it is (text answers: citations,
  // model cards).
  Result<std::string> GetText(const std::string& target);
  // GETs `target` and returns the whole answer (status, headers, body);
  // 4xx/5xx become a Status as for Call.
  Result<HttpResponse> Get(const std::string& target);

  // GETs `target` and streams the body into `file`.
  Status Download(const std::string& target, const std::filesystem::path& file);

  // The tenant of the token (GET /whoami, asked at most once).
  Result<std::string> OwnTenant();

  // Fills in the token's tenant when `ref` is a bare name.
  Status CompleteTenant(ObjectRef& ref);

 private:
  ApiClient(std::unique_ptr<HttpClient> http, std::string token)
      : http_(std::move(http)), token_(std::move(token)) {}

  // The one place a request is sent: adds the token, turns 4xx/5xx into a Status.
  Result<HttpResponse> Send(HttpRequest request);

  std::unique_ptr<HttpClient> http_;
  std::string token_;
  std::string own_tenant_;  // cached whoami answer
};

// Status for an error answer: the server's {"error"} text (or the start of
// the body) and the HTTP status.
Status ServerError(int http_status, const std::string& body);

}  // namespace orrery::cli
