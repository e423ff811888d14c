// Servable and dataset routes: publish, list, search, describe, download,
// aliases, visibility, shares and deletes.
#include "api/route_util.h"
#include "api/router.h"
#include "core/hash.h"

namespace orrery {
namespace {

Result<ListQuery> ListQueryFrom(const HttpRequest& request) {
  ListQuery query;
  query.tenant = request.Query("tenant");
  query.backend = request.Query("backend");
  query.task = request.Query("task");
  query.domain = request.Query("domain");
  query.tag = request.Query("tag");
  query.text = request.Query("q");
  ASSIGN_OR_RETURN(query.page, ParseInt(request.Query("page"), "page", 1));
  ASSIGN_OR_RETURN(query.per_page, ParseInt(request.Query("per_page"), "per_page", 20));
  std::string kind = request.Query("kind");
  if (kind == "servable")
    query.kind = PackageKind::kServable;
  else if (kind == "dataset")
    query.kind = PackageKind::kDataset;
  else if (!kind.empty())
    return InvalidArgument("kind must be servable or dataset");
  return query;
}

Result<PublishOptions> PublishOptionsFrom(const HttpRequest& request) {
  PublishOptions options;
  std::string digest(request.Header("x-orrery-sha256"));
  if (!digest.empty()) {
    options.expected_sha256 = NormalizeSha256(digest);
    if (options.expected_sha256.empty()) {
      return InvalidArgument("X-Orrery-Sha256 must be 64 hex characters");
    }
  }
  std::string visibility = request.Query("visibility");
  if (!visibility.empty()) options.visibility = visibility;
  std::string if_changed = request.Query("if_changed");
  options.if_changed = if_changed == "true" || if_changed == "1";
  return options;
}

}  // namespace

HttpResponse Router::HandleObjects(const HttpRequest& request, const Caller& caller) const {
  const auto& s = request.segments;
  const std::string& m = request.method;
  if (s.size() == 3 && m == "GET") {
    Result<ListQuery> query = ListQueryFrom(request);
    if (!query.ok()) return HttpResponse::Error(query.status());
    if (s[2] == "search") return Respond(repository_.Search(caller, *query));
    Result<PackageKind> kind = KindFromSegment(s[2]);
    if (!kind.ok()) return HttpResponse::Error(kind.status());
    query->kind = *kind;
    return Respond(repository_.List(caller, *query));
  }
  if (s.size() < 5 || s[2] == "search") {
    return HttpResponse::Error(NotFound("no route for " + m + " /api/v1/" + s[2]));
  }
  Result<PackageKind> kind = KindFromSegment(s[2]);
  if (!kind.ok()) return HttpResponse::Error(kind.status());
  Status valid = ValidateTenantName(s[3]);
  if (valid.ok()) valid = ValidateObjectName(s[4]);
  if (!valid.ok()) return HttpResponse::Error(valid);
  QualifiedName name{s[3], s[4]};

  if (s.size() == 5) {
    if (m == "GET") return Respond(repository_.Describe(caller, *kind, name));
    if (m == "DELETE") return Respond(repository_.DeleteObject(caller, *kind, name));
  }
  if (s.size() >= 6 && s[5] == "versions") {
    if (s.size() == 6 && m == "POST") {
      Result<PublishOptions> options = PublishOptionsFrom(request);
      if (!options.ok()) return HttpResponse::Error(options.status());
      Result<PublishResult> published =
          repository_.Publish(caller, *kind, name, request.body_file, *options);
      if (!published.ok()) return HttpResponse::Error(published.status());
      return HttpResponse::Json(published->created ? 201 : 200, published->version);
    }
    if (s.size() >= 7) return HandleVersion(request, caller);
  }
  if (s.size() == 7 && s[5] == "aliases") {
    if (m == "PUT") {
      Result<nlohmann::json> body = ParseJsonObject(request);
      if (!body.ok()) return HttpResponse::Error(body.status());
      auto version = body->find("version");
      if (version == body->end() || !version->is_number_integer()) {
        return HttpResponse::Error(InvalidArgument("field 'version' must be an integer"));
      }
      return Respond(repository_.SetAlias(caller, *kind, name, s[6], version->get<int64_t>()));
    }
    if (m == "DELETE") return Respond(repository_.DeleteAlias(caller, *kind, name, s[6]));
  }
  if (s.size() == 6 && s[5] == "visibility" && m == "PUT") {
    Result<nlohmann::json> body = ParseJsonObject(request);
    if (!body.ok()) return HttpResponse::Error(body.status());
    Result<std::string> visibility = StringField(*body, "visibility");
    if (!visibility.ok()) return HttpResponse::Error(visibility.status());
    return Respond(repository_.SetVisibility(caller, *kind, name, *visibility));
  }
  if (s.size() == 6 && s[5] == "shares" && m == "POST") {
    Result<nlohmann::json> body = ParseJsonObject(request);
    if (!body.ok()) return HttpResponse::Error(body.status());
    Result<std::string> tenant = StringField(*body, "tenant");
    if (!tenant.ok()) return HttpResponse::Error(tenant.status());
    return Respond(repository_.AddShare(caller, *kind, name, *tenant));
  }
  if (s.size() == 7 && s[5] == "shares" && m == "DELETE") {
    return Respond(repository_.RemoveShare(caller, *kind, name, s[6]));
  }
  return HttpResponse::Error(NotFound("no route for " + m + " on " + name.ToString()));
}

HttpResponse Router::HandleVersion(const HttpRequest& request, const Caller& caller) const {
  const auto& s = request.segments;
  const std::string& m = request.method;
  PackageKind kind = *KindFromSegment(s[2]);
  QualifiedName name{s[3], s[4]};
  Result<VersionRef> version = ParseVersionRef(s[6]);
  if (!version.ok()) return HttpResponse::Error(version.status());
  if (s.size() == 7) {
    if (m == "GET") return Respond(repository_.DescribeVersion(caller, kind, name, *version));
    if (m == "DELETE") return Respond(repository_.DeleteVersion(caller, kind, name, *version));
  }
  if (s.size() == 8 && s[7] == "archive" && m == "GET") {
    Result<std::filesystem::path> archive = repository_.ExportArchive(caller, kind, name, *version);
    if (!archive.ok()) return HttpResponse::Error(archive.status());
    HttpResponse response;
    response.content_type = "application/x-tar";
    response.file = *archive;
    response.headers.emplace_back("Content-Disposition",
                                  "attachment; filename=\"" + name.name + "-" + s[6] + ".tar\"");
    return response;
  }
  return HttpResponse::Error(NotFound("no route for " + m + " on " + name.ToString()));
}

}  // namespace orrery
