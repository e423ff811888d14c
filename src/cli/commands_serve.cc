// `orrery serve`: fills ServerOptions from flags and runs the server;
// `orrery routes`: the HTTP routes it answers, and the gRPC RPCs each stands for.
#include <iostream>

#include "api/grpc_rpcs.h"
#include "api/route_table.h"
#include "api/server.h"
#include "cli/commands.h"
#include "cli/output.h"

namespace orrery::cli {
namespace {

std::string_view BodyName(BodyPolicy body) {
  switch (body) {
    case BodyPolicy::kJson: return "json";
    case BodyPolicy::kInference: return "inference";
    case BodyPolicy::kUpload: return "upload";
  }
  return "?";
}

// The gRPC RPCs that stand for `route` (grpc_rpcs.h), comma-separated.
std::string RpcsOf(const Route& route) {
  std::string names;
  for (const GrpcRpc& rpc : kGrpcRpcs) {
    if (rpc.method != route.method || rpc.pattern != route.pattern) continue;
    names += (names.empty() ? "" : ", ") + std::string(rpc.name);
  }
  return names;
}

int PrintRoutes(bool as_json) {
  nlohmann::json routes = nlohmann::json::array();
  Table table({"METHOD", "PATH", "WHO", "BODY", "GRPC"});
  for (const Route& route : Routes()) {
    std::string rpcs = RpcsOf(route);
    routes.push_back({{"method", route.method},
                      {"path", route.pattern},
                      {"access", AccessName(route.access)},
                      {"body", BodyName(route.body)},
                      {"grpc", rpcs}});
    table.AddRow({std::string(route.method), std::string(route.pattern),
                  std::string(AccessName(route.access)), std::string(BodyName(route.body)),
                  rpcs.empty() ? "-" : rpcs});
  }
  if (as_json) {
    PrintJson({{"routes", routes}});
  } else {
    table.Print(std::cout);
  }
  return 0;
}

void AddRoutesCommand(CLI::App& app, CommandSet& set) {
  auto as_json = std::make_shared<bool>(false);
  CLI::App* routes = app.add_subcommand("routes");
  SetHelp(*routes,
          "List the HTTP routes `orrery serve` answers: method, path pattern, who may call each "
          "(docs/api.md, \"Authentication\") and how its body is taken (json: at most "
          "--max-json-bytes; inference: --max-infer-bytes; upload: a package, streamed to disk, "
          "--max-upload-bytes). {model} is \"tenant/name\" or a name of your own tenant; "
          "{kind} is servables or datasets; GRPC: the gRPC RPCs decided as the route "
          "(docs/grpc.md). Needs no server.");
  routes->add_flag("--json", *as_json, "Print JSON instead of a table");
  routes->callback([&set, as_json] { set.action = [as_json] { return PrintRoutes(*as_json); }; });
}

}  // namespace

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
  AddRoutesCommand(app, set);
}

}  // namespace orrery::cli
