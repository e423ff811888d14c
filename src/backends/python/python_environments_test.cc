#include "backends/python/python_environments.h"

#include <gtest/gtest.h>

#include <fstream>

#include "core/files.h"

namespace orrery {
namespace {

namespace fs = std::filesystem;

void Write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

// The packages `orrery env list` shows for one registered environment.
nlohmann::json PackagesOf(const fs::path& dir) {
  nlohmann::json all = DescribePythonEnvironments({{"lab", dir}})["environments"];
  EXPECT_EQ(all[0]["name"], "system");
  EXPECT_EQ(all[1]["name"], "lab");
  return all[1]["packages"];
}

TEST(PythonEnvironmentsTest, NamesAndVersionsOfEveryKindOfEntry) {
  auto dir = TempDir::Create(fs::temp_directory_path(), "python-envs-test-");
  ASSERT_TRUE(dir.ok());
  const fs::path& root = dir->path();
  Write(root / "scikit_learn-1.2.1.dist-info" / "METADATA", "Name: scikit-learn\n");
  Write(root / "joblib-1.2.0.egg-info" / "PKG-INFO", "Name: joblib\n");
  Write(root / "six-1.16.0-py3.11.egg-info", "Name: six\n");  // a file, with a python tag
  // Versions only inside: Debian ships some distributions like this, and with a
  // second, versioned entry for the same distribution.
  Write(root / "cryptography.egg-info" / "PKG-INFO", "Metadata-Version: 2.1\nVersion: 38.0.4\n");
  Write(root / "cryptography-38.0.4.dist-info" / "METADATA", "Version: 38.0.4\n");
  Write(root / "Nameless.egg-info" / "PKG-INFO", "Summary: no version here\n");
  Write(root / "sklearn" / "__init__.py", "");  // a module, not a distribution
  EXPECT_EQ(PackagesOf(root), nlohmann::json::parse(R"([
    {"name": "cryptography", "version": "38.0.4"},
    {"name": "joblib", "version": "1.2.0"},
    {"name": "Nameless", "version": ""},
    {"name": "scikit_learn", "version": "1.2.1"},
    {"name": "six", "version": "1.16.0"}])"));
}

TEST(PythonEnvironmentsTest, AnUnreadableDirectoryListsNothing) {
  EXPECT_EQ(PackagesOf("/no/such/environment"), nlohmann::json::array());
}

}  // namespace
}  // namespace orrery
