#include "backends/backend_util.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

namespace orrery {
namespace {

std::string LowerExtension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

std::string JoinExtensions(const std::vector<std::string>& extensions) {
  std::string out;
  for (size_t i = 0; i < extensions.size(); ++i) {
    out += (i == 0 ? "" : i + 1 == extensions.size() ? " or " : ", ") + extensions[i];
  }
  return out;
}

}  // namespace

Result<std::string> FindModelFile(const LoadContext& context, std::string_view backend,
                                  const std::vector<std::string>& extensions,
                                  const std::vector<std::string>& extra_keys) {
  const nlohmann::json& config = context.manifest->config;
  std::string prefix = std::string(backend) + ": ";
  std::string file;
  std::vector<std::string> keys = {"file"};
  keys.insert(keys.end(), extra_keys.begin(), extra_keys.end());
  for (const std::string& key : keys) {
    if (!config.contains(key)) continue;
    if (!config[key].is_string()) return Unprocessable(prefix + "config." + key + " must be a path");
    file = config[key].get<std::string>();
    Status valid = ValidatePackagePath(file);
    if (!valid.ok()) return Unprocessable(prefix + "config." + key + ": " + valid.message());
    break;
  }
  for (size_t i = 0; file.empty() && i < context.manifest->files.size(); ++i) {
    const std::string& path = context.manifest->files[i].path;
    std::string ext = LowerExtension(path);
    if (std::find(extensions.begin(), extensions.end(), ext) != extensions.end()) file = path;
  }
  if (file.empty()) {
    return Unprocessable(prefix + "no " + JoinExtensions(extensions) +
                         " file among the package files (name one with config.file)");
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(context.dir / file, ec)) {
    return Unprocessable("cannot load " + file + ": file not found");
  }
  return file;
}

Result<int> ConfigThreads(const LoadContext& context, std::string_view backend) {
  const nlohmann::json& config = context.manifest->config;
  if (!config.contains("threads")) return 1;
  const nlohmann::json& threads = config["threads"];
  if (!threads.is_number_integer() || threads.get<int64_t>() < 1 || threads.get<int64_t>() > 64) {
    return Unprocessable(std::string(backend) + ": config.threads must be an integer from 1 to 64");
  }
  return threads.get<int>();
}

}  // namespace orrery
