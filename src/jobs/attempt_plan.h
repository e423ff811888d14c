// What passes between the hub and a job attempt's supervisor (supervisor.h),
// as files in the attempt's directory, so that either can die and the other
// still knows where things stand:
//
//   plan.json    written by the hub before it starts the supervisor: what to
//                run, where, with which limits. Read once by the supervisor.
//   status.json  written by the supervisor (atomically: temp file, fsync,
//                rename) when it starts, once the job's process runs, and
//                when the attempt ends, with its outcome. The hub reads it;
//                a restarted hub finds the outcome of attempts that ended
//                while it was down.
//
// Thread-safety: value types and pure functions.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace orrery {

// Where the job finds things inside its sandbox (docs/jobs.md).
inline constexpr const char* kJobInputsDir = "/job/inputs";
inline constexpr const char* kJobOutputDir = "/job/output";
inline constexpr const char* kJobCheckpointDir = "/job/checkpoint";
inline constexpr const char* kJobMetricsDir = "/job/metrics";
inline constexpr const char* kJobMetricsFile = "/job/metrics/metrics.jsonl";

struct AttemptPlan {
  int64_t job_id = 0;
  int64_t attempt = 0;
  std::vector<std::string> command;       // as the spec gives it (resolved by the supervisor)
  std::map<std::string, std::string> env;  // the spec's and the ORRERY_ contract's
  std::filesystem::path code_dir;          // read-only at /servable, the working directory
  std::map<std::string, std::filesystem::path> inputs;  // name -> read-only directory
  std::filesystem::path output_dir, checkpoint_dir, metrics_dir;  // read-write
  std::filesystem::path log_path;          // appended to; bounded per attempt
  int64_t log_limit_bytes = 64 << 20;
  int64_t wall_time_s = 3600;
  int64_t halt_grace_s = 30;
  bool network = false;
  // The sandbox's limits (sandbox/sandbox_options.h).
  bool use_bubblewrap = true;
  int64_t memory_bytes = 0;
  int64_t cpu_seconds = 0;
  int64_t open_files = 1024;
  int64_t max_processes = 256;
  std::filesystem::path scratch_root;

  nlohmann::json ToJson() const;
  static Result<AttemptPlan> FromJson(const nlohmann::json& json);
};

// How an attempt ended, as the supervisor saw it.
enum class AttemptEnd {
  kCompleted,  // the command exited 0
  kFailed,     // non-zero exit, a signal, wall time, or it could not start
  kHalted,     // the hub asked it to halt (SIGTERM to the supervisor)
  kCancelled,  // the hub asked it to stop for good (SIGUSR1 to the supervisor)
};
const char* AttemptEndName(AttemptEnd end);
Result<AttemptEnd> ParseAttemptEnd(std::string_view text);

struct AttemptStatus {
  std::string state;  // "starting" | "running" | "ended"
  int64_t supervisor_pid = 0;
  int64_t job_pid = 0;        // 0 until running
  int64_t started_at_ms = 0;  // when the job's process started
  int64_t ended_at_ms = 0;
  AttemptEnd end = AttemptEnd::kFailed;  // when "ended"
  std::string reason;                    // when "ended": "exit code 0", "wall time ...", ...

  nlohmann::json ToJson() const;
  static Result<AttemptStatus> FromJson(const nlohmann::json& json);
};

// The files in an attempt's directory.
inline std::filesystem::path PlanPath(const std::filesystem::path& dir) { return dir / "plan.json"; }
inline std::filesystem::path StatusPath(const std::filesystem::path& dir) {
  return dir / "status.json";
}

Status WriteAttemptStatus(const std::filesystem::path& dir, const AttemptStatus& status);
// kNotFound when the supervisor has not written one yet.
Result<AttemptStatus> ReadAttemptStatus(const std::filesystem::path& dir);

}  // namespace orrery
