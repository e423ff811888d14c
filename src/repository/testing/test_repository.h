// A Repository on a fresh temporary data directory, for unit tests of the
// repository and of the layers above it. Header-only: tests link
// orrery_repository already.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "core/files.h"
#include "repository/archive.h"
#include "repository/repository.h"

namespace orrery::testing {

struct TestRepository {
  std::filesystem::path dir;                // remove it when done; the data is in dir/data
  std::unique_ptr<Repository> repository;
  Caller hub;                               // the hub admin (its token from AdminTokenPath)
};

// Opens a repository in a new directory named `prefix` + random under the
// system temp dir, and authenticates as the hub admin. `clock`: the
// repository's wall clock (Repository::Options::clock), the system's if empty.
inline Result<TestRepository> OpenTestRepository(const std::string& prefix,
                                                 std::function<int64_t()> clock = {}) {
  ASSIGN_OR_RETURN(TempDir dir, TempDir::Create(std::filesystem::temp_directory_path(), prefix));
  TestRepository out;
  out.dir = dir.Release();
  Repository::Options options;
  options.data_dir = out.dir / "data";
  options.clock = std::move(clock);
  ASSIGN_OR_RETURN(out.repository, Repository::Open(options));
  ASSIGN_OR_RETURN(std::string token, ReadFile(out.repository->AdminTokenPath()));
  ASSIGN_OR_RETURN(out.hub, out.repository->Authenticate(token.substr(0, token.size() - 1)));
  return out;
}

// Writes `files` (path in the package -> content) as a tar archive at `path`.
inline Status WritePackage(const std::filesystem::path& path,
                           const std::map<std::string, std::string>& files) {
  ASSIGN_OR_RETURN(auto writer, ArchiveWriter::Create(path, false));
  for (const auto& file : files) {
    const std::string& content = file.second;
    RETURN_IF_ERROR(writer->AddFile(file.first, content.size(), false,
                                    [&](const ArchiveWriter::WriteFn& write) {
                                      return write(content.data(), content.size());
                                    }));
  }
  return writer->Finish();
}

// A new token of `role` in `tenant` (which must exist), as the Caller it
// authenticates to.
inline Result<Caller> MakeCaller(Repository& repository, const Caller& admin,
                                 const std::string& tenant, Role role) {
  ASSIGN_OR_RETURN(auto created, repository.CreateToken(admin, tenant, role, 0, ""));
  return repository.Authenticate(created["token"].get<std::string>());
}

}  // namespace orrery::testing
