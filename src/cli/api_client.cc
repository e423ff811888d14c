#include "cli/api_client.h"

#include "cli/url.h"

namespace orrery::cli {

namespace {

// See the header: 400 is not kInvalidArgument here.
Code CodeForHttpStatus(int status) {
  switch (status) {
    case 401: return Code::kUnauthenticated;
    case 403: return Code::kPermissionDenied;
    case 404: return Code::kNotFound;
    case 409: return Code::kConflict;
    case 413: return Code::kTooLarge;
    case 415: return Code::kUnsupportedMediaType;
    case 400:
    case 422: return Code::kUnprocessable;
    case 503: return Code::kUnavailable;
    default: return Code::kInternal;
  }
}

Result<nlohmann::json> ParseJson(const HttpResponse& response) {
  nlohmann::json value = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    return Internal("the server answered HTTP " + std::to_string(response.status) +
                    " with a body that is not JSON");
  }
  return value;
}

}  // namespace

Status ServerError(int http_status, const std::string& body) {
  nlohmann::json parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  std::string message;
  if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_string()) {
    message = parsed["error"].get<std::string>();
  } else {
    message = body.substr(0, 200);
    if (message.empty()) message = "request failed";
  }
  return Status(CodeForHttpStatus(http_status),
                message + " (HTTP " + std::to_string(http_status) + ")");
}

Result<std::unique_ptr<ApiClient>> ApiClient::Create(const ClientOptions& options,
                                                     const EnvLookup& env) {
  ASSIGN_OR_RETURN(std::string token, DiscoverToken(options, env));
  HttpClientOptions http_options;
  http_options.url = ResolveServerUrl(options, env);
  http_options.timeout_s = options.timeout_s;
  ASSIGN_OR_RETURN(std::unique_ptr<HttpClient> http, HttpClient::Create(http_options));
  return std::unique_ptr<ApiClient>(new ApiClient(std::move(http), std::move(token)));
}

Result<HttpResponse> ApiClient::Send(HttpRequest request) {
  request.headers.emplace_back("Authorization", "Bearer " + token_);
  ASSIGN_OR_RETURN(HttpResponse response, http_->Send(request));
  if (response.status / 100 != 2) return ServerError(response.status, response.body);
  return response;
}

Result<nlohmann::json> ApiClient::Call(const std::string& method, const std::string& target,
                                       const nlohmann::json& body) {
  HttpRequest request;
  request.method = method;
  request.target = target;
  request.headers.emplace_back("Accept", "application/json");
  if (!body.is_null()) {
    request.body = body.dump();
    request.headers.emplace_back("Content-Type", "application/json");
  }
  ASSIGN_OR_RETURN(HttpResponse response, Send(std::move(request)));
  return ParseJson(response);
}

Result<HttpResponse> ApiClient::Get(const std::string& target) {
  HttpRequest request;
  request.method = "GET";
  request.target = target;
  return Send(std::move(request));
}

Result<std::string> ApiClient::GetText(const std::string& target) {
  ASSIGN_OR_RETURN(HttpResponse response, Get(target));
  return std::move(response.body);
}

Result<nlohmann::json> ApiClient::Upload(const std::string& target,
                                         const std::filesystem::path& file,
                                         std::vector<std::pair<std::string, std::string>> headers) {
  HttpRequest request;
  request.method = "POST";
  request.target = target;
  request.body_file = file;
  request.headers = std::move(headers);
  ASSIGN_OR_RETURN(HttpResponse response, Send(std::move(request)));
  return ParseJson(response);
}

Result<HttpResponse> ApiClient::Post(const std::string& target, std::string body,
                                     std::vector<std::pair<std::string, std::string>> headers) {
  HttpRequest request;
  request.method = "POST";
  request.target = target;
  request.body = std::move(body);
  request.headers = std::move(headers);
  return Send(std::move(request));
}

Status ApiClient::Download(const std::string& target, const std::filesystem::path& file) {
  HttpRequest request;
  request.target = target;
  request.response_file = file;
  return Send(std::move(request)).status();
}

Result<std::string> ApiClient::OwnTenant() {
  if (own_tenant_.empty()) {
    ASSIGN_OR_RETURN(nlohmann::json whoami, Call("GET", ApiPath({"whoami"})));
    if (!whoami.contains("tenant") || !whoami["tenant"].is_string()) {
      return Internal("whoami: the server's answer has no tenant");
    }
    own_tenant_ = whoami["tenant"].get<std::string>();
  }
  return own_tenant_;
}

Status ApiClient::CompleteTenant(ObjectRef& ref) {
  if (!ref.tenant.empty()) return Status::Ok();
  ASSIGN_OR_RETURN(ref.tenant, OwnTenant());
  return Status::Ok();
}

}  // namespace orrery::cli
