// A training job's spec (docs/jobs.md): what to run, on which inputs, with
// which resources, and what to publish. Written by a scientist as YAML or
// JSON; parsed strictly (unknown keys, wrong types and out-of-range values
// are kUnprocessable "job spec: <field>: <problem>"), so that a typo is an
// error rather than a silently ignored setting.
//
// The spec names its inputs as `tenant/name[:version|alias]`; resolving them
// to immutable versions (and checking the caller may see them) is the job
// service's work at submit, not the parser's.
//
// Thread-safe (pure functions, value types).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "repository/manifest.h"
#include "repository/names.h"

namespace orrery {

// One input, seen by the job at $ORRERY_INPUTS/<name>/ (read-only).
struct JobInput {
  std::string name;  // the directory name: an object name (no '/', no "..")
  PackageKind kind = PackageKind::kDataset;
  QualifiedName object;
  VersionRef version;  // "latest" when the spec gives none
  std::string Ref() const { return object.ToString() + ":" + version.ToString(); }
};

struct JobResources {
  int64_t cpus = 1;
  int64_t memory_bytes = int64_t{2} << 30;
  int64_t gpus = 0;
  int64_t wall_time_s = 3600;
};

// The `publish` section: on success the output directory becomes a new
// version of `servable` (in the job's tenant), described by `manifest` or,
// when it is null, by the orrery.yaml the job wrote into its output.
struct JobPublish {
  std::string servable;
  nlohmann::json manifest;  // null: the output's own orrery.yaml
};

enum class JobExecutor { kLocal, kSlurm };
const char* JobExecutorName(JobExecutor executor);

struct JobSpec {
  std::string name;
  // The code, one of:
  // - `code: ./dir`: a local directory, which the CLI and the Python client
  //   upload (POST /api/v1/jobs/code) and replace with the next form;
  // - `code: {upload: <digest>}`: files uploaded before (a file set);
  // - `code: {servable: tenant/name[:version]}`: a published version's files.
  std::string code_dir;
  std::string code_upload;
  std::optional<JobInput> code_servable;
  // argv. command[0] is an absolute path, a path relative to the code
  // directory ("./train.sh", "bin/run"), or a bare name looked up in
  // /usr/local/bin, /usr/bin and /bin when the job starts.
  std::vector<std::string> command;
  std::vector<JobInput> inputs;  // sorted by name, names unique
  JobResources resources;
  std::map<std::string, std::string> env;  // names never start with ORRERY_
  int64_t max_restarts = 2;     // restarts after faults, each from the last checkpoint
  JobExecutor executor = JobExecutor::kLocal;
  bool network = false;         // the job may reach the network (if the operator allows)
  int64_t halt_grace_s = 30;    // SIGTERM, then this long before SIGKILL
  std::optional<JobPublish> publish;

  // The canonical JSON form (every field, defaults written out); parsing it
  // again gives the same spec.
  nlohmann::json ToJson() const;
};

constexpr size_t kMaxJobSpecBytes = 256 * 1024;
constexpr size_t kMaxJobInputs = 64;
constexpr size_t kMaxJobEnv = 128;

// Parses a spec written as YAML or JSON.
Result<JobSpec> ParseJobSpec(std::string_view text);
// Parses a spec already read as JSON (ToJson's output, or a request body).
Result<JobSpec> JobSpecFromJson(const nlohmann::json& spec);

}  // namespace orrery
