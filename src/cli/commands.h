// The subcommands of `orrery` and what they share.
//
// Each commands_*.cc file registers a group of subcommands on the CLI11 app.
// Parsing only records what to do (CommandSet::action); main() runs it after
// the whole command line parsed, so a usage error never half-runs a command.
//
// Exit status: 0 success, 1 an error from the server, the network or the
// file system, 2 a usage error (kInvalidArgument found before or instead of
// talking to the server).
//
// Not thread-safe; the CLI is single-threaded.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/api_client.h"
#include "cli/args.h"
#include "cli/config.h"
#include "core/status.h"

namespace orrery {
struct ServerOptions;  // api/server.h
}  // namespace orrery

namespace orrery::cli {

// What the parsed command line asks for; returns the exit status.
using Action = std::function<int()>;

// State shared by every subcommand; one per process.
struct CommandSet {
  ClientOptions client;  // the global flags of client commands
  Action action;         // set by the chosen subcommand's callback
};

// The body of a client command: runs with a client for the chosen server.
using ClientBody = std::function<Status(ApiClient& api, const ClientOptions& options)>;

// Adds subcommand `name` under `parent` with the global client flags
// (--url, --token, --data-dir, --json, --timeout) and SetHelp(help); when
// chosen, `body` runs.
CLI::App* AddClientCommand(CLI::App& parent, CommandSet& set, const std::string& name,
                           const std::string& help, ClientBody body);

// Sets `command`'s help from `help`: its first sentence is the one-line
// summary in the parent's list, the rest is shown below the options.
void SetHelp(CLI::App& command, const std::string& help);

// 0 for OK, 2 for kInvalidArgument (usage), 1 otherwise.
int ExitCodeFor(const Status& status);
// Prints "orrery: <message>" to stderr unless OK; returns ExitCodeFor(status).
int Report(const Status& status);

// A servable or dataset the command acts on.
struct Target {
  std::string kind;  // "servables" or "datasets"
  ObjectRef ref;     // tenant filled in
};

// Parses `text` (ParseObjectRef), fills in the tenant and settles the kind:
// `kind_flag` if given, else whichever collection holds the object (names of
// servables and datasets share one namespace per tenant).
Result<Target> ResolveTarget(ApiClient& api, const std::string& text, const std::string& kind_flag,
                             bool allow_version);

// The flags of `orrery serve`, filling `options` and `data_dir`
// (serve_flags.cc, apart from the command so that tests need not link the
// server).
void AddServeFlags(CLI::App& serve, ServerOptions& options, std::string& data_dir);

// Registration, one function per commands_*.cc file.
void AddServeCommand(CLI::App& app, CommandSet& set);      // serve, routes
void AddPackageCommands(CLI::App& app, CommandSet& set);   // publish, download
void AddObjectCommands(CLI::App& app, CommandSet& set);    // show, alias, share, delete
void AddDiscoverCommands(CLI::App& app, CommandSet& set);  // list, search
void AddAdminCommands(CLI::App& app, CommandSet& set);    // tenant, token, whoami, audit, gc, check
void AddServingCommands(CLI::App& app, CommandSet& set);  // infer, verify
void AddJobCommands(CLI::App& app, CommandSet& set);      // job submit|list|show|logs|...

}  // namespace orrery::cli
