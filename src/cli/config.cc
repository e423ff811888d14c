#include "cli/config.h"

#include <cstdlib>

#include "core/files.h"

namespace orrery::cli {

namespace {

// The value of `name`, or "" when unset.
std::string EnvOr(const EnvLookup& env, const char* name) {
  const char* value = env(name);
  return value ? value : "";
}

Result<std::string> ReadTokenFile(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  constexpr const char* kSpace = " \t\r\n";
  size_t begin = text.find_first_not_of(kSpace);
  if (begin == std::string::npos)
    return InvalidArgument("token file " + path.string() + " is empty");
  return text.substr(begin, text.find_last_not_of(kSpace) - begin + 1);
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](const char* name) { return static_cast<const char*>(std::getenv(name)); };
}

std::string ResolveServerUrl(const ClientOptions& options, const EnvLookup& env) {
  if (!options.url.empty()) return options.url;
  std::string url = EnvOr(env, "ORRERY_URL");
  return url.empty() ? kDefaultServerUrl : url;
}

std::filesystem::path ResolveDataDir(const std::string& flag, const EnvLookup& env) {
  if (!flag.empty()) return flag;
  std::string dir = EnvOr(env, "ORRERY_DATA_DIR");
  return dir.empty() ? kDefaultDataDir : dir;
}

Result<std::string> DiscoverToken(const ClientOptions& options, const EnvLookup& env) {
  if (!options.token.empty()) return options.token;
  std::string token = EnvOr(env, "ORRERY_TOKEN");
  if (!token.empty()) return token;
  std::string token_file = EnvOr(env, "ORRERY_TOKEN_FILE");
  if (!token_file.empty()) {
    Result<std::string> from_file = ReadTokenFile(token_file);
    if (!from_file.ok()) {
      return InvalidArgument("ORRERY_TOKEN_FILE: " + from_file.status().message());
    }
    return from_file;
  }
  std::filesystem::path admin = ResolveDataDir(options.data_dir, env) / kAdminTokenFile;
  Result<std::string> from_admin = ReadTokenFile(admin);
  if (from_admin.ok()) return from_admin;
  return InvalidArgument(
      "no token: pass --token, set ORRERY_TOKEN or ORRERY_TOKEN_FILE, or run "
      "where " +
      admin.string() + " is readable (" + from_admin.status().message() + ")");
}

}  // namespace orrery::cli
