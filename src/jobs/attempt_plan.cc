#include "jobs/attempt_plan.h"

#include <array>

#include "core/files.h"

namespace orrery {
namespace {

using nlohmann::json;

constexpr std::array<const char*, 4> kEndNames = {"completed", "failed", "halted", "cancelled"};

std::map<std::string, std::string> PathMap(const std::map<std::string, std::filesystem::path>& in) {
  std::map<std::string, std::string> out;
  for (const auto& [name, path] : in) out[name] = path.string();
  return out;
}

}  // namespace

const char* AttemptEndName(AttemptEnd end) { return kEndNames[static_cast<size_t>(end)]; }

Result<AttemptEnd> ParseAttemptEnd(std::string_view text) {
  for (size_t i = 0; i < kEndNames.size(); ++i) {
    if (text == kEndNames[i]) return static_cast<AttemptEnd>(i);
  }
  return InvalidArgument("unknown attempt end '" + std::string(text) + "'");
}

json AttemptPlan::ToJson() const {
  return {{"job_id", job_id},
          {"attempt", attempt},
          {"command", command},
          {"env", env},
          {"code_dir", code_dir.string()},
          {"inputs", PathMap(inputs)},
          {"output_dir", output_dir.string()},
          {"checkpoint_dir", checkpoint_dir.string()},
          {"metrics_dir", metrics_dir.string()},
          {"log_path", log_path.string()},
          {"log_limit_bytes", log_limit_bytes},
          {"wall_time_s", wall_time_s},
          {"halt_grace_s", halt_grace_s},
          {"network", network},
          {"use_bubblewrap", use_bubblewrap},
          {"memory_bytes", memory_bytes},
          {"cpu_seconds", cpu_seconds},
          {"open_files", open_files},
          {"max_processes", max_processes},
          {"scratch_root", scratch_root.string()}};
}

Result<AttemptPlan> AttemptPlan::FromJson(const json& in) {
  // Written by the hub a moment ago: a missing or mistyped field is a bug
  // or a damaged file, reported as such.
  try {
    AttemptPlan plan;
    plan.job_id = in.at("job_id").get<int64_t>();
    plan.attempt = in.at("attempt").get<int64_t>();
    plan.command = in.at("command").get<std::vector<std::string>>();
    plan.env = in.at("env").get<std::map<std::string, std::string>>();
    plan.code_dir = in.at("code_dir").get<std::string>();
    for (const auto& [name, path] : in.at("inputs").items()) {
      plan.inputs[name] = path.get<std::string>();
    }
    plan.output_dir = in.at("output_dir").get<std::string>();
    plan.checkpoint_dir = in.at("checkpoint_dir").get<std::string>();
    plan.metrics_dir = in.at("metrics_dir").get<std::string>();
    plan.log_path = in.at("log_path").get<std::string>();
    plan.log_limit_bytes = in.at("log_limit_bytes").get<int64_t>();
    plan.wall_time_s = in.at("wall_time_s").get<int64_t>();
    plan.halt_grace_s = in.at("halt_grace_s").get<int64_t>();
    plan.network = in.at("network").get<bool>();
    plan.use_bubblewrap = in.at("use_bubblewrap").get<bool>();
    plan.memory_bytes = in.at("memory_bytes").get<int64_t>();
    plan.cpu_seconds = in.at("cpu_seconds").get<int64_t>();
    plan.open_files = in.at("open_files").get<int64_t>();
    plan.max_processes = in.at("max_processes").get<int64_t>();
    plan.scratch_root = in.at("scratch_root").get<std::string>();
    if (plan.command.empty()) return Internal("attempt plan: empty command");
    return plan;
  } catch (const json::exception& e) {
    return Internal(std::string("attempt plan: ") + e.what());
  }
}

json AttemptStatus::ToJson() const {
  json out = {{"state", state},
              {"supervisor_pid", supervisor_pid},
              {"job_pid", job_pid},
              {"started_at_ms", started_at_ms}};
  if (state == "ended") {
    out["ended_at_ms"] = ended_at_ms;
    out["end"] = AttemptEndName(end);
    out["reason"] = reason;
  }
  return out;
}

Result<AttemptStatus> AttemptStatus::FromJson(const json& in) {
  try {
    AttemptStatus status;
    status.state = in.at("state").get<std::string>();
    status.supervisor_pid = in.at("supervisor_pid").get<int64_t>();
    status.job_pid = in.at("job_pid").get<int64_t>();
    status.started_at_ms = in.at("started_at_ms").get<int64_t>();
    if (status.state == "ended") {
      status.ended_at_ms = in.at("ended_at_ms").get<int64_t>();
      ASSIGN_OR_RETURN(status.end, ParseAttemptEnd(in.at("end").get<std::string>()));
      status.reason = in.at("reason").get<std::string>();
    } else if (status.state != "starting" && status.state != "running") {
      return Internal("attempt status: unknown state '" + status.state + "'");
    }
    return status;
  } catch (const json::exception& e) {
    return Internal(std::string("attempt status: ") + e.what());
  }
}

Status WriteAttemptStatus(const std::filesystem::path& dir, const AttemptStatus& status) {
  return WriteFileAtomic(StatusPath(dir), status.ToJson().dump() + "\n");
}

Result<AttemptStatus> ReadAttemptStatus(const std::filesystem::path& dir) {
  std::error_code error;
  if (!std::filesystem::exists(StatusPath(dir), error)) {
    return NotFound("no status yet in " + dir.string());
  }
  ASSIGN_OR_RETURN(std::string text, ReadFile(StatusPath(dir)));
  json parsed = json::parse(text, nullptr, false);
  if (parsed.is_discarded()) return Internal("attempt status in " + dir.string() + " is not JSON");
  return AttemptStatus::FromJson(parsed);
}

}  // namespace orrery
