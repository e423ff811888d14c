// A Repository on a fresh temporary data directory, for unit tests of the
// repository and of the layers above it. Header-only: tests link
// orrery_repository already.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "core/files.h"
#include "repository/repository.h"

namespace orrery::testing {

struct TestRepository {
  std::filesystem::path dir;                // remove it when done; the data is in dir/data
  std::unique_ptr<Repository> repository;
  Caller hub;                               // the hub admin (its token from AdminTokenPath)
};

// Opens a repository in a new directory named `prefix` + random under the
// system temp dir, and authenticates as the hub admin.
inline Result<TestRepository> OpenTestRepository(const std::string& prefix) {
  ASSIGN_OR_RETURN(TempDir dir, TempDir::Create(std::filesystem::temp_directory_path(), prefix));
  TestRepository out;
  out.dir = dir.Release();
  Repository::Options options;
  options.data_dir = out.dir / "data";
  ASSIGN_OR_RETURN(out.repository, Repository::Open(options));
  ASSIGN_OR_RETURN(std::string token, ReadFile(out.repository->AdminTokenPath()));
  ASSIGN_OR_RETURN(out.hub, out.repository->Authenticate(token.substr(0, token.size() - 1)));
  return out;
}

}  // namespace orrery::testing
