// The `python` section of a Python servable's manifest (PythonConfig in
// manifest.h): the modules it needs and the operator's Python environment it
// runs in. Checked here for form only; whether the hub provides them is
// checked in the sandbox when the servable loads (at publish, by its check).
#include <cctype>
#include <regex>

#include "repository/manifest_internal.h"

namespace orrery {
namespace manifest_internal {

namespace {

// "numpy", "sklearn.svm", "numpy>=1.20", "scipy == 1.10.1": an import name,
// then optionally a comparison and a version of digits and dots.
const std::regex& RequirementPattern() {
  static const std::regex pattern(
      R"(^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\s*((==|!=|>=|<=|>|<)\s*[0-9]+(\.[0-9]+)*)?$)");
  return pattern;
}

}  // namespace

}  // namespace manifest_internal

bool IsEnvironmentName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return name != "." && name != "..";
}

namespace manifest_internal {

Status ParsePython(const FieldMap& top, Manifest& manifest) {
  auto node = top.Get("python");
  if (!node) return Status::Ok();
  if (manifest.backend != "python") {
    return FieldError("python", "only for backend python");
  }
  ASSIGN_OR_RETURN(auto map, FieldMap::Open(*node, "python", {"requires", "environment"}));
  ASSIGN_OR_RETURN(std::vector<YAML::Node> entries, map.List("requires", false));
  if (entries.size() > 64) return FieldError(map.Path("requires"), "at most 64 entries");
  for (size_t i = 0; i < entries.size(); ++i) {
    std::string path = map.Path("requires") + "[" + std::to_string(i) + "]";
    if (!entries[i].IsScalar()) return FieldError(path, "must be a string");
    std::string entry = entries[i].Scalar();
    if (entry.size() > 200 || !std::regex_match(entry, RequirementPattern())) {
      return FieldError(path, "'" + entry +
                                  "' is not an import name with an optional version, e.g. "
                                  "'numpy' or 'sklearn>=1.2'");
    }
    manifest.python.requires_modules.push_back(entry);
  }
  ASSIGN_OR_RETURN(manifest.python.environment, map.String("environment", false));
  if (!manifest.python.environment.empty() && !IsEnvironmentName(manifest.python.environment)) {
    return FieldError(map.Path("environment"),
                      "may only contain letters, digits, '.', '_' and '-' (64 at most)");
  }
  return Status::Ok();
}

}  // namespace manifest_internal
}  // namespace orrery
