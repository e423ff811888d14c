// Servable and dataset routes: publish, list, search, describe, download,
// aliases, visibility, shares and deletes.
#include "api/route_handlers.h"
#include "api/route_util.h"
#include "core/hash.h"
#include "repository/citation.h"

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

// A boolean query parameter: true/1 or false/0; `absent` when not given.
Result<bool> BoolQuery(const HttpRequest& request, const std::string& name, bool absent) {
  std::string value = request.Query(name);
  if (value.empty()) return absent;
  if (value == "true" || value == "1") return true;
  if (value == "false" || value == "0") return false;
  return InvalidArgument(name + " must be true or false, not '" + value + "'");
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
  ASSIGN_OR_RETURN(options.if_changed, BoolQuery(request, "if_changed", false));
  ASSIGN_OR_RETURN(options.check, BoolQuery(request, "check", true));
  ASSIGN_OR_RETURN(options.dry_run, BoolQuery(request, "dry_run", false));
  return options;
}

}  // namespace

HttpResponse List(const RouteCall& call) {
  Result<ListQuery> query = ListQueryFrom(call.request);
  if (!query.ok()) return HttpResponse::Error(query.status());
  query->kind = call.Param("kind") == "datasets" ? PackageKind::kDataset : PackageKind::kServable;
  return Respond(call.hub.repository.List(call.caller, *query));
}

HttpResponse Search(const RouteCall& call) {
  Result<ListQuery> query = ListQueryFrom(call.request);
  if (!query.ok()) return HttpResponse::Error(query.status());
  return Respond(call.hub.repository.Search(call.caller, *query));
}

HttpResponse Describe(const RouteCall& call) {
  ASSIGN_OR_ANSWER(ObjectRef object, ObjectFrom(call));
  return Respond(call.hub.repository.Describe(call.caller, object.kind, object.name));
}

HttpResponse DeleteObject(const RouteCall& call) {
  ASSIGN_OR_ANSWER(ObjectRef object, ObjectFrom(call));
  return Respond(call.hub.repository.DeleteObject(call.caller, object.kind, object.name));
}

HttpResponse Publish(const RouteCall& call) {
  ASSIGN_OR_ANSWER(ObjectRef object, ObjectFrom(call));
  ASSIGN_OR_ANSWER(PublishOptions options, PublishOptionsFrom(call.request));
  ASSIGN_OR_ANSWER(PublishResult published,
                   call.hub.repository.Publish(call.caller, object.kind, object.name,
                                               call.request.body_file, options));
  return HttpResponse::Json(published.created ? 201 : 200, published.version);  // dry run: 200
}

HttpResponse DescribeVersion(const RouteCall& call) {
  ASSIGN_OR_ANSWER(ObjectRef object, ObjectFrom(call));
  return Respond(
      call.hub.repository.DescribeVersion(call.caller, object.kind, object.name, object.version));
}

HttpResponse DeleteVersion(const RouteCall& call) {
  ASSIGN_OR_ANSWER(ObjectRef object, ObjectFrom(call));
  return Respond(
      call.hub.repository.DeleteVersion(call.caller, object.kind, object.name, object.version));
}

// ?format=bibtex (default) | datacite | ris
HttpResponse Cite(const RouteCall& call) {
  ASSIGN_OR_ANSWER(ObjectRef object, ObjectFrom(call));
  std::string name = call.request.Query("format");
  ASSIGN_OR_ANSWER(CitationFormat format, ParseCitationFormat(name.empty() ? "bibtex" : name));
  ASSIGN_OR_ANSWER(nlohmann::json version,
                   call.hub.repository.DescribeVersion(call.caller, object.kind, object.name,
                                                       object.version));
  HttpResponse response;
  response.content_type = CitationContentType(format);
  response.body = FormatCitation(version, format);
  return response;
}

HttpResponse ModelCard(const RouteCall& call) {
  ASSIGN_OR_ANSWER(ObjectRef object, ObjectFrom(call));
  ASSIGN_OR_ANSWER(std::string text, call.hub.repository.ReadModelCard(
                                         call.caller, object.kind, object.name, object.version));
  HttpResponse response;
  response.content_type = "text/markdown; charset=utf-8";
  response.body = std::move(text);
  return response;
}

HttpResponse DownloadArchive(const RouteCall& call) {
  ASSIGN_OR_ANSWER(ObjectRef object, ObjectFrom(call));
  ASSIGN_OR_ANSWER(std::filesystem::path archive,
                   call.hub.repository.ExportArchive(call.caller, object.kind, object.name,
                                                     object.version));
  HttpResponse response;
  response.content_type = "application/x-tar";
  response.file = archive;
  response.headers.emplace_back("Content-Disposition", "attachment; filename=\"" +
                                                           object.name.name + "-" +
                                                           call.Param("version") + ".tar\"");
  return response;
}

HttpResponse SetAlias(const RouteCall& call) {
  ASSIGN_OR_ANSWER(ObjectRef object, ObjectFrom(call));
  ASSIGN_OR_ANSWER(nlohmann::json body, ParseJsonObject(call.request));
  auto version = body.find("version");
  if (version == body.end() || !version->is_number_integer()) {
    return HttpResponse::Error(InvalidArgument("field 'version' must be an integer"));
  }
  return Respond(call.hub.repository.SetAlias(call.caller, object.kind, object.name,
                                              call.Param("alias"), version->get<int64_t>()));
}

HttpResponse DeleteAlias(const RouteCall& call) {
  ASSIGN_OR_ANSWER(ObjectRef object, ObjectFrom(call));
  return Respond(call.hub.repository.DeleteAlias(call.caller, object.kind, object.name,
                                                 call.Param("alias")));
}

HttpResponse SetVisibility(const RouteCall& call) {
  ASSIGN_OR_ANSWER(ObjectRef object, ObjectFrom(call));
  ASSIGN_OR_ANSWER(nlohmann::json body, ParseJsonObject(call.request));
  ASSIGN_OR_ANSWER(std::string visibility, StringField(body, "visibility"));
  return Respond(
      call.hub.repository.SetVisibility(call.caller, object.kind, object.name, visibility));
}

HttpResponse AddShare(const RouteCall& call) {
  ASSIGN_OR_ANSWER(ObjectRef object, ObjectFrom(call));
  ASSIGN_OR_ANSWER(nlohmann::json body, ParseJsonObject(call.request));
  ASSIGN_OR_ANSWER(std::string tenant, StringField(body, "tenant"));
  return Respond(call.hub.repository.AddShare(call.caller, object.kind, object.name, tenant));
}

HttpResponse RemoveShare(const RouteCall& call) {
  ASSIGN_OR_ANSWER(ObjectRef object, ObjectFrom(call));
  return Respond(call.hub.repository.RemoveShare(call.caller, object.kind, object.name,
                                                 call.Param("other")));
}

}  // namespace orrery
