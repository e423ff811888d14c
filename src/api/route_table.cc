// The route table and its matcher (contract in route_table.h). The handlers
// are in routes_*.cc, declared in route_handlers.h.
#include "api/route_table.h"

#include <algorithm>

#include "api/route_handlers.h"
#include "core/text.h"

namespace orrery {
namespace {

// A handler that answers at once.
template <HttpResponse (*F)(const RouteCall&)>
void Now(RouteCall& call, Responder respond) {
  respond(F(call));
}

using A = Access;
using B = BodyPolicy;
constexpr std::string_view kObject = "/api/v1/{kind:servables|datasets}/{tenant}/{name}";

// In matching order: a specific pattern before a general one that also matches.
const Route kRoutes[] = {
    // The Open Inference Protocol (docs/inference.md). Inference first: it is
    // the path that has to be fast.
    {"POST", "/v2/models/{model}/versions/{version}/infer", A::kReader, B::kInference, Infer},
    {"POST", "/v2/models/{model}/infer", A::kReader, B::kInference, Infer},
    {"POST", "/v2/models/{model}/versions/{version}/infer-async", A::kReader, B::kInference,
     InferAsync},
    {"POST", "/v2/models/{model}/infer-async", A::kReader, B::kInference, InferAsync},
    {"GET", "/v2/health/live", A::kAnyone, B::kJson, Now<ServerLive>, /*probe=*/true},
    {"GET", "/v2/health/ready", A::kAnyToken, B::kJson, Now<ServerReady>, /*probe=*/true},
    {"GET", "/v2", A::kAnyToken, B::kJson, Now<ServerMetadata>},
    {"GET", "/v2/models/stats", A::kAnyToken, B::kJson, Now<ModelStats>},
    {"GET", "/v2/models/{model}/versions/{version}/stats", A::kReader, B::kJson, Now<ModelStats>},
    {"GET", "/v2/models/{model}/stats", A::kReader, B::kJson, Now<ModelStats>},
    {"GET", "/v2/models/{model}/versions/{version}/config", A::kReader, B::kJson,
     Now<ModelConfig>},
    {"GET", "/v2/models/{model}/config", A::kReader, B::kJson, Now<ModelConfig>},
    {"GET", "/v2/models/{model}/versions/{version}/ready", A::kReader, B::kJson, Now<ModelReady>},
    {"GET", "/v2/models/{model}/ready", A::kReader, B::kJson, Now<ModelReady>},
    {"GET", "/v2/models/{model}/versions/{version}", A::kReader, B::kJson, Now<ModelMetadata>},
    {"GET", "/v2/models/{model}", A::kReader, B::kJson, Now<ModelMetadata>},
    {"POST", "/v2/repository/index", A::kAnyToken, B::kJson, Now<RepositoryIndex>},
    {"POST", "/v2/repository/models/{model}/versions/{version}/load", A::kReader, B::kJson,
     RepositoryLoad},
    {"POST", "/v2/repository/models/{model}/load", A::kReader, B::kJson, RepositoryLoad},
    {"POST", "/v2/repository/models/{model}/versions/{version}/unload", A::kPublisher, B::kJson,
     Now<RepositoryUnload>},
    {"POST", "/v2/repository/models/{model}/unload", A::kPublisher, B::kJson,
     Now<RepositoryUnload>},
    {"GET", "/metrics", A::kAnyToken, B::kJson, Now<Metrics>},

    // The REST API (docs/api.md).
    {"GET", "/api/v1/whoami", A::kAnyToken, B::kJson, Now<Whoami>},
    {"GET", "/api/v1/environments", A::kAnyToken, B::kJson, Now<ListEnvironments>},
    {"GET", "/api/v1/requests/{id}", A::kReader, B::kJson, Now<RequestAnswer>},
    {"GET", "/api/v1/tenants", A::kHubAdmin, B::kJson, Now<ListTenants>},
    {"POST", "/api/v1/tenants", A::kHubAdmin, B::kJson, Now<CreateTenant>},
    {"GET", "/api/v1/tokens", A::kAdmin, B::kJson, Now<ListTokens>},
    {"POST", "/api/v1/tokens", A::kAdmin, B::kJson, Now<CreateToken>},
    {"DELETE", "/api/v1/tokens/{id}", A::kAdmin, B::kJson, Now<RevokeToken>},
    {"GET", "/api/v1/audit", A::kAdmin, B::kJson, Now<Audit>},
    {"POST", "/api/v1/admin/gc", A::kHubAdmin, B::kJson, Now<CollectGarbage>},
    {"GET", "/api/v1/admin/check", A::kHubAdmin, B::kJson, Now<Check>},
    {"GET", "/api/v1/admin/serving/{tenant}/{name}/versions/{version}", A::kAdmin, B::kJson,
     Now<GetServingOverride>},
    {"PUT", "/api/v1/admin/serving/{tenant}/{name}/versions/{version}", A::kAdmin, B::kJson,
     Now<SetServingOverride>},
    {"DELETE", "/api/v1/admin/serving/{tenant}/{name}/versions/{version}", A::kAdmin, B::kJson,
     Now<ClearServingOverride>},
    {"POST", "/api/v1/jobs/code", A::kPublisher, B::kUpload, Now<UploadJobCode>},
    {"POST", "/api/v1/jobs", A::kPublisher, B::kJson, Now<SubmitJob>},
    {"GET", "/api/v1/jobs", A::kAnyToken, B::kJson, Now<ListJobs>},
    {"GET", "/api/v1/jobs/{id}", A::kReader, B::kJson, Now<ShowJob>},
    {"GET", "/api/v1/jobs/{id}/logs", A::kReader, B::kJson, JobLogs},
    {"GET", "/api/v1/jobs/{id}/metrics", A::kReader, B::kJson, Now<JobMetrics>},
    {"POST", "/api/v1/jobs/{id}/{action:halt|resume|cancel|rerun|publish}", A::kPublisher, B::kJson,
     Now<ChangeJob>},
    {"GET", "/api/v1/tenants/{tenant}/job-limits", A::kReader, B::kJson, Now<GetJobLimits>},
    {"PUT", "/api/v1/tenants/{tenant}/job-limits", A::kHubAdmin, B::kJson, Now<SetJobLimits>},
    {"GET", "/api/v1/search", A::kAnyToken, B::kJson, Now<Search>},
    {"GET", "/api/v1/{kind:servables|datasets}", A::kAnyToken, B::kJson, Now<List>},
    {"GET", kObject, A::kReader, B::kJson, Now<Describe>},
    {"DELETE", kObject, A::kPublisher, B::kJson, Now<DeleteObject>},
    {"POST", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/versions", A::kPublisher,
     B::kUpload, Now<Publish>},
    {"GET", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/versions/{version}", A::kReader,
     B::kJson, Now<DescribeVersion>},
    {"DELETE", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/versions/{version}",
     A::kPublisher, B::kJson, Now<DeleteVersion>},
    {"GET", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/versions/{version}/archive",
     A::kReader, B::kJson, Now<DownloadArchive>},
    {"GET", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/versions/{version}/cite", A::kReader,
     B::kJson, Now<Cite>},
    {"GET", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/cite", A::kReader, B::kJson,
     Now<Cite>},
    {"GET", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/versions/{version}/readme",
     A::kReader, B::kJson, Now<ModelCard>},
    {"GET", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/readme", A::kReader, B::kJson,
     Now<ModelCard>},
    {"PUT", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/aliases/{alias}", A::kPublisher,
     B::kJson, Now<SetAlias>},
    {"DELETE", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/aliases/{alias}", A::kPublisher,
     B::kJson, Now<DeleteAlias>},
    {"PUT", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/visibility", A::kPublisher, B::kJson,
     Now<SetVisibility>},
    {"POST", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/shares", A::kPublisher, B::kJson,
     Now<AddShare>},
    {"DELETE", "/api/v1/{kind:servables|datasets}/{tenant}/{name}/shares/{other}", A::kPublisher,
     B::kJson, Now<RemoveShare>},
    {"POST", "/api/v1/servables/{tenant}/{name}/versions/{version}/verify", A::kReader, B::kJson,
     Verify},
    {"POST", "/api/v1/servables/{tenant}/{name}/verify", A::kReader, B::kJson, Verify},
    {"GET", "/api/v1/servables/{tenant}/{name}/versions/{version}/logs", A::kPublisher, B::kJson,
     Now<WorkerLogs>},
    {"GET", "/api/v1/servables/{tenant}/{name}/logs", A::kPublisher, B::kJson, Now<WorkerLogs>},
};

// A pattern segment.
struct Part {
  enum class Kind { kLiteral, kOne, kChoice, kModel } kind;
  std::string_view text;                  // the literal, or the capture's name
  std::vector<std::string_view> choices;  // kChoice
};

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(separator, start);
    if (end == std::string_view::npos) end = text.size();
    if (end > start) parts.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

std::vector<Part> ParsePattern(std::string_view pattern) {
  std::vector<Part> parts;
  for (std::string_view segment : Split(pattern, '/')) {
    if (segment.front() != '{') {
      parts.push_back({Part::Kind::kLiteral, segment, {}});
      continue;
    }
    std::string_view inner = segment.substr(1, segment.size() - 2);
    size_t colon = inner.find(':');
    if (colon != std::string_view::npos) {
      parts.push_back({Part::Kind::kChoice, inner.substr(0, colon),
                       Split(inner.substr(colon + 1), '|')});
    } else {
      parts.push_back({inner == "model" ? Part::Kind::kModel : Part::Kind::kOne, inner, {}});
    }
  }
  return parts;
}

const std::vector<std::vector<Part>>& ParsedPatterns() {
  static const std::vector<std::vector<Part>> parsed = [] {
    std::vector<std::vector<Part>> all;
    for (const Route& route : kRoutes) all.push_back(ParsePattern(route.pattern));
    return all;
  }();
  return parsed;
}

// Whether parts[i..] match segments[j..] whole; captures go to `params`
// (and are taken back on a failed branch).
bool MatchFrom(const std::vector<Part>& parts, size_t i, const std::vector<std::string>& segments,
               size_t j, RouteParams* params) {
  if (i == parts.size()) return j == segments.size();
  if (j == segments.size()) return false;
  const Part& part = parts[i];
  const std::string& segment = segments[j];
  switch (part.kind) {
    case Part::Kind::kLiteral:
      return segment == part.text && MatchFrom(parts, i + 1, segments, j + 1, params);
    case Part::Kind::kChoice:
      if (std::find(part.choices.begin(), part.choices.end(), segment) == part.choices.end()) {
        return false;
      }
      [[fallthrough]];
    case Part::Kind::kOne:
      params->Add(part.text, segment);
      if (MatchFrom(parts, i + 1, segments, j + 1, params)) return true;
      params->PopBack();
      return false;
    case Part::Kind::kModel:
      params->Add(part.text, segment);
      if (MatchFrom(parts, i + 1, segments, j + 1, params)) return true;
      params->PopBack();
      if (j + 1 == segments.size()) return false;
      params->Add(part.text, segment + "/" + segments[j + 1]);
      if (MatchFrom(parts, i + 1, segments, j + 2, params)) return true;
      params->PopBack();
      return false;
  }
  return false;
}

}  // namespace

std::string_view AccessName(Access access) {
  switch (access) {
    case Access::kAnyone: return "anyone";
    case Access::kAnyToken: return "any token";
    case Access::kReader: return "reader";
    case Access::kPublisher: return "publisher";
    case Access::kAdmin: return "admin";
    case Access::kHubAdmin: return "hub admin";
  }
  return "?";
}

std::span<const Route> Routes() { return kRoutes; }

bool AnswersWhileStopping(const Route* route) { return route != nullptr && route->probe; }

Status CheckContentType(BodyPolicy body, std::string_view content_type) {
  if (body == BodyPolicy::kUpload) return Status::Ok();
  std::string media = AsciiLowercase(content_type.substr(0, content_type.find(';')));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.pop_back();
  if (media.empty() || media == "application/json" ||
      (media.starts_with("application/") && media.ends_with("+json"))) {
    return Status::Ok();
  }
  if (body == BodyPolicy::kInference && media == "application/octet-stream") return Status::Ok();
  std::string shown = PrintableText(content_type.substr(0, 100));
  return UnsupportedMediaType(
      std::string("this route takes a JSON body (Content-Type: application/json") +
      (body == BodyPolicy::kInference ? ", or application/octet-stream for binary tensors" : "") +
      "), not '" + shown + "'");
}

const Route* FindRoute(std::string_view method, std::string_view pattern) {
  for (const Route& route : kRoutes) {
    if (route.method == method && route.pattern == pattern) return &route;
  }
  return nullptr;
}

bool OpenToPublicRead(const Route* route) {
  static constexpr std::string_view kOpen[] = {
      "/v2/models/{model}/versions/{version}/infer",
      "/v2/models/{model}/infer",
      "/v2/health/ready",
      "/v2",
      "/v2/models/{model}/versions/{version}/ready",
      "/v2/models/{model}/ready",
      "/v2/models/{model}/versions/{version}/config",
      "/v2/models/{model}/config",
      "/v2/models/{model}/versions/{version}",
      "/v2/models/{model}",
      "/api/v1/search",
      "/api/v1/{kind:servables|datasets}",
      "/api/v1/{kind:servables|datasets}/{tenant}/{name}",
      "/api/v1/{kind:servables|datasets}/{tenant}/{name}/versions/{version}",
      "/api/v1/{kind:servables|datasets}/{tenant}/{name}/versions/{version}/archive",
      "/api/v1/{kind:servables|datasets}/{tenant}/{name}/versions/{version}/cite",
      "/api/v1/{kind:servables|datasets}/{tenant}/{name}/cite",
      "/api/v1/{kind:servables|datasets}/{tenant}/{name}/versions/{version}/readme",
      "/api/v1/{kind:servables|datasets}/{tenant}/{name}/readme",
      "/api/v1/servables/{tenant}/{name}/versions/{version}/verify",
      "/api/v1/servables/{tenant}/{name}/verify",
  };
  if (route == nullptr) return false;
  bool reads = route->method == "GET" || route->pattern.ends_with("/infer") ||
               route->pattern.ends_with("/verify");
  return reads && std::find(std::begin(kOpen), std::end(kOpen), route->pattern) != std::end(kOpen);
}

const Route* MatchRoute(std::string_view method, const std::vector<std::string>& segments,
                        RouteParams* params) {
  params->Clear();
  std::string_view as = method == "HEAD" ? std::string_view("GET") : method;
  const auto& parsed = ParsedPatterns();
  for (size_t i = 0; i < std::size(kRoutes); ++i) {
    if (kRoutes[i].method != as) continue;
    if (MatchFrom(parsed[i], 0, segments, 0, params)) return &kRoutes[i];
  }
  return nullptr;
}

}  // namespace orrery
