// `orrery serve`: fills ServerOptions from flags and runs the server.
#include "api/server.h"
#include "cli/commands.h"

namespace orrery::cli {

void AddServeCommand(CLI::App& app, CommandSet& set) {
  auto options = std::make_shared<ServerOptions>();
  auto data_dir = std::make_shared<std::string>();
  CLI::App* serve = app.add_subcommand("serve");
  SetHelp(
      *serve,
      "Run the hub: the REST API and the inference protocol's health routes. Everything is kept "
      "under the data directory; on first start the hub tenant's admin token is written to "
      "<data-dir>/admin.token, where client commands on this machine find it.");
  serve->add_option("--data-dir", *data_dir,
                    "catalog, blobs and admin token (default: $ORRERY_DATA_DIR, else "
                    "./orrery-data)");
  serve->add_option("--host", options->host, "address to listen on; 0.0.0.0 to expose")
      ->capture_default_str();
  serve->add_option("--port", options->port, "TCP port; 0 picks a free one")->capture_default_str();
  serve->add_option("--threads", options->threads, "HTTP worker threads")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  serve
      ->add_option("--max-upload-bytes", options->max_upload_bytes,
                   "largest archive upload (413 above)")
      ->capture_default_str();
  serve
      ->add_option("--max-json-bytes", options->max_json_bytes,
                   "largest other request body (413 above)")
      ->capture_default_str();
  serve
      ->add_option("--max-archive-entries", options->max_archive_entries,
                   "most files and directories in a package (413 above)")
      ->capture_default_str();
  serve
      ->add_option("--max-unpacked-bytes", options->max_unpacked_bytes,
                   "largest sum of file sizes in a package (413 above)")
      ->capture_default_str();
  serve
      ->add_option("--gc-min-age-s", options->gc_min_age_s,
                   "a full garbage collection spares blobs younger than this")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  serve->add_flag("--reset-admin-token", options->reset_admin_token,
                  "write a new hub admin token to <data-dir>/admin.token (for an operator who "
                  "lost it); existing tokens stay valid until revoked");
  serve->callback([&set, options, data_dir] {
    set.action = [options, data_dir] {
      options->data_dir = ResolveDataDir(*data_dir, ProcessEnv());
      return RunServer(*options);
    };
  });
}

}  // namespace orrery::cli
