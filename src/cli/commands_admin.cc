// Administration: `orrery tenant`, `token`, `whoami`, `audit`, `gc`, `check`,
// `admin serving`.
#include <iostream>

#include "cli/commands.h"
#include "cli/output.h"
#include "cli/url.h"
#include "core/files.h"
#include "core/quantity.h"

namespace orrery::cli {

using nlohmann::json;

namespace {

// Prints `answer` as JSON with --json, else runs `print_text`.
template <class PrintText>
Status Print(const ClientOptions& options, const json& answer, PrintText print_text) {
  if (options.json) {
    PrintJson(answer);
  } else {
    print_text();
  }
  return Status::Ok();
}

// ---- tenant ----

struct TenantArgs {
  std::string name;
  bool exist_ok = false;
};

Status RunTenantCreate(ApiClient& api, const ClientOptions& options, const TenantArgs& args) {
  RETURN_IF_ERROR(ValidateTenantName(args.name));
  Result<json> created = api.Call("POST", ApiPath({"tenants"}), json{{"name", args.name}});
  if (created.ok()) {
    return Print(options, *created, [&] { std::cout << "created tenant " << args.name << "\n"; });
  }
  if (created.status().code() != Code::kConflict || !args.exist_ok) return created.status();
  if (options.json) PrintJson(json{{"name", args.name}, {"exists", true}});
  if (!options.json) std::cout << "tenant " << args.name << " already exists\n";
  return Status::Ok();
}

Status RunTenantList(ApiClient& api, const ClientOptions& options) {
  ASSIGN_OR_RETURN(json answer, api.Call("GET", ApiPath({"tenants"})));
  return Print(options, answer, [&] {
    Table table({"NAME", "CREATED"});
    for (const json& t : answer.value("tenants", json::array())) {
      table.AddRow({Field(t, "name"), Field(t, "created_at")});
    }
    table.Print(std::cout);
  });
}

// ---- token ----

struct TokenArgs {
  std::string tenant;
  std::string role;
  std::string expires_in;
  std::string description;
  std::string id;
};

Status RunTokenCreate(ApiClient& api, const ClientOptions& options, const TokenArgs& args) {
  json body = {{"role", args.role}};
  if (!args.tenant.empty()) {
    RETURN_IF_ERROR(ValidateTenantName(args.tenant));
    body["tenant"] = args.tenant;
  }
  if (!args.expires_in.empty()) {
    ASSIGN_OR_RETURN(body["expires_in_s"], ParseDuration(args.expires_in));
  }
  if (!args.description.empty()) body["description"] = args.description;
  ASSIGN_OR_RETURN(json answer, api.Call("POST", ApiPath({"tokens"}), body));
  std::cerr << "token " << Field(answer, "id") << " for tenant " << Field(answer, "tenant")
            << ", role " << Field(answer, "role") << ", expires "
            << Field(answer, "expires_at", "never") << ".\n"
            << "It is shown only this once: store it now." << std::endl;
  return Print(options, answer, [&] { std::cout << Field(answer, "token") << std::endl; });
}

Status RunTokenRevoke(ApiClient& api, const ClientOptions& options, const TokenArgs& args) {
  ASSIGN_OR_RETURN(json answer, api.Call("DELETE", ApiPath({"tokens", args.id})));
  return Print(options, answer, [&] {
    std::cout << "revoked token " << args.id << " at " << Field(answer, "revoked_at") << "\n";
  });
}

Status RunTokenList(ApiClient& api, const ClientOptions& options, const TokenArgs& args) {
  if (!args.tenant.empty()) RETURN_IF_ERROR(ValidateTenantName(args.tenant));
  ASSIGN_OR_RETURN(json answer, api.Call("GET", ApiPath({"tokens"}, {{"tenant", args.tenant}})));
  return Print(options, answer, [&] {
    Table table({"ID", "TENANT", "ROLE", "CREATED", "EXPIRES", "REVOKED", "DESCRIPTION"});
    for (const json& t : answer.value("tokens", json::array())) {
      table.AddRow({Field(t, "id"), Field(t, "tenant"), Field(t, "role"), Field(t, "created_at"),
                    Field(t, "expires_at", "never"), Field(t, "revoked_at", "-"),
                    Field(t, "description")});
    }
    table.Print(std::cout);
  });
}

// ---- whoami, audit, gc, check ----

Status RunWhoami(ApiClient& api, const ClientOptions& options) {
  ASSIGN_OR_RETURN(json answer, api.Call("GET", ApiPath({"whoami"})));
  return Print(options, answer, [&] {
    std::cout << "tenant " << Field(answer, "tenant") << ", role " << Field(answer, "role")
              << ", token " << Field(answer, "token_id") << "\n";
  });
}

Status RunAudit(ApiClient& api, const ClientOptions& options, int limit) {
  Query query = {{"limit", limit > 0 ? std::to_string(limit) : ""}};
  ASSIGN_OR_RETURN(json answer, api.Call("GET", ApiPath({"audit"}, query)));
  return Print(options, answer, [&] {
    Table table({"AT", "TENANT", "TOKEN", "ACTION", "OBJECT", "DETAIL"});
    for (const json& e : answer.value("entries", json::array())) {
      table.AddRow({Field(e, "at"), Field(e, "tenant"), Field(e, "token_id"), Field(e, "action"),
                    Field(e, "object"), Field(e, "detail")});
    }
    table.Print(std::cout);
  });
}

Status RunGc(ApiClient& api, const ClientOptions& options, int64_t min_age_s) {
  Query query = {{"min_age_s", min_age_s >= 0 ? std::to_string(min_age_s) : ""}};
  ASSIGN_OR_RETURN(json answer, api.Call("POST", ApiPath({"admin", "gc"}, query)));
  return Print(options, answer, [&] {
    std::cout << "removed " << Field(answer, "removed", "0") << " blobs ("
              << HumanSize(answer.value("bytes", 0ull)) << ")\n";
  });
}

Status RunCheck(ApiClient& api, const ClientOptions& options) {
  ASSIGN_OR_RETURN(json answer, api.Call("GET", ApiPath({"admin", "check"})));
  json problems = answer.value("problems", json::array());
  RETURN_IF_ERROR(Print(options, answer, [&] {
    if (problems.empty()) std::cout << "ok: catalog and blobs agree\n";
    for (const json& problem : problems) {
      std::cout << (problem.is_string() ? problem.get<std::string>() : problem.dump()) << "\n";
    }
  }));
  if (answer.value("ok", false)) return Status::Ok();
  return DataLoss("check found " + std::to_string(problems.size()) + " problem(s)");
}

// ---- admin serving ----

struct ServingArgs {
  std::string ref;    // tenant/name:version
  std::string file;   // the override as a JSON object; "-" = standard input
  std::string cache;  // "true", "false" or "manifest"
};

Result<ObjectRef> VersionRefOf(ApiClient& api, const std::string& text) {
  ASSIGN_OR_RETURN(ObjectRef ref, ParseObjectRef(text, true));
  if (!ref.version) return InvalidArgument("give the version: " + text + ":VERSION");
  RETURN_IF_ERROR(api.CompleteTenant(ref));
  return ref;
}

std::string ServingPath(const ObjectRef& ref) {
  return ApiPath({"admin", "serving", ref.tenant, ref.name, "versions", ref.version->ToString()});
}

// The PUT body: the file's JSON object, with --cache applied on top.
Result<json> ServingBody(const ServingArgs& args) {
  if (args.file.empty() && args.cache.empty()) {
    return InvalidArgument("give --file with the override, or --cache");
  }
  json body = json::object();
  if (!args.file.empty()) {
    std::string text;
    if (args.file == "-") {
      text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    } else {
      Result<std::string> read = ReadFile(args.file);
      if (!read.ok()) return InvalidArgument(read.status().message());
      text = std::move(*read);
    }
    body = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!body.is_object()) return InvalidArgument(args.file + ": not a JSON object");
  }
  if (args.cache == "true" || args.cache == "false") body["cache"] = args.cache == "true";
  if (args.cache == "manifest") body["cache"] = nullptr;
  return body;
}

// "batching: up to 16 rows, 500 us delay, preferred [8,16]; cache: on;
// queue: {"max_size":64,...}" (the queue part only when a field is set).
std::string SettingsText(const json& settings) {
  json batching = settings.value("batching", json::object());
  std::string text = "batching: ";
  if (batching.value("max_batch_size", 0) == 0) {
    text += "off";
  } else {
    text += "up to " + Field(batching, "max_batch_size") + " rows, " +
            Field(batching, "max_queue_delay_us", "0") + " us delay";
    json preferred = batching.value("preferred_batch_sizes", json::array());
    if (!preferred.empty()) text += ", preferred " + preferred.dump();
  }
  text += std::string("; cache: ") + (settings.value("cache", false) ? "on" : "off");
  json queue_settings = settings.value("queue", json::object());
  json queue = json::object();  // the fields set (0 means the server's default)
  for (const auto& [key, value] : queue_settings.items()) {
    if (value != 0) queue[key] = value;
  }
  if (!queue.empty()) text += "; queue: " + queue.dump();
  return text;
}

Status PrintServing(const ClientOptions& options, const json& answer) {
  return Print(options, answer, [&] {
    json override = answer.value("override", json::object());
    std::cout << Field(answer, "servable") << "\n"
              << "override:  " << (override.empty() ? "none" : override.dump()) << "\n"
              << "manifest:  " << SettingsText(answer.value("manifest", json::object())) << "\n"
              << "effective: " << SettingsText(answer.value("effective", json::object())) << "\n";
  });
}

Status RunServing(ApiClient& api, const ClientOptions& options, const ServingArgs& args,
                  const std::string& method) {
  ASSIGN_OR_RETURN(ObjectRef ref, VersionRefOf(api, args.ref));
  json body = nullptr;
  if (method == "PUT") {
    ASSIGN_OR_RETURN(body, ServingBody(args));
  }
  ASSIGN_OR_RETURN(json answer, api.Call(method, ServingPath(ref), body));
  return PrintServing(options, answer);
}

void AddServingOverrideCommands(CLI::App& app, CommandSet& set) {
  CLI::App* admin = app.add_subcommand("admin", "Hub administration beyond tenants and tokens.");
  admin->require_subcommand(1);
  CLI::App* serving = admin->add_subcommand(
      "serving", "Override a servable version's serving settings (batching, cache, queue) (admin).");
  serving->require_subcommand(1);
  constexpr const char* kRefHelp = "tenant/name:version (a bare name: your tenant)";
  auto args = std::make_shared<ServingArgs>();
  auto command = [&](const char* name, const char* help, const char* method) {
    CLI::App* sub = AddClientCommand(*serving, set, name, help,
                                     [args, method](ApiClient& api, const ClientOptions& o) {
                                       return RunServing(api, o, *args, method);
                                     });
    sub->add_option("REF", args->ref, kRefHelp)->required();
    return sub;
  };
  command("get", "Show the version's override, its manifest's settings and the effective ones.",
          "GET");
  CLI::App* put = command(
      "set",
      "Set the version's override; the loaded model is reloaded with it. The override is a JSON "
      "object of manifest sections, e.g. {\"batching\": {\"max_batch_size\": 16, "
      "\"max_queue_delay_us\": 500}, \"cache\": true}; a null section keeps the manifest's.",
      "PUT");
  put->add_option("--file", args->file, "the override as a JSON file ('-': standard input)");
  put->add_option("--cache", args->cache, "true, false, or manifest (the manifest's own)")
      ->check(CLI::IsMember({"true", "false", "manifest"}));
  command("clear", "Remove the version's override: the manifest's settings apply again.", "DELETE");
}

void AddTenantCommands(CLI::App& app, CommandSet& set) {
  CLI::App* tenant = app.add_subcommand("tenant", "Create and list tenants (hub admin).");
  tenant->require_subcommand(1);
  auto args = std::make_shared<TenantArgs>();
  CLI::App* create = AddClientCommand(
      *tenant, set, "create", "Create a tenant.",
      [args](ApiClient& api, const ClientOptions& o) { return RunTenantCreate(api, o, *args); });
  create->add_option("NAME", args->name, "tenant name: [a-z0-9-], 1-63 characters")->required();
  create->add_flag("--exist-ok", args->exist_ok, "succeed if the tenant already exists");
  AddClientCommand(*tenant, set, "list", "List all tenants.", RunTenantList);
}

void AddTokenCommands(CLI::App& app, CommandSet& set) {
  CLI::App* token = app.add_subcommand("token", "Create, list and revoke API tokens (admin).");
  token->require_subcommand(1);
  auto args = std::make_shared<TokenArgs>();
  CLI::App* create = AddClientCommand(
      *token, set, "create",
      "Create a token and print it; the hub keeps only its hash, so it is shown only once.",
      [args](ApiClient& api, const ClientOptions& o) { return RunTokenCreate(api, o, *args); });
  create->add_option("--tenant", args->tenant, "tenant of the token (default: your own)");
  create->add_option("--role", args->role, "reader, publisher or admin")
      ->required()
      ->check(CLI::IsMember({"reader", "publisher", "admin"}));
  create->add_option("--expires-in", args->expires_in,
                     "lifetime: seconds, or e.g. 90m, 12h, 30d (default: never expires)");
  create->add_option("--description", args->description, "what the token is for");

  CLI::App* revoke = AddClientCommand(
      *token, set, "revoke", "Revoke a token by its id.",
      [args](ApiClient& api, const ClientOptions& o) { return RunTokenRevoke(api, o, *args); });
  revoke->add_option("ID", args->id, "token id (from token list)")->required();

  CLI::App* list = AddClientCommand(
      *token, set, "list", "List tokens (never their secret values).",
      [args](ApiClient& api, const ClientOptions& o) { return RunTokenList(api, o, *args); });
  list->add_option("--tenant", args->tenant, "another tenant's tokens (hub admin)");
}

}  // namespace

void AddAdminCommands(CLI::App& app, CommandSet& set) {
  AddTenantCommands(app, set);
  AddTokenCommands(app, set);
  AddServingOverrideCommands(app, set);
  AddClientCommand(app, set, "whoami", "Show the tenant, role and id of your token.", RunWhoami);

  auto limit = std::make_shared<int>(0);
  CLI::App* audit = AddClientCommand(
      app, set, "audit",
      "Show the audit log. Publishes, alias and visibility changes, deletes, tenants and tokens: "
      "your tenant's entries (the hub admin sees all).",
      [limit](ApiClient& api, const ClientOptions& o) { return RunAudit(api, o, *limit); });
  audit->add_option("--limit", *limit, "most recent entries to show (server default 100)")
      ->check(CLI::PositiveNumber);

  auto min_age = std::make_shared<int64_t>(-1);
  CLI::App* gc = AddClientCommand(
      app, set, "gc", "Remove blobs no live version references (hub admin).",
      [min_age](ApiClient& api, const ClientOptions& o) { return RunGc(api, o, *min_age); });
  gc->add_option("--min-age-s", *min_age, "spare blobs younger than this (server default)")
      ->check(CLI::NonNegativeNumber);

  AddClientCommand(app, set, "check",
                   "Check the hub's integrity (hub admin). Every live file's blob must exist "
                   "with the right digest and no version may be half visible; exits 1 on "
                   "problems.",
                   RunCheck);
}

}  // namespace orrery::cli
