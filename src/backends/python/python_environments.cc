#include "backends/python/python_environments.h"

#include <algorithm>
#include <fstream>
#include <vector>

#include "core/text.h"

namespace orrery {
namespace {

namespace fs = std::filesystem;

// The "Version:" line of a distribution's metadata (METADATA of a
// .dist-info, PKG-INFO of an .egg-info directory, or the .egg-info file
// itself); "" without one.
std::string VersionFromMetadata(const fs::path& entry) {
  std::error_code error;
  fs::path file = entry;
  if (fs::is_directory(entry, error)) {
    file = fs::exists(entry / "METADATA", error) ? entry / "METADATA" : entry / "PKG-INFO";
  }
  std::ifstream in(file);
  std::string line;
  for (int i = 0; i < 50 && std::getline(in, line); ++i) {  // the headers come first
    if (line.starts_with("Version:")) {
      size_t start = line.find_first_not_of(" \t", 8);
      return start == std::string::npos ? "" : line.substr(start);
    }
  }
  return "";
}

// "scikit_learn-1.2.1.dist-info" -> {"scikit_learn", "1.2.1"}; an entry
// without a version in its name ("cryptography.egg-info") reads it from its
// metadata. A distribution listed twice (Debian ships some with both kinds of
// entry) is listed once.
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
      if (version.empty()) version = VersionFromMetadata(entry.path());
      found.emplace_back(stem.substr(0, dash), version);
    }
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    return std::make_pair(AsciiLowercase(a.first), a.second) < std::make_pair(AsciiLowercase(b.first), b.second);
  });
  found.erase(std::unique(found.begin(), found.end(),
                          [](const auto& a, const auto& b) {
                            return AsciiLowercase(a.first) == AsciiLowercase(b.first) && a.second == b.second;
                          }),
              found.end());
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
