// What the Python environments of a hub provide, for `orrery env list` and
// GET /api/v1/environments: "system" (the host's Debian packages in
// /usr/lib/python3/dist-packages, visible to every Python servable) and each
// environment the operator registered (SandboxOptions::python_environments),
// with the distributions installed in it (their *.dist-info and *.egg-info
// entries: name and version).
// Thread-safe (reads the file system only).
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace orrery {

// {"environments": [{"name", "path"?, "packages": [{"name", "version"}]}]},
// "system" first, then the registered ones by name.
nlohmann::json DescribePythonEnvironments(
    const std::map<std::string, std::filesystem::path>& registered);

// Where the host's Debian Python packages are.
constexpr const char* kSystemSitePackages = "/usr/lib/python3/dist-packages";

}  // namespace orrery
