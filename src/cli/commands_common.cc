// What the subcommands share: the global client flags, exit statuses and
// settling which object a command is about.
#include <iostream>

#include "cli/commands.h"
#include "cli/url.h"

namespace orrery::cli {

namespace {

void AddGlobalClientFlags(CLI::App& command, ClientOptions& options) {
  command.add_option(
      "--url", options.url,
      std::string("server URL (default: $ORRERY_URL, else ") + kDefaultServerUrl + ")");
  command.add_option("--token", options.token,
                     "API token (default: $ORRERY_TOKEN, else the file $ORRERY_TOKEN_FILE, "
                     "else <data-dir>/admin.token)");
  command.add_option("--data-dir", options.data_dir,
                     "server data directory whose admin.token to use when no token is given "
                     "(default: $ORRERY_DATA_DIR, else ./orrery-data)");
  command.add_flag("--json", options.json, "print the server's JSON answer instead of text");
  command
      .add_option("--timeout", options.timeout_s,
                  "seconds without progress before a request is abandoned (default 300)")
      ->check(CLI::PositiveNumber);
}

}  // namespace

CLI::App* AddClientCommand(CLI::App& parent, CommandSet& set, const std::string& name,
                           const std::string& help, ClientBody body) {
  CLI::App* command = parent.add_subcommand(name);
  SetHelp(*command, help);
  AddGlobalClientFlags(*command, set.client);
  command->callback([&set, body = std::move(body)] {
    set.action = [&set, body] {
      Result<std::unique_ptr<ApiClient>> api = ApiClient::Create(set.client, ProcessEnv());
      if (!api.ok()) return Report(api.status());
      return Report(body(**api, set.client));
    };
  });
  return command;
}

void SetHelp(CLI::App& command, const std::string& help) {
  size_t end = help.find(". ");
  if (end == std::string::npos) {
    command.description(help);
    return;
  }
  command.description(help.substr(0, end + 1));
  command.footer("\n" + help.substr(end + 2));
}

int ExitCodeFor(const Status& status) {
  if (status.ok()) return 0;
  return status.code() == Code::kInvalidArgument ? 2 : 1;
}

int Report(const Status& status) {
  // Local errors name the local files (the detail); a server's errors
  // arrive with their message only.
  if (!status.ok()) std::cerr << "orrery: " << status.detail() << std::endl;
  return ExitCodeFor(status);
}

Result<Target> ResolveTarget(ApiClient& api, const std::string& text, const std::string& kind_flag,
                             bool allow_version) {
  Target target;
  ASSIGN_OR_RETURN(target.ref, ParseObjectRef(text, allow_version));
  ASSIGN_OR_RETURN(target.kind, PluralKind(kind_flag));
  RETURN_IF_ERROR(api.CompleteTenant(target.ref));
  if (!target.kind.empty()) return target;
  for (const char* kind : {"servables", "datasets"}) {
    Result<nlohmann::json> found =
        api.Call("GET", ApiPath({kind, target.ref.tenant, target.ref.name}));
    if (found.ok()) {
      target.kind = kind;
      return target;
    }
    if (found.status().code() != Code::kNotFound) return found.status();
  }
  return NotFound("no servable or dataset " + target.ref.tenant + "/" + target.ref.name +
                  " (HTTP 404)");
}

}  // namespace orrery::cli
