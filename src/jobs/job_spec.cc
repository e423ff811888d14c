#include "jobs/job_spec.h"

#include <algorithm>
#include <set>

#include "core/quantity.h"
#include "repository/yaml_load.h"

namespace orrery {
namespace {

using nlohmann::json;

Status SpecError(const std::string& field, const std::string& message) {
  return Unprocessable("job spec: " + field + ": " + message);
}

// A JSON object whose keys were checked against an allowed set. Null values
// count as absent (`key:` in YAML).
class Fields {
 public:
  static Result<Fields> Open(const json& value, const std::string& field,
                             std::initializer_list<std::string_view> allowed) {
    if (!value.is_object()) return SpecError(field.empty() ? "document" : field, "must be a mapping");
    for (const auto& [key, item] : value.items()) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string valid;
        for (std::string_view name : allowed) valid += (valid.empty() ? "" : ", ") + std::string(name);
        return SpecError(Path(field, key), "unknown key (valid: " + valid + ")");
      }
    }
    return Fields(value, field);
  }

  std::string Path(std::string_view key) const { return Path(field_, key); }
  const json* Get(std::string_view key) const {
    auto it = value_.find(key);
    return it == value_.end() || it->is_null() ? nullptr : &*it;
  }
  Result<std::string> String(std::string_view key, bool required) const {
    const json* item = Get(key);
    if (item == nullptr) {
      if (required) return SpecError(Path(key), "required");
      return std::string();
    }
    if (!item->is_string()) return SpecError(Path(key), "must be a string");
    if (item->get_ref<const std::string&>().empty()) return SpecError(Path(key), "must not be empty");
    return item->get<std::string>();
  }
  Result<int64_t> Integer(std::string_view key, int64_t min, int64_t max, int64_t fallback) const {
    const json* item = Get(key);
    if (item == nullptr) return fallback;
    if (!item->is_number_integer() || item->get<int64_t>() < min || item->get<int64_t>() > max) {
      return SpecError(Path(key), "must be an integer in " + std::to_string(min) + ".." +
                                      std::to_string(max));
    }
    return item->get<int64_t>();
  }
  Result<bool> Bool(std::string_view key, bool fallback) const {
    const json* item = Get(key);
    if (item == nullptr) return fallback;
    if (!item->is_boolean()) return SpecError(Path(key), "must be true or false");
    return item->get<bool>();
  }
  // A quantity written as a number of units or as text `parse` reads
  // ("90m", "2GiB"), in min..max units.
  Result<int64_t> Quantity(std::string_view key, Result<int64_t> (*parse)(std::string_view),
                           int64_t min, int64_t max, int64_t fallback) const {
    const json* item = Get(key);
    if (item == nullptr) return fallback;
    Result<int64_t> value = InvalidArgument("");
    if (item->is_number_integer()) {
      value = item->get<int64_t>();
    } else if (item->is_string()) {
      value = parse(item->get_ref<const std::string&>());
    }
    if (!value.ok() && item->is_string()) return SpecError(Path(key), value.status().message());
    if (!value.ok() || *value < min || *value > max) {
      return SpecError(Path(key), "must be in " + std::to_string(min) + ".." + std::to_string(max));
    }
    return *value;
  }

 private:
  Fields(const json& value, std::string field) : value_(value), field_(std::move(field)) {}
  static std::string Path(const std::string& field, std::string_view key) {
    return field.empty() ? std::string(key) : field + "." + std::string(key);
  }
  const json& value_;
  std::string field_;
};

// "tenant/name[:version|alias]" of `kind`.
Result<JobInput> ParseInputRef(const std::string& field, const std::string& name, PackageKind kind,
                               const std::string& text) {
  JobInput input;
  input.name = name;
  input.kind = kind;
  size_t colon = text.rfind(':');
  std::string object = colon == std::string::npos ? text : text.substr(0, colon);
  Result<QualifiedName> qualified = ParseQualifiedName(object);
  if (!qualified.ok()) {
    return SpecError(field, "'" + text + "' is not tenant/name[:version]: " +
                                qualified.status().message());
  }
  input.object = *qualified;
  Result<VersionRef> version =
      ParseVersionRef(colon == std::string::npos ? "latest" : text.substr(colon + 1));
  if (!version.ok()) return SpecError(field, version.status().message());
  input.version = *version;
  return input;
}

// {dataset: ref} or {servable: ref}.
Result<JobInput> ParseInput(const json& value, const std::string& field, const std::string& name) {
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(value, field, {"dataset", "servable"}));
  ASSIGN_OR_RETURN(std::string dataset, fields.String("dataset", false));
  ASSIGN_OR_RETURN(std::string servable, fields.String("servable", false));
  if (dataset.empty() == servable.empty()) {
    return SpecError(field, "give exactly one of dataset: or servable: (tenant/name[:version])");
  }
  return dataset.empty() ? ParseInputRef(fields.Path("servable"), name, PackageKind::kServable, servable)
                         : ParseInputRef(fields.Path("dataset"), name, PackageKind::kDataset, dataset);
}

Status ParseCode(const Fields& top, JobSpec& spec) {
  const json* code = top.Get("code");
  if (code == nullptr) {
    return SpecError("code", "required: a directory to upload, or {servable: tenant/name:version}");
  }
  if (code->is_string()) {
    ASSIGN_OR_RETURN(spec.code_dir, top.String("code", true));
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(*code, "code", {"servable", "upload"}));
  ASSIGN_OR_RETURN(std::string servable, fields.String("servable", false));
  ASSIGN_OR_RETURN(spec.code_upload, fields.String("upload", false));
  if (servable.empty() == spec.code_upload.empty()) {
    return SpecError("code", "give exactly one of servable: tenant/name[:version] or upload: <digest>");
  }
  if (!spec.code_upload.empty()) {
    bool hex = spec.code_upload.size() == 64 &&
               std::all_of(spec.code_upload.begin(), spec.code_upload.end(),
                           [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
    if (!hex) return SpecError("code.upload", "must be the 64 hex digits of an upload's digest");
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(spec.code_servable,
                   ParseInputRef(fields.Path("servable"), "code", PackageKind::kServable, servable));
  return Status::Ok();
}

Status ParseCommand(const Fields& top, JobSpec& spec) {
  const json* command = top.Get("command");
  if (command == nullptr) return SpecError("command", "required: the program and its arguments, a list");
  if (command->is_string()) {
    return SpecError("command", "must be a list (argv), not a shell string: e.g. [python3, train.py]");
  }
  if (!command->is_array() || command->empty() || command->size() > 1024) {
    return SpecError("command", "must be a list of 1..1024 strings");
  }
  for (size_t i = 0; i < command->size(); ++i) {
    const json& arg = (*command)[i];
    std::string field = "command[" + std::to_string(i) + "]";
    if (arg.is_number() || arg.is_boolean()) {
      spec.command.push_back(arg.dump());  // [train.py, --epochs, 3]: 3 is meant as text
      continue;
    }
    if (!arg.is_string()) return SpecError(field, "must be a string");
    const std::string& text = arg.get_ref<const std::string&>();
    if (text.find('\0') != std::string::npos) return SpecError(field, "holds a NUL byte");
    spec.command.push_back(text);
  }
  const std::string& program = spec.command[0];
  if (program.empty()) return SpecError("command[0]", "must not be empty");
  if (program[0] != '/' && program.find("..") != std::string::npos) {
    return SpecError("command[0]", "a relative program path may not contain '..'");
  }
  return Status::Ok();
}

Status ParseInputs(const Fields& top, JobSpec& spec) {
  const json* inputs = top.Get("inputs");
  if (inputs == nullptr) return Status::Ok();
  if (!inputs->is_object()) {
    return SpecError("inputs", "must be a mapping of name: {dataset: tenant/name[:version]}");
  }
  if (inputs->size() > kMaxJobInputs) {
    return SpecError("inputs", "at most " + std::to_string(kMaxJobInputs) + " inputs");
  }
  for (const auto& [name, value] : inputs->items()) {
    std::string field = "inputs." + name;
    Status valid = ValidateObjectName(name);
    if (!valid.ok()) return SpecError(field, "the input's name: " + valid.message());
    ASSIGN_OR_RETURN(JobInput input, ParseInput(value, field, name));
    spec.inputs.push_back(std::move(input));
  }
  // json objects iterate sorted by key: names are unique and in order.
  return Status::Ok();
}

Status ParseResources(const Fields& top, JobSpec& spec) {
  const json* resources = top.Get("resources");
  if (resources == nullptr) return Status::Ok();
  ASSIGN_OR_RETURN(Fields fields,
                   Fields::Open(*resources, "resources", {"cpus", "memory", "gpus", "wall_time"}));
  JobResources& r = spec.resources;
  ASSIGN_OR_RETURN(r.cpus, fields.Integer("cpus", 1, 1024, r.cpus));
  ASSIGN_OR_RETURN(r.gpus, fields.Integer("gpus", 0, 64, r.gpus));
  ASSIGN_OR_RETURN(r.memory_bytes,
                   fields.Quantity("memory", ParseByteSize, 16 << 20, int64_t{1} << 50, r.memory_bytes));
  ASSIGN_OR_RETURN(r.wall_time_s,
                   fields.Quantity("wall_time", ParseDuration, 1, 366 * 86400, r.wall_time_s));
  return Status::Ok();
}

bool ValidEnvName(std::string_view name) {
  if (name.empty() || name.size() > 128 || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  });
}

Status ParseEnv(const Fields& top, JobSpec& spec) {
  const json* env = top.Get("env");
  if (env == nullptr) return Status::Ok();
  if (!env->is_object()) return SpecError("env", "must be a mapping of NAME: value");
  if (env->size() > kMaxJobEnv) return SpecError("env", "at most " + std::to_string(kMaxJobEnv) + " variables");
  for (const auto& [name, value] : env->items()) {
    std::string field = "env." + name;
    if (!ValidEnvName(name)) return SpecError(field, "a name is letters, digits and _, not first a digit");
    if (name.rfind("ORRERY_", 0) == 0) return SpecError(field, "ORRERY_ names are the hub's (docs/jobs.md)");
    std::string text = value.is_string() ? value.get<std::string>() : value.dump();
    if (value.is_object() || value.is_array() || value.is_null()) {
      return SpecError(field, "must be a string or a number");
    }
    if (text.size() > 16384 || text.find('\0') != std::string::npos) {
      return SpecError(field, "must be at most 16 KiB of text without NUL bytes");
    }
    spec.env[name] = text;
  }
  return Status::Ok();
}

Status ParsePublish(const Fields& top, JobSpec& spec) {
  const json* publish = top.Get("publish");
  if (publish == nullptr) return Status::Ok();
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(*publish, "publish", {"servable", "manifest"}));
  JobPublish out;
  ASSIGN_OR_RETURN(out.servable, fields.String("servable", true));
  Status valid = ValidateObjectName(out.servable);
  if (!valid.ok()) {
    return SpecError("publish.servable", valid.message() + " (a name in the job's own tenant)");
  }
  if (const json* manifest = fields.Get("manifest")) {
    if (!manifest->is_object()) return SpecError("publish.manifest", "must be a mapping (an orrery.yaml)");
    out.manifest = *manifest;
  }
  spec.publish = std::move(out);
  return Status::Ok();
}

}  // namespace

const char* JobExecutorName(JobExecutor executor) {
  return executor == JobExecutor::kSlurm ? "slurm" : "local";
}

Result<JobSpec> JobSpecFromJson(const json& value) {
  ASSIGN_OR_RETURN(Fields top, Fields::Open(value, "", {"name", "code", "command", "inputs",
                                                        "resources", "env", "max_restarts",
                                                        "executor", "network", "halt_grace",
                                                        "publish"}));
  JobSpec spec;
  ASSIGN_OR_RETURN(spec.name, top.String("name", true));
  Status valid = ValidateObjectName(spec.name);
  if (!valid.ok()) return SpecError("name", valid.message());
  RETURN_IF_ERROR(ParseCode(top, spec));
  RETURN_IF_ERROR(ParseCommand(top, spec));
  RETURN_IF_ERROR(ParseInputs(top, spec));
  RETURN_IF_ERROR(ParseResources(top, spec));
  RETURN_IF_ERROR(ParseEnv(top, spec));
  ASSIGN_OR_RETURN(spec.max_restarts, top.Integer("max_restarts", 0, 100, spec.max_restarts));
  ASSIGN_OR_RETURN(std::string executor, top.String("executor", false));
  if (executor == "slurm") {
    spec.executor = JobExecutor::kSlurm;
  } else if (!executor.empty() && executor != "local") {
    return SpecError("executor", "'" + executor + "' is not one of local, slurm");
  }
  ASSIGN_OR_RETURN(spec.network, top.Bool("network", false));
  ASSIGN_OR_RETURN(spec.halt_grace_s, top.Quantity("halt_grace", ParseDuration, 1, 3600, 30));
  RETURN_IF_ERROR(ParsePublish(top, spec));
  return spec;
}

Result<JobSpec> ParseJobSpec(std::string_view text) {
  if (text.size() > kMaxJobSpecBytes) {
    return TooLarge("job spec: larger than " + std::to_string(kMaxJobSpecBytes / 1024) + " KiB");
  }
  Result<json> value = LoadYamlAsJson(text, "job spec");
  if (!value.ok()) {
    if (value.status().code() == Code::kUnprocessable) return value.status();
    return Unprocessable("job spec: not YAML or JSON: " + value.status().message());
  }
  return JobSpecFromJson(*value);
}

json JobSpec::ToJson() const {
  auto ref = [](const JobInput& input) {
    return json{{PackageKindName(input.kind), input.Ref()}};
  };
  json out = {{"name", name},
              {"command", command},
              {"resources",
               {{"cpus", resources.cpus},
                {"memory", resources.memory_bytes},
                {"gpus", resources.gpus},
                {"wall_time", resources.wall_time_s}}},
              {"env", env},
              {"max_restarts", max_restarts},
              {"executor", JobExecutorName(executor)},
              {"network", network},
              {"halt_grace", halt_grace_s}};
  if (code_servable) {
    out["code"] = ref(*code_servable);
  } else if (!code_upload.empty()) {
    out["code"] = {{"upload", code_upload}};
  } else {
    out["code"] = code_dir;
  }
  json inputs_json = json::object();
  for (const JobInput& input : inputs) inputs_json[input.name] = ref(input);
  out["inputs"] = inputs_json;
  if (publish) out["publish"] = {{"servable", publish->servable}, {"manifest", publish->manifest}};
  return out;
}

}  // namespace orrery
