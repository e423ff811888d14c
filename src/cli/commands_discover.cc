// `orrery list` and `orrery search`: pages of servables and datasets.
#include <iostream>

#include "cli/commands.h"
#include "cli/output.h"
#include "cli/url.h"

namespace orrery::cli {

using nlohmann::json;

namespace {

struct DiscoverArgs {
  std::vector<std::string> words;  // search only
  std::string kind;
  std::string tenant;
  std::string backend;
  std::string task;
  std::string domain;
  std::string tag;
  int page = 0;      // 0: the server's default
  int per_page = 0;  // 0: the server's default
};

Query FilterQuery(const DiscoverArgs& args) {
  return {{"tenant", args.tenant},
          {"backend", args.backend},
          {"task", args.task},
          {"domain", args.domain},
          {"tag", args.tag},
          {"page", args.page > 0 ? std::to_string(args.page) : ""},
          {"per_page", args.per_page > 0 ? std::to_string(args.per_page) : ""}};
}

// The page as a table; `ranked` adds the rank and the kind (search mixes kinds).
void PrintPage(const json& page, bool ranked) {
  std::vector<std::string> header = {"NAME", "VERSION", "BACKEND", "TASK", "TITLE"};
  if (ranked) header.insert(header.begin(), "#");
  if (ranked) header.insert(header.begin() + 2, "KIND");
  Table table(header);
  int64_t per_page = page.value("per_page", int64_t{0});
  int64_t first = (page.value("page", int64_t{1}) - 1) * per_page + 1;
  for (const json& item : page.value("items", json::array())) {
    std::vector<std::string> row = {Field(item, "tenant") + "/" + Field(item, "name"),
                                    Field(item, "latest_version"), Field(item, "backend"),
                                    Field(item, "task"), Field(item, "title")};
    if (ranked) row.insert(row.begin(), std::to_string(first + table.size()));
    if (ranked) row.insert(row.begin() + 2, Field(item, "kind"));
    table.AddRow(std::move(row));
  }
  if (table.size() > 0) table.Print(std::cout);
  int64_t total = page.value("total", int64_t{0});
  std::cout << table.size() << " of " << total << " (page " << Field(page, "page", "1") << ")";
  if (first - 1 + static_cast<int64_t>(table.size()) < total) std::cout << "; more with --page";
  std::cout << std::endl;
}

Status Show(const json& page, const ClientOptions& options, bool ranked) {
  if (options.json) {
    PrintJson(page);
  } else {
    PrintPage(page, ranked);
  }
  return Status::Ok();
}

Status RunList(ApiClient& api, const ClientOptions& options, const DiscoverArgs& args) {
  ASSIGN_OR_RETURN(std::string kind, PluralKind(args.kind.empty() ? "servables" : args.kind));
  if (!args.tenant.empty()) RETURN_IF_ERROR(ValidateTenantName(args.tenant));
  ASSIGN_OR_RETURN(json page, api.Call("GET", ApiPath({kind}, FilterQuery(args))));
  return Show(page, options, /*ranked=*/false);
}

Status RunSearch(ApiClient& api, const ClientOptions& options, const DiscoverArgs& args) {
  ASSIGN_OR_RETURN(std::string kind, SingularKind(args.kind));
  if (!args.tenant.empty()) RETURN_IF_ERROR(ValidateTenantName(args.tenant));
  std::string words;
  for (const std::string& word : args.words) words += (words.empty() ? "" : " ") + word;
  Query query = {{"q", words}, {"kind", kind}};
  for (auto& filter : FilterQuery(args)) query.push_back(std::move(filter));
  ASSIGN_OR_RETURN(json page, api.Call("GET", ApiPath({"search"}, query)));
  return Show(page, options, /*ranked=*/true);
}

void AddFilters(CLI::App& command, DiscoverArgs& args) {
  command.add_option("--tenant", args.tenant, "only this tenant's objects");
  command.add_option("--backend", args.backend, "only servables with this backend");
  command.add_option("--task", args.task, "only variants of this task");
  command.add_option("--domain", args.domain, "only this domain");
  command.add_option("--tag", args.tag, "only objects with this tag");
  command.add_option("--page", args.page, "page number, from 1")->check(CLI::PositiveNumber);
  command.add_option("--per-page", args.per_page, "items per page, 1-100")
      ->check(CLI::Range(1, 100));
}

}  // namespace

void AddDiscoverCommands(CLI::App& app, CommandSet& set) {
  auto list = std::make_shared<DiscoverArgs>();
  CLI::App* l = AddClientCommand(
      app, set, "list",
      "List the servables or datasets you can see. Filters look at the metadata of each one's "
      "latest version.",
      [list](ApiClient& api, const ClientOptions& o) { return RunList(api, o, *list); });
  l->add_option("--kind", list->kind, "servables (default) or datasets");
  AddFilters(*l, *list);

  auto search = std::make_shared<DiscoverArgs>();
  CLI::App* s = AddClientCommand(
      app, set, "search",
      "Search servables and datasets by words, best match first. Full-text over names, titles, "
      "descriptions, creators and tags; words match as prefixes.",
      [search](ApiClient& api, const ClientOptions& o) { return RunSearch(api, o, *search); });
  s->add_option("QUERY", search->words, "words to look for")->required();
  s->add_option("--kind", search->kind, "servable or dataset (default: both)");
  AddFilters(*s, *search);
}

}  // namespace orrery::cli
