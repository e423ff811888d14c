// `orrery show`, `alias`, `share` and `delete`: describing and changing one
// servable or dataset.
#include <unistd.h>

#include <algorithm>
#include <iostream>

#include "cli/commands.h"
#include "cli/output.h"
#include "cli/url.h"

namespace orrery::cli {

using nlohmann::json;

namespace {

constexpr const char* kKindHelp = "servable or dataset (default: whichever exists)";

// "label:       value", skipped when value is empty.
void PrintLine(const std::string& label, const std::string& value) {
  if (value.empty()) return;
  std::string padded = label + ":";
  padded.resize(std::max<size_t>(padded.size() + 1, 13), ' ');
  std::cout << padded << value << "\n";
}

std::string Qualified(const json& object) {
  return Field(object, "tenant") + "/" + Field(object, "name");
}

// ---- show ----

void PrintObject(const json& object) {
  std::cout << Qualified(object) << " (" << Field(object, "kind") << ", "
            << Field(object, "visibility") << ")\n";
  PrintLine("created", Field(object, "created_at"));
  PrintLine("shared with", Field(object, "shared_with"));
  std::string aliases;
  json alias_map = object.value("aliases", json::object());  // items() must not outlive it
  for (const auto& [alias, version] : alias_map.items()) {
    aliases += (aliases.empty() ? "" : ", ") + alias + " -> " + version.dump();
  }
  PrintLine("aliases", aliases);
  std::cout << "\n";
  Table table({"VERSION", "SIZE", "PUBLISHED", "DIGEST", "TITLE"});
  for (const json& v : object.value("versions", json::array())) {
    table.AddRow({Field(v, "version"), HumanSize(v.value("size", 0ull)), Field(v, "published_at"),
                  Field(v, "digest").substr(0, 16), Field(v, "title")});
  }
  table.Print(std::cout);
}

// The signature's tensors, "x FP32 [-1,64]; ...", wherever the manifest keeps them.
std::string Tensors(const json& manifest, const char* side) {
  json tensors = manifest.contains(side)
                     ? manifest[side]
                     : manifest.value("signature", json::object()).value(side, json::array());
  std::string text;
  for (const json& tensor : tensors) {
    text += (text.empty() ? "" : "; ") + Field(tensor, "name") + " " + Field(tensor, "datatype") +
            " " + tensor.value("shape", json::array()).dump();
  }
  return text;
}

// What the version was made from (a training job) and what was made from it.
void PrintLineage(const json& lineage) {
  const json& from = lineage.value("made_from", json());
  if (from.is_object()) {
    PrintLine("made by", "job " + Field(from, "job") + " (" + Field(from, "name") + "), " +
                             Field(from, "attempts") + " attempts, completed " +
                             Field(from, "completed_at"));
    std::string command;
    for (const json& arg : from.value("command", json::array())) {
      command += (command.empty() ? "" : " ") + (arg.is_string() ? arg.get<std::string>() : arg.dump());
    }
    PrintLine("command", command);
    for (const json& input : from.value("inputs", json::array())) {
      std::string what = Field(input, "role") == "code" ? "code" : "input " + Field(input, "name");
      PrintLine(what, Field(input, "ref", "(an upload)") + " sha256 " + Field(input, "digest"));
    }
    if (from.contains("metrics") && !from["metrics"].is_null()) {
      PrintLine("final metrics", DumpJson(from["metrics"]));
    }
  }
  for (const json& derived : lineage.value("derived", json::array())) {
    PrintLine("made into", Field(derived, "ref") + " (as its " + Field(derived, "as") + ")");
  }
}

void PrintVersion(const json& version) {
  json manifest = version.value("manifest", json::object());
  std::cout << Qualified(version) << ":" << Field(version, "version") << " ("
            << Field(version, "kind") << ")\n";
  for (const char* key : {"title", "description"}) PrintLine(key, Field(manifest, key));
  std::string creators;
  for (const json& creator : manifest.value("creators", json::array())) {
    std::string one = Field(creator, "name");
    if (!Field(creator, "orcid").empty()) one += " (ORCID " + Field(creator, "orcid") + ")";
    if (!Field(creator, "affiliation").empty()) one += ", " + Field(creator, "affiliation");
    creators += (creators.empty() ? "" : "; ") + one;
  }
  PrintLine("creators", creators);
  PrintLine("year", Field(manifest, "year"));
  PrintLine("licence", Field(manifest, "license"));
  std::string identifiers;
  for (const json& id : manifest.value("identifiers", json::array())) {
    identifiers += (identifiers.empty() ? "" : "; ") + Field(id, "type") + " " + Field(id, "value");
  }
  PrintLine("identifiers", identifiers);
  std::string related;
  for (const json& id : manifest.value("related_identifiers", json::array())) {
    related += (related.empty() ? "" : "; ") + Field(id, "relation") + " " + Field(id, "type") +
               " " + Field(id, "value");
  }
  PrintLine("related", related);
  for (const char* key : {"backend", "task", "domain", "tags"}) {
    PrintLine(key, Field(manifest, key));
  }
  PrintLine("inputs", Tensors(manifest, "inputs"));
  PrintLine("outputs", Tensors(manifest, "outputs"));
  PrintLine("digest", Field(version, "digest"));
  PrintLine("size", HumanSize(version.value("size", 0ull)));
  PrintLine("published", Field(version, "published_at") + " by " + Field(version, "published_by"));
  PrintLine("aliases", Field(version, "aliases"));
  if (version.contains("checked") && !version["checked"].is_null()) {
    PrintLine("checked", version["checked"].get<bool>()
                             ? "yes (loaded, examples reproduced at publish)"
                             : "no (published with --no-check)");
  }
  if (version.contains("usage")) {
    PrintLine("usage", Field(version["usage"], "downloads") + " downloads, " +
                           Field(version["usage"], "inferences") + " inferences");
  }
  if (version.value("readme", false)) PrintLine("model card", "README.md (show --readme)");
  PrintLineage(version.value("lineage", json::object()));
  std::cout << "\n";
  Table table({"SHA256", "SIZE", "PATH"});
  for (const json& file : version.value("files", json::array())) {
    table.AddRow({Field(file, "sha256"), HumanSize(file.value("size", 0ull)),
                  Field(file, "path") + (file.value("executable", false) ? " (executable)" : "")});
  }
  table.Print(std::cout);
}

struct ShowArgs {
  std::string ref;
  std::string kind;
  bool readme = false;
};

Status RunShow(ApiClient& api, const ClientOptions& options, const ShowArgs& args) {
  ASSIGN_OR_RETURN(Target target, ResolveTarget(api, args.ref, args.kind, true));
  const ObjectRef& ref = target.ref;
  if (args.readme) {
    std::string version = ref.version ? ref.version->ToString() : "latest";
    ASSIGN_OR_RETURN(std::string card, api.GetText(ApiPath(
                                           {target.kind, ref.tenant, ref.name, "versions",
                                            version, "readme"})));
    if (options.json) {
      PrintJson(json{{"readme", card}});
    } else {
      std::cout << card << (card.empty() || card.back() == '\n' ? "" : "\n");
    }
    return Status::Ok();
  }
  std::string path =
      ref.version
          ? ApiPath({target.kind, ref.tenant, ref.name, "versions", ref.version->ToString()})
          : ApiPath({target.kind, ref.tenant, ref.name});
  ASSIGN_OR_RETURN(json answer, api.Call("GET", path));
  if (options.json) {
    PrintJson(answer);
  } else if (ref.version) {
    PrintVersion(answer);
  } else {
    PrintObject(answer);
  }
  return Status::Ok();
}

// ---- cite ----

struct CiteArgs {
  std::string ref;
  std::string format = "bibtex";
  std::string kind;
};

Status RunCite(ApiClient& api, const ClientOptions& options, const CiteArgs& args) {
  ASSIGN_OR_RETURN(Target target, ResolveTarget(api, args.ref, args.kind, true));
  const ObjectRef& ref = target.ref;
  std::string version = ref.version ? ref.version->ToString() : "latest";
  ASSIGN_OR_RETURN(std::string text,
                   api.GetText(ApiPath({target.kind, ref.tenant, ref.name, "versions", version,
                                        "cite"},
                                       {{"format", args.format}})));
  if (options.json) {
    PrintJson(json{{"format", args.format}, {"citation", text}});
  } else {
    std::cout << text;
  }
  return Status::Ok();
}

// ---- alias ----

struct AliasArgs {
  std::string ref;
  std::string alias;
  std::string version;
  bool remove = false;
  std::string kind;
};

// The version number `text` names: itself, or the version an alias points at.
Result<int64_t> VersionNumber(ApiClient& api, const Target& target, const std::string& text) {
  ASSIGN_OR_RETURN(VersionRef version, ParseVersionRef(text));
  if (version.is_number()) return version.number;
  ASSIGN_OR_RETURN(json found, api.Call("GET", ApiPath({target.kind, target.ref.tenant,
                                                        target.ref.name, "versions", text})));
  return found.value("version", int64_t{0});
}

Status RunAlias(ApiClient& api, const ClientOptions& options, const AliasArgs& args) {
  RETURN_IF_ERROR(ValidateAliasName(args.alias));
  if (args.remove != args.version.empty()) {
    return InvalidArgument("give either VERSION or --delete");
  }
  ASSIGN_OR_RETURN(Target target, ResolveTarget(api, args.ref, args.kind, false));
  const ObjectRef& ref = target.ref;
  std::string path = ApiPath({target.kind, ref.tenant, ref.name, "aliases", args.alias});
  json answer;
  if (args.remove) {
    ASSIGN_OR_RETURN(answer, api.Call("DELETE", path));
  } else {
    ASSIGN_OR_RETURN(int64_t number, VersionNumber(api, target, args.version));
    ASSIGN_OR_RETURN(answer, api.Call("PUT", path, json{{"version", number}}));
  }
  if (options.json) {
    PrintJson(answer);
  } else if (args.remove) {
    std::cout << ref.ToString() << ": alias " << args.alias << " deleted" << std::endl;
  } else {
    std::cout << ref.ToString() << ": " << args.alias << " -> " << Field(answer, "version")
              << std::endl;
  }
  return Status::Ok();
}

// ---- share ----

struct ShareArgs {
  std::string ref;
  std::string with;
  std::string unshare;
  bool make_public = false;
  bool make_private = false;
  std::string kind;
};

Result<json> ChangeSharing(ApiClient& api, const Target& target, const ShareArgs& args) {
  const ObjectRef& ref = target.ref;
  if (!args.with.empty()) {
    RETURN_IF_ERROR(ValidateTenantName(args.with));
    return api.Call("POST", ApiPath({target.kind, ref.tenant, ref.name, "shares"}),
                    json{{"tenant", args.with}});
  }
  if (!args.unshare.empty()) {
    RETURN_IF_ERROR(ValidateTenantName(args.unshare));
    return api.Call("DELETE", ApiPath({target.kind, ref.tenant, ref.name, "shares", args.unshare}));
  }
  return api.Call("PUT", ApiPath({target.kind, ref.tenant, ref.name, "visibility"}),
                  json{{"visibility", args.make_public ? "public" : "private"}});
}

Status RunShare(ApiClient& api, const ClientOptions& options, const ShareArgs& args) {
  int given = !args.with.empty() + !args.unshare.empty() + args.make_public + args.make_private;
  if (given != 1)
    return InvalidArgument("give exactly one of --with, --unshare, --public, --private");
  ASSIGN_OR_RETURN(Target target, ResolveTarget(api, args.ref, args.kind, false));
  ASSIGN_OR_RETURN(json answer, ChangeSharing(api, target, args));
  if (options.json) {
    PrintJson(answer);
    return Status::Ok();
  }
  std::string visibility = Field(answer, "visibility");
  std::string shared_with = Field(answer, "shared_with");
  std::cout << target.ref.ToString() << ": " << visibility;
  if (!shared_with.empty()) {
    std::cout << (visibility == "shared" ? " with " : " (and shared with ") << shared_with
              << (visibility == "shared" ? "" : ")");
  }
  std::cout << std::endl;
  return Status::Ok();
}

// ---- delete ----

struct DeleteArgs {
  std::string ref;
  std::string kind;
  bool yes = false;
};

// Without --yes, the person at a terminal must type `what` back.
Status Confirm(const std::string& what, bool yes) {
  if (yes) return Status::Ok();
  if (!::isatty(STDIN_FILENO)) {
    return InvalidArgument("refusing to delete " + what + " without --yes");
  }
  std::cerr << "Delete " << what << "? Type " << what << " to confirm: " << std::flush;
  std::string typed;
  std::getline(std::cin, typed);
  if (typed != what) return InvalidArgument("not deleted: the typed name did not match");
  return Status::Ok();
}

Status RunDelete(ApiClient& api, const ClientOptions& options, const DeleteArgs& args) {
  ASSIGN_OR_RETURN(Target target, ResolveTarget(api, args.ref, args.kind, true));
  const ObjectRef& ref = target.ref;
  RETURN_IF_ERROR(Confirm(ref.ToString(), args.yes));
  std::string path =
      ref.version
          ? ApiPath({target.kind, ref.tenant, ref.name, "versions", ref.version->ToString()})
          : ApiPath({target.kind, ref.tenant, ref.name});
  ASSIGN_OR_RETURN(json answer, api.Call("DELETE", path));
  if (options.json) {
    PrintJson(answer);
  } else {
    std::cout << "deleted " << Field(answer, "deleted", ref.ToString()) << std::endl;
  }
  return Status::Ok();
}

}  // namespace

void AddObjectCommands(CLI::App& app, CommandSet& set) {
  auto show = std::make_shared<ShowArgs>();
  CLI::App* s = AddClientCommand(
      app, set, "show",
      "Describe a servable or dataset, or one version of it. Without a version: visibility, "
      "aliases and versions; with one (name:3, name:prod): metadata, signature and files.",
      [show](ApiClient& api, const ClientOptions& o) { return RunShow(api, o, *show); });
  s->add_option("REF", show->ref, "tenant/name[:version] or name[:version]")->required();
  s->add_option("--kind", show->kind, kKindHelp);
  s->add_flag("--readme", show->readme, "print the version's model card (its README.md)");

  auto cite = std::make_shared<CiteArgs>();
  CLI::App* c = AddClientCommand(
      app, set, "cite",
      "Print a citation of a version (latest without one) from its citable metadata: BibTeX "
      "(default), DataCite JSON or RIS, with its DOI when the manifest gives one.",
      [cite](ApiClient& api, const ClientOptions& o) { return RunCite(api, o, *cite); });
  c->add_option("REF", cite->ref, "tenant/name[:version] or name[:version]")->required();
  c->add_option("--format", cite->format, "bibtex, datacite or ris")
      ->check(CLI::IsMember({"bibtex", "datacite", "ris"}))
      ->capture_default_str();
  c->add_option("--kind", cite->kind, kKindHelp);

  auto alias = std::make_shared<AliasArgs>();
  CLI::App* a = AddClientCommand(
      app, set, "alias",
      "Point an alias at a version, or remove it. VERSION is a number or another alias; "
      "--delete removes ALIAS instead.",
      [alias](ApiClient& api, const ClientOptions& o) { return RunAlias(api, o, *alias); });
  a->add_option("NAME", alias->ref, "tenant/name or name")->required();
  a->add_option("ALIAS", alias->alias, "alias name, e.g. prod")->required();
  a->add_option("VERSION", alias->version, "version number or alias to point at");
  a->add_flag("--delete", alias->remove, "remove the alias");
  a->add_option("--kind", alias->kind, kKindHelp);

  auto share = std::make_shared<ShareArgs>();
  CLI::App* sh = AddClientCommand(
      app, set, "share",
      "Change who can see an object. Share it with a tenant, stop sharing, or make it public "
      "or private (private also clears the share list).",
      [share](ApiClient& api, const ClientOptions& o) { return RunShare(api, o, *share); });
  sh->add_option("NAME", share->ref, "tenant/name or name")->required();
  sh->add_option("--with", share->with, "tenant to share with");
  sh->add_option("--unshare", share->unshare, "tenant to stop sharing with");
  sh->add_flag("--public", share->make_public, "visible to every tenant");
  sh->add_flag("--private", share->make_private, "visible to its own tenant only");
  sh->add_option("--kind", share->kind, kKindHelp);

  auto remove = std::make_shared<DeleteArgs>();
  CLI::App* d = AddClientCommand(
      app, set, "delete",
      "Delete a version (name:3) or a whole object. Without --yes, asks you to type the name "
      "back, and refuses when stdin is not a terminal.",
      [remove](ApiClient& api, const ClientOptions& o) { return RunDelete(api, o, *remove); });
  d->add_option("REF", remove->ref, "tenant/name[:version] or name[:version]")->required();
  d->add_flag("-y,--yes", remove->yes, "do not ask for confirmation");
  d->add_option("--kind", remove->kind, kKindHelp);
}

}  // namespace orrery::cli
