#include "backends/python/python_environments.h"

#include <algorithm>
#include <vector>

namespace orrery {
namespace {

namespace fs = std::filesystem;

// "scikit_learn-1.2.1.dist-info" -> {"scikit_learn", "1.2.1"}.
nlohmann::json Packages(const fs::path& dir) {
  std::vector<std::pair<std::string, std::string>> found;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    std::string name = entry.path().filename().string();
    for (const std::string suffix : {".dist-info", ".egg-info"}) {
      if (name.size() <= suffix.size() || !name.ends_with(suffix)) continue;
      std::string stem = name.substr(0, name.size() - suffix.size());
      size_t dash = stem.find('-');
      std::string version = dash == std::string::npos ? "" : stem.substr(dash + 1);
      size_t python_tag = version.find("-py");  // egg-info: "pkg-1.0-py3.11"
      if (python_tag != std::string::npos) version = version.substr(0, python_tag);
      found.emplace_back(stem.substr(0, dash), version);
    }
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    std::string x = a.first, y = b.first;
    std::transform(x.begin(), x.end(), x.begin(), ::tolower);
    std::transform(y.begin(), y.end(), y.begin(), ::tolower);
    return x < y;
  });
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [name, version] : found) out.push_back({{"name", name}, {"version", version}});
  return out;
}

}  // namespace

nlohmann::json DescribePythonEnvironments(const std::map<std::string, fs::path>& registered) {
  nlohmann::json environments = nlohmann::json::array();
  environments.push_back({{"name", "system"},
                          {"description", "the host's Debian python3-* packages"},
                          {"packages", Packages(kSystemSitePackages)}});
  for (const auto& [name, dir] : registered) {
    environments.push_back({{"name", name}, {"packages", Packages(dir)}});
  }
  return {{"environments", environments}};
}

}  // namespace orrery
