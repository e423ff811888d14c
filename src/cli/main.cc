// `orrery`: the hub server (`orrery serve`) and its command-line client.
//
// Parsing records the chosen subcommand's action; it runs only after the
// whole command line parsed. CLI11 reports problems with exceptions, which
// are caught here, at the adapter, and become exit status 2.
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/commands.h"

int main(int argc, char** argv) {
  using namespace orrery::cli;
  CLI::App app(
      "Orrery: publish, discover, version and serve machine-learning models.\n"
      "Client commands talk to a hub at --url with --token (see `orrery <command> --help`).",
      "orrery");
  app.require_subcommand(1);
  CommandSet set;
  AddServeCommand(app, set);
  AddPackageCommands(app, set);
  AddObjectCommands(app, set);
  AddDiscoverCommands(app, set);
  AddAdminCommands(app, set);
  AddServingCommands(app, set);
  AddJobCommands(app, set);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::cerr << "orrery: " << e.what() << "\nRun with --help for more information." << std::endl;
    return 2;
  }
  return set.action ? set.action() : 2;
}
