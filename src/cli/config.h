// Where the CLI finds its server and its token.
//
// Order, first match wins:
//   URL:   --url, $ORRERY_URL, http://127.0.0.1:7070
//   token: --token, $ORRERY_TOKEN, the file $ORRERY_TOKEN_FILE,
//          <data-dir>/admin.token, where data-dir is --data-dir,
//          $ORRERY_DATA_DIR or ./orrery-data. The last one is how the CLI on
//          the server's machine finds the hub admin token.
// The environment is read through an injectable function so tests can fake it.
// Thread-safe (pure functions apart from reading token files).
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "core/status.h"

namespace orrery::cli {

constexpr const char* kDefaultServerUrl = "http://127.0.0.1:7070";
constexpr const char* kDefaultDataDir = "orrery-data";
constexpr const char* kAdminTokenFile = "admin.token";

// Options shared by every client command (the global flags).
struct ClientOptions {
  std::string url;       // --url; empty: see above
  std::string token;     // --token; empty: see above
  std::string data_dir;  // --data-dir; only used to find admin.token
  bool json = false;     // --json: print the server's JSON instead of tables
  int timeout_s = 300;   // --timeout: idle seconds before a request is abandoned
};

// Returns the value of an environment variable, or nullptr when unset.
using EnvLookup = std::function<const char*(const char* name)>;
// The process environment (std::getenv).
EnvLookup ProcessEnv();

std::string ResolveServerUrl(const ClientOptions& options, const EnvLookup& env);

// The data directory: --data-dir, $ORRERY_DATA_DIR or ./orrery-data.
std::filesystem::path ResolveDataDir(const std::string& flag, const EnvLookup& env);

// The token by the order above. A token file's surrounding whitespace is
// dropped. kInvalidArgument (a usage error) when nothing is found.
Result<std::string> DiscoverToken(const ClientOptions& options, const EnvLookup& env);

}  // namespace orrery::cli
