// `orrery job ...`: training jobs (docs/jobs.md).
#include <charconv>
#include <chrono>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "cli/output.h"
#include "cli/url.h"
#include "core/files.h"
#include "jobs/job_spec.h"
#include "repository/archive.h"

namespace orrery::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kIdHelp = "the job's number (orrery job list)";

std::string JobPath(int64_t id, const std::string& rest = "") {
  return rest.empty() ? ApiPath({"jobs", std::to_string(id)})
                      : ApiPath({"jobs", std::to_string(id), rest});
}

// ---- logs

// Prints the job's log from `offset`; with `follow`, until the job is over.
// Returns the job's state when the log ended (or when not following).
Result<std::string> PrintLogs(ApiClient& api, int64_t id, int64_t offset, bool follow) {
  while (true) {
    Query query = {{"offset", std::to_string(offset)}};
    if (follow) query.push_back({"wait_ms", "10000"});
    ASSIGN_OR_RETURN(HttpResponse answer, api.Get(ApiPath({"jobs", std::to_string(id), "logs"}, query)));
    std::cout << answer.body << std::flush;
    std::string next = answer.Header("x-orrery-log-offset");
    int64_t parsed = 0;
    auto [end, error] = std::from_chars(next.data(), next.data() + next.size(), parsed);
    offset = error == std::errc() && end == next.data() + next.size() && !next.empty()
                 ? parsed
                 : offset + static_cast<int64_t>(answer.body.size());
    std::string state = answer.Header("x-orrery-job-state");
    if (!follow || answer.Header("x-orrery-log-end") == "true") return state;
  }
}

struct LogsArgs {
  int64_t id = 0;
  bool follow = false;
};

Status RunLogs(ApiClient& api, const LogsArgs& args) {
  return PrintLogs(api, args.id, 0, args.follow).status();
}

// ---- submit

struct SubmitArgs {
  std::string spec_file;
  bool follow = false;
};

// The spec as the server takes it: a local code directory (relative to the
// spec file) is uploaded first and named by its digest.
Result<json> PrepareSpec(ApiClient& api, const SubmitArgs& args) {
  Result<std::string> text = ReadFile(args.spec_file);
  if (!text.ok()) return InvalidArgument("cannot read " + args.spec_file);
  Result<JobSpec> parsed = ParseJobSpec(*text);
  if (!parsed.ok()) return InvalidArgument(args.spec_file + ": " + parsed.status().message());
  JobSpec spec = std::move(*parsed);
  if (!spec.code_dir.empty()) {
    fs::path dir = fs::path(spec.code_dir).is_absolute()
                       ? fs::path(spec.code_dir)
                       : fs::absolute(args.spec_file).parent_path() / spec.code_dir;
    if (!fs::is_directory(dir)) {
      return InvalidArgument(args.spec_file + ": code: " + dir.string() + " is not a directory");
    }
    ASSIGN_OR_RETURN(TempDir scratch, TempDir::Create(fs::temp_directory_path(), "orrery-"));
    fs::path archive = scratch.path() / "code.tar.zst";
    RETURN_IF_ERROR(PackDirectory(dir, archive, /*zstd=*/true));
    ASSIGN_OR_RETURN(json uploaded, api.Upload(ApiPath({"jobs", "code"}), archive,
                                               {{"Content-Type", "application/zstd"}}));
    spec.code_dir.clear();
    spec.code_upload = Field(uploaded, "digest");
  }
  return spec.ToJson();
}

Status RunSubmit(ApiClient& api, const ClientOptions& options, const SubmitArgs& args) {
  ASSIGN_OR_RETURN(json spec, PrepareSpec(api, args));
  ASSIGN_OR_RETURN(json job, api.Call("POST", ApiPath({"jobs"}), spec));
  int64_t id = job.value("id", int64_t{0});
  if (options.json && !args.follow) {
    PrintJson(job);
    return Status::Ok();
  }
  std::cerr << "job " << id << " (" << Field(job, "name") << ") submitted: " << Field(job, "state")
            << "\n";
  if (!args.follow) {
    std::cout << id << "\n";
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(std::string state, PrintLogs(api, id, 0, true));
  ASSIGN_OR_RETURN(job, api.Call("GET", JobPath(id)));
  if (options.json) PrintJson(job);
  std::cerr << "job " << id << ": " << Field(job, "state") << " (" << Field(job, "reason") << ")\n";
  if (state == "COMPLETED" || state == "HALTED") return Status::Ok();
  return Unavailable("job " + std::to_string(id) + " ended " + Field(job, "state"));
}

// ---- list, show, metrics

struct ListArgs {
  std::string state;
  int limit = 50;
};

Status RunList(ApiClient& api, const ClientOptions& options, const ListArgs& args) {
  Query query = {{"limit", std::to_string(args.limit)}};
  if (!args.state.empty()) query.push_back({"state", args.state});
  ASSIGN_OR_RETURN(json answer, api.Call("GET", ApiPath({"jobs"}, query)));
  if (options.json) {
    PrintJson(answer);
    return Status::Ok();
  }
  Table table({"ID", "NAME", "TENANT", "STATE", "ATTEMPTS", "UPDATED", "REASON"});
  for (const json& job : answer.value("jobs", json::array())) {
    table.AddRow({Field(job, "id"), Field(job, "name"), Field(job, "tenant"), Field(job, "state"),
                  Field(job, "attempts"), Field(job, "updated_at"), Field(job, "reason")});
  }
  if (table.size() == 0) {
    std::cout << "no jobs\n";
  } else {
    table.Print(std::cout);
  }
  return Status::Ok();
}

void PrintJob(const json& job) {
  std::cout << "job " << Field(job, "id") << ": " << Field(job, "name") << " (" << Field(job, "tenant")
            << ")\n"
            << "state:     " << Field(job, "state") << " (" << Field(job, "reason") << ")\n"
            << "submitted: " << Field(job, "submitted_at") << "\n"
            << "attempts:  " << Field(job, "attempts") << " (restarts " << Field(job, "restarts")
            << " of at most " << Field(job, "max_restarts") << ")\n"
            << "code:      " << Field(job, "code_digest") << "\n";
  const json& spec = job.value("spec", json::object());
  std::string command;
  for (const json& arg : spec.value("command", json::array())) {
    command += (command.empty() ? "" : " ") + arg.get<std::string>();
  }
  std::cout << "command:   " << command << "\n";
  json inputs = job.value("resolved", json::object()).value("inputs", json::object());
  for (const auto& [name, input] : inputs.items()) {
    std::cout << "input:     " << name << " = " << Field(input, "kind") << " " << Field(input, "ref")
              << " (" << Field(input, "digest") << ")\n";
  }
  if (!Field(job, "published").empty()) std::cout << "published: " << Field(job, "published") << "\n";
  const json& metrics = job.value("metrics", json::object());
  if (metrics.value("count", 0) > 0) {
    std::cout << "metrics:   " << Field(metrics, "count") << " lines, last "
              << DumpJson(metrics.value("last", json::object())) << "\n";
  }
  std::cout << "\nhistory:\n";
  Table history({"AT", "STATE", "ATTEMPT", "REASON"});
  for (const json& event : job.value("history", json::array())) {
    history.AddRow({Field(event, "at"), Field(event, "state"), Field(event, "attempt"),
                    Field(event, "reason")});
  }
  history.Print(std::cout);
  json attempts = job.value("attempt_list", json::array());
  if (!attempts.empty()) {
    std::cout << "\nattempts:\n";
    Table table({"#", "STARTED", "ENDED", "OUTCOME"});
    for (const json& attempt : attempts) {
      table.AddRow({Field(attempt, "number"), Field(attempt, "started_at"),
                    Field(attempt, "ended_at", "-"), Field(attempt, "outcome", "running")});
    }
    table.Print(std::cout);
  }
}

Status RunShow(ApiClient& api, const ClientOptions& options, int64_t id) {
  ASSIGN_OR_RETURN(json job, api.Call("GET", JobPath(id)));
  if (options.json) {
    PrintJson(job);
  } else {
    PrintJob(job);
  }
  return Status::Ok();
}

Status RunMetrics(ApiClient& api, const ClientOptions& options, int64_t id) {
  ASSIGN_OR_RETURN(json answer, api.Call("GET", JobPath(id, "metrics")));
  if (options.json) {
    PrintJson(answer);
    return Status::Ok();
  }
  for (const json& line : answer.value("metrics", json::array())) std::cout << DumpJson(line) << "\n";
  return Status::Ok();
}

// ---- halt, resume, cancel, rerun

// Halt and cancel return once the job has stopped (HALTED, CANCELLED, or
// another end it reached first), unless `no_wait`.
Status RunChange(ApiClient& api, const ClientOptions& options, int64_t id, const std::string& action,
                 bool no_wait) {
  ASSIGN_OR_RETURN(json job, api.Call("POST", JobPath(id, action)));
  bool stopping = action == "halt" || action == "cancel";
  while (stopping && !no_wait) {
    std::string state = Field(job, "state");
    bool moving = state == "STARTING" || state == "RUNNING" || state == "HALTING" ||
                  (action == "cancel" && state == "QUEUED");
    if (!moving) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ASSIGN_OR_RETURN(job, api.Call("GET", JobPath(id)));
  }
  if (options.json) {
    PrintJson(job);
  } else if (action == "rerun") {
    std::cerr << "job " << Field(job, "id") << " submitted: a rerun of job " << id << "\n";
    std::cout << Field(job, "id") << "\n";
  } else {
    std::cout << "job " << id << ": " << Field(job, "state") << " (" << Field(job, "reason") << ")\n";
  }
  return Status::Ok();
}

// ---- limits

struct LimitsArgs {
  std::string tenant;
  std::vector<std::string> set;  // key=value
  bool clear = false;
};

Status RunLimits(ApiClient& api, const ClientOptions& options, const LimitsArgs& args) {
  std::string tenant = args.tenant;
  if (tenant.empty()) {
    ASSIGN_OR_RETURN(tenant, api.OwnTenant());
  }
  std::string path = ApiPath({"tenants", tenant, "job-limits"});
  json answer;
  if (args.clear || !args.set.empty()) {
    json limits = args.clear ? json() : json::object();
    for (const std::string& item : args.set) {
      size_t equals = item.find('=');
      int64_t value = 0;
      bool ok = equals != std::string::npos && equals + 1 < item.size();
      if (ok) {
        const char* first = item.data() + equals + 1;
        const char* last = item.data() + item.size();
        auto [end, error] = std::from_chars(first, last, value);
        ok = error == std::errc() && end == last && value >= 0;
      }
      if (!ok) {
        return InvalidArgument("--set " + item + ": give NAME=NUMBER (max_running, cpus, memory, "
                               "gpus, max_wall_time; 0: no limit)");
      }
      limits[item.substr(0, equals)] = value;
    }
    ASSIGN_OR_RETURN(answer, api.Call("PUT", path, limits));
  } else {
    ASSIGN_OR_RETURN(answer, api.Call("GET", path));
  }
  if (options.json) {
    PrintJson(answer);
    return Status::Ok();
  }
  const json& limits = answer.value("limits", json::object());
  std::cout << "job limits of " << tenant << (answer.value("default", false) ? " (the hub's defaults)" : "")
            << ": at most " << Field(limits, "max_running", "0") << " running, "
            << Field(limits, "cpus", "0") << " cpus, " << Field(limits, "memory", "0")
            << " bytes, " << Field(limits, "gpus", "0") << " gpus, wall time "
            << Field(limits, "max_wall_time", "0") << " s per job (0: no limit of its own)\n";
  return Status::Ok();
}

// ---- registration

void AddIdCommand(CLI::App& job, CommandSet& set, const std::string& name, const std::string& help,
                  std::function<Status(ApiClient&, const ClientOptions&, int64_t)> run) {
  auto id = std::make_shared<int64_t>(0);
  CLI::App* command = AddClientCommand(
      job, set, name, help,
      [id, run](ApiClient& api, const ClientOptions& o) { return run(api, o, *id); });
  command->add_option("ID", *id, kIdHelp)->required()->check(CLI::PositiveNumber);
}

}  // namespace

void AddJobCommands(CLI::App& app, CommandSet& set) {
  CLI::App* job = app.add_subcommand(
      "job", "Training jobs: submit your training code against the hub's data, watch it, halt "
             "and resume it (docs/jobs.md).");
  job->require_subcommand(1);

  auto submit = std::make_shared<SubmitArgs>();
  CLI::App* submit_command = AddClientCommand(
      *job, set, "submit",
      "Submit the job SPEC (YAML or JSON) describes. A `code:` directory (relative to SPEC) is "
      "uploaded first. Prints the job's number; with --follow, prints its log as it runs and "
      "exits 0 once it COMPLETED (or HALTED), 1 when it FAILED or was CANCELLED.",
      [submit](ApiClient& api, const ClientOptions& o) { return RunSubmit(api, o, *submit); });
  submit_command->add_option("SPEC", submit->spec_file, "the job spec file")->required();
  submit_command->add_flag("-f,--follow", submit->follow, "print the log as the job runs, to its end");

  auto list = std::make_shared<ListArgs>();
  CLI::App* list_command = AddClientCommand(
      *job, set, "list", "List your tenant's jobs, newest first (the hub admin: every tenant's).",
      [list](ApiClient& api, const ClientOptions& o) { return RunList(api, o, *list); });
  list_command->add_option("--state", list->state, "only jobs in this state")
      ->check(CLI::IsMember({"QUEUED", "STARTING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED",
                             "HALTING", "HALTED"}));
  list_command->add_option("--limit", list->limit, "at most this many")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();

  AddIdCommand(*job, set, "show",
               "Show a job: its state and why, its spec and pinned inputs, every state change "
               "with its time (its history) and its attempts.",
               RunShow);
  AddIdCommand(*job, set, "metrics", "Print the metrics lines the job wrote to $ORRERY_METRICS.",
               RunMetrics);

  auto logs = std::make_shared<LogsArgs>();
  CLI::App* logs_command = AddClientCommand(
      *job, set, "logs",
      "Print a job's log: the stdout and stderr of every attempt, with the hub's own lines "
      "([orrery] ...). With -f, keep printing as it grows until the job is over.",
      [logs](ApiClient& api, const ClientOptions&) { return RunLogs(api, *logs); });
  logs_command->add_option("ID", logs->id, kIdHelp)->required()->check(CLI::PositiveNumber);
  logs_command->add_flag("-f,--follow", logs->follow, "follow the log until the job is over");

  auto no_wait = std::make_shared<bool>(false);
  auto change = [no_wait](const std::string& action) {
    return [action, no_wait](ApiClient& api, const ClientOptions& o, int64_t id) {
      return RunChange(api, o, id, action, *no_wait);
    };
  };
  AddIdCommand(*job, set, "halt",
               "Halt a job: SIGTERM lets it write its checkpoint (SIGKILL after its halt_grace), "
               "its resources are freed, and it waits HALTED for resume. Returns once it has "
               "stopped (--no-wait: at once).",
               change("halt"));
  job->get_subcommand("halt")->add_flag("--no-wait", *no_wait, "return at once (HALTING)");
  AddIdCommand(*job, set, "resume",
               "Resume a HALTED job: it queues again and its next attempt starts from the "
               "checkpoint it left.",
               change("resume"));
  AddIdCommand(*job, set, "cancel",
               "Cancel a job for good (a running one is stopped as a halt stops it). Returns "
               "once it has stopped (--no-wait: at once).",
               change("cancel"));
  job->get_subcommand("cancel")->add_flag("--no-wait", *no_wait, "return at once");
  auto publish_name = std::make_shared<std::string>();
  AddIdCommand(*job, set, "publish",
               "Publish a COMPLETED job's output as a new version of a servable of your tenant, "
               "with its lineage (the job, its code, its inputs' versions and digests, command, "
               "environment, final metrics). The servable and manifest are the spec's publish "
               "section's unless --name says otherwise.",
               [publish_name](ApiClient& api, const ClientOptions& o, int64_t id) -> Status {
                 json body = json::object();
                 if (!publish_name->empty()) body["servable"] = *publish_name;
                 ASSIGN_OR_RETURN(json answer, api.Call("POST", JobPath(id, "publish"), body));
                 if (o.json) {
                   PrintJson(answer);
                 } else {
                   const json& version = answer.value("version", json::object());
                   std::cout << Field(version, "tenant") << "/" << Field(version, "name") << ":"
                             << Field(version, "version") << "\n";
                 }
                 return Status::Ok();
               });
  job->get_subcommand("publish")
      ->add_option("--name", *publish_name, "the servable to publish into (in your tenant)");
  AddIdCommand(*job, set, "rerun",
               "Submit the same job again, from the same code and input versions (their digests).",
               change("rerun"));

  auto limits = std::make_shared<LimitsArgs>();
  CLI::App* limits_command = AddClientCommand(
      *job, set, "limits",
      "Show a tenant's job limits (yours by default); the hub admin sets them with --set "
      "NAME=NUMBER (max_running, cpus, memory, gpus, max_wall_time; 0: no limit of its own) "
      "or returns them to the hub's defaults with --clear. Jobs over a limit wait QUEUED.",
      [limits](ApiClient& api, const ClientOptions& o) { return RunLimits(api, o, *limits); });
  limits_command->add_option("TENANT", limits->tenant, "the tenant (default: your token's)");
  limits_command->add_option("--set", limits->set, "NAME=NUMBER (repeatable)");
  limits_command->add_flag("--clear", limits->clear, "back to the hub's defaults");
}

}  // namespace orrery::cli
