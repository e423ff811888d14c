#include "jobs/job_workspace.h"

#include "core/files.h"

namespace orrery {

Status JobWorkspace::PrepareAttempt(int64_t id, int64_t attempt) const {
  RETURN_IF_ERROR(EnsureDir(root_, 0700));
  RETURN_IF_ERROR(EnsureDir(JobDir(id), 0700));
  std::error_code error;
  std::filesystem::remove_all(OutputDir(id), error);
  if (error) return FileSystemStatus("empty " + OutputDir(id).string(), error);
  for (const std::filesystem::path& dir :
       {OutputDir(id), CheckpointDir(id), MetricsDir(id), AttemptDir(id, attempt)}) {
    RETURN_IF_ERROR(EnsureDir(dir, 0700));
  }
  return Status::Ok();
}

}  // namespace orrery
