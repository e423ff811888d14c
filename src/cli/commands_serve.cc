// `orrery serve`: fills ServerOptions from flags and runs the server.
#include "api/server.h"
#include "cli/commands.h"

namespace orrery::cli {

void AddServeCommand(CLI::App& app, CommandSet& set) {
  auto options = std::make_shared<ServerOptions>();
  auto data_dir = std::make_shared<std::string>();
  CLI::App* serve = app.add_subcommand("serve");
  SetHelp(*serve,
          "Run the hub: the REST API, inference over the Open Inference Protocol (/v2) and "
          "Prometheus metrics (/metrics). Everything is kept under the data directory; on "
          "first start the hub tenant's admin token is written to <data-dir>/admin.token, "
          "where client commands on this machine find it.");
  AddServeFlags(*serve, *options, *data_dir);
  serve->callback([&set, options, data_dir] {
    set.action = [options, data_dir] {
      options->data_dir = ResolveDataDir(*data_dir, ProcessEnv());
      return RunServer(*options);
    };
  });
}

}  // namespace orrery::cli
