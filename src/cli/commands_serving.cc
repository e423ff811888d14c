// `orrery infer` and `orrery verify`: running a servable over the Open
// Inference Protocol (/v2) and checking it against its manifest's examples.
#include <chrono>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "cli/infer_io.h"
#include "cli/output.h"
#include "cli/serving_output.h"
#include "cli/url.h"
#include "core/files.h"

namespace orrery::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kRefHelp = "tenant/name[:version] or name[:version]";

// "/v2/models/<tenant>/<name>[/versions/<v>]": tenant and name are two segments.
std::string ModelPath(const ObjectRef& ref) {
  std::string path = "/v2/models/" + UrlEncode(ref.tenant) + "/" + UrlEncode(ref.name);
  if (ref.version) path += "/versions/" + UrlEncode(ref.version->ToString());
  return path;
}

// ---- infer ----

struct InferArgs {
  std::string ref;
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::string save;
  int64_t timeout_ms = 0;
  bool asynchronous = false;
};

// Prints an inference answer, or writes its outputs into `save`.
Status ShowInferAnswer(const HttpResponse& response, const ClientOptions& options,
                       const std::string& save) {
  ASSIGN_OR_RETURN(
      InferAnswer answer,
      SplitInferAnswer(response.body, response.Header("Inference-Header-Content-Length")));
  if (save.empty()) {
    PrintInferAnswer(answer, options.json, std::cout, std::cerr);
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(std::vector<fs::path> files, SaveOutputs(answer, save));
  for (const fs::path& file : files) std::cout << file.string() << "\n";
  std::cout << std::flush;
  return Status::Ok();
}

// The name of the servable's only input, from its metadata, for a bare file.npy.
Result<std::string> OnlyInputName(ApiClient& api, const ObjectRef& ref, const fs::path& file) {
  ASSIGN_OR_RETURN(json metadata, api.Call("GET", ModelPath(ref)));
  json inputs = metadata.is_object() ? metadata.value("inputs", json::array()) : json::array();
  if (!inputs.is_array()) return Internal(ref.ToString() + ": metadata without inputs");
  if (inputs.size() == 1 && !Field(inputs[0], "name").empty()) return Field(inputs[0], "name");
  std::string names;
  for (const json& input : inputs) names += (names.empty() ? "" : ", ") + Field(input, "name");
  return InvalidArgument("--input " + file.string() + ": " + ref.ToString() + " has " +
                         std::to_string(inputs.size()) + " inputs (" + names +
                         "); give NAME=" + file.string());
}

// The .npy inputs, decoded before anything is sent; a bare file.npy gets
// its name later (NameBareInput).
Result<std::vector<Tensor>> LoadTensors(const std::vector<InputSpec>& specs) {
  std::vector<Tensor> tensors;
  for (const InputSpec& spec : specs) {
    if (spec.kind != InputSpec::Kind::kNpy) continue;
    ASSIGN_OR_RETURN(Tensor tensor, LoadNpy(spec.file, spec.name));
    tensors.push_back(std::move(tensor));
  }
  return tensors;
}

Result<InferBody> BuildBody(ApiClient& api, const ObjectRef& ref,
                            const std::vector<InputSpec>& specs, const RequestOptions& options) {
  const InputSpec& first = specs.front();
  if (first.kind == InputSpec::Kind::kRequestJson) {
    Result<std::string> text = ReadFile(first.file);
    if (!text.ok()) return InvalidArgument(text.status().message());
    return JsonRequestBody(*text, first.file.string(), options);
  }
  ASSIGN_OR_RETURN(std::vector<Tensor> tensors, LoadTensors(specs));
  if (first.name.empty()) {
    ASSIGN_OR_RETURN(tensors.front().name, OnlyInputName(api, ref, first.file));
  }
  return BinaryRequestBody(tensors, options);
}

std::vector<std::pair<std::string, std::string>> BodyHeaders(const InferBody& body) {
  if (!body.json_length) return {{"Content-Type", "application/json"}};
  return {{"Content-Type", "application/octet-stream"},
          {"Inference-Header-Content-Length", std::to_string(*body.json_length)}};
}

Status RunInfer(ApiClient& api, const ClientOptions& options, const InferArgs& args) {
  std::vector<InputSpec> specs;
  for (const std::string& text : args.inputs) {
    ASSIGN_OR_RETURN(InputSpec spec, ParseInputSpec(text));
    specs.push_back(std::move(spec));
  }
  RETURN_IF_ERROR(CheckInputSpecs(specs));
  ASSIGN_OR_RETURN(ObjectRef ref, ParseObjectRef(args.ref, true));
  RequestOptions request{args.outputs, !args.save.empty(), std::nullopt};
  if (args.timeout_ms > 0) request.timeout_us = args.timeout_ms * 1000;
  RETURN_IF_ERROR(api.CompleteTenant(ref));
  ASSIGN_OR_RETURN(InferBody body, BuildBody(api, ref, specs, request));
  auto headers = BodyHeaders(body);
  std::string route = args.asynchronous ? "/infer-async" : "/infer";
  ASSIGN_OR_RETURN(HttpResponse response,
                   api.Post(ModelPath(ref) + route, std::move(body.body), std::move(headers)));
  if (!args.asynchronous) return ShowInferAnswer(response, options, args.save);
  json accepted = json::parse(response.body, nullptr, false);
  if (options.json) {
    PrintJson(accepted);
  } else {
    std::cout << "submitted " << Field(accepted, "id") << "; fetch the answer with: orrery result "
              << Field(accepted, "id") << " --wait 60" << std::endl;
  }
  return Status::Ok();
}

// ---- result ----

struct ResultArgs {
  std::string id;
  double wait_s = 0;
  std::string save;
};

Status RunResult(ApiClient& api, const ClientOptions& options, const ResultArgs& args) {
  auto give_up = std::chrono::steady_clock::now() +
                 std::chrono::milliseconds(static_cast<int64_t>(args.wait_s * 1000));
  auto pause = std::chrono::milliseconds(50);
  while (true) {
    ASSIGN_OR_RETURN(HttpResponse response, api.Get(ApiPath({"requests", args.id})));
    if (response.status != 202) return ShowInferAnswer(response, options, args.save);
    if (std::chrono::steady_clock::now() + pause > give_up) {
      return Unavailable(args.id + " is not answered yet; ask again later, or pass --wait SECONDS");
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(1000));
  }
}

void AddInferCommand(CLI::App& app, CommandSet& set) {
  auto args = std::make_shared<InferArgs>();
  CLI::App* infer = AddClientCommand(
      app, set, "infer",
      "Run one inference request on a servable. Each --input is a whole v2 request "
      "(request.json, sent as is), a NumPy array for a named input (NAME=x.npy) or, for a "
      "servable with one input, just x.npy; arrays travel as binary tensor data. Prints the "
      "answer's JSON; --save DIR writes each output to DIR/<name>.npy instead (BYTES outputs "
      "to DIR/<name>.json).",
      [args](ApiClient& api, const ClientOptions& o) { return RunInfer(api, o, *args); });
  infer->add_option("REF", args->ref, kRefHelp)->required();
  infer->add_option("-i,--input", args->inputs, "request.json, x.npy or NAME=x.npy (repeatable)")
      ->required();
  infer->add_option("-o,--output", args->outputs, "output to return (repeatable; default all)");
  infer->add_option("--save", args->save, "write the outputs as files into this directory");
  infer
      ->add_option("--timeout-ms", args->timeout_ms,
                   "request parameter \"timeout\": give up after this many milliseconds")
      ->check(CLI::Range(int64_t{1}, int64_t{86'400'000}));
  infer->add_flag("--async", args->asynchronous,
                  "submit the request and print its id at once; `orrery result ID` fetches the "
                  "answer (kept for the hub's --async-keep-s)");

  auto result = std::make_shared<ResultArgs>();
  CLI::App* r = AddClientCommand(
      app, set, "result",
      "Fetch the answer of an asynchronous inference request (orrery infer --async). Prints it "
      "as infer does; fails while it is pending, unless --wait SECONDS waits that long for it.",
      [result](ApiClient& api, const ClientOptions& o) { return RunResult(api, o, *result); });
  r->add_option("ID", result->id, "the request id (req_...)")->required();
  r->add_option("--wait", result->wait_s, "seconds to wait for a pending answer")
      ->check(CLI::Range(0.0, 86400.0));
  r->add_option("--save", result->save, "write the outputs as files into this directory");
}

// ---- logs ----

struct LogsArgs {
  std::string ref;
  int tail = 100;
};

Status RunLogs(ApiClient& api, const ClientOptions& options, const LogsArgs& args) {
  ASSIGN_OR_RETURN(ObjectRef ref, ParseObjectRef(args.ref, true));
  RETURN_IF_ERROR(api.CompleteTenant(ref));
  std::string version = ref.version ? ref.version->ToString() : "latest";
  ASSIGN_OR_RETURN(
      json answer,
      api.Call("GET", ApiPath({"servables", ref.tenant, ref.name, "versions", version, "logs"},
                              {{"tail", std::to_string(args.tail)}})));
  if (options.json) {
    PrintJson(answer);
    return Status::Ok();
  }
  json lines = answer.value("lines", json::array());
  if (lines.empty()) {
    std::cout << "no worker output of " << Field(answer, "servable")
              << " since the server started\n";
  }
  for (const json& line : lines)
    std::cout << Field(line, "at") << "  " << Field(line, "line") << "\n";
  if (answer.value("dropped", 0) > 0) {
    std::cout << "(" << answer.value("dropped", 0) << " earlier lines no longer kept)\n";
  }
  std::cout << std::flush;
  return Status::Ok();
}

void AddLogsCommand(CLI::App& app, CommandSet& set) {
  auto args = std::make_shared<LogsArgs>();
  CLI::App* logs = AddClientCommand(
      app, set, "logs",
      "Print a servable's recent worker output: what its Python (or native) code wrote to "
      "stdout and stderr, every instance, newest last. For the publishers and admins of its "
      "tenant; the hub keeps the last 1000 lines (256 KiB) of each version since it started.",
      [args](ApiClient& api, const ClientOptions& o) { return RunLogs(api, o, *args); });
  logs->add_option("REF", args->ref, kRefHelp)->required();
  logs->add_option("--tail", args->tail, "how many of the last lines")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
}

// ---- env ----

Status RunEnvList(ApiClient& api, const ClientOptions& options) {
  ASSIGN_OR_RETURN(json answer, api.Call("GET", ApiPath({"environments"})));
  if (options.json) {
    PrintJson(answer);
    return Status::Ok();
  }
  for (const json& env : answer.value("environments", json::array())) {
    json packages = env.value("packages", json::array());
    std::cout << Field(env, "name") << " (" << packages.size() << " packages)\n";
    std::string line;
    for (const json& package : packages) {
      std::string item = Field(package, "name") + " " + Field(package, "version");
      if (line.size() + item.size() > 96) {
        std::cout << "  " << line << "\n";
        line.clear();
      }
      line += (line.empty() ? "" : ", ") + item;
    }
    if (!line.empty()) std::cout << "  " << line << "\n";
  }
  std::cout << std::flush;
  return Status::Ok();
}

void AddEnvCommand(CLI::App& app, CommandSet& set) {
  CLI::App* env = app.add_subcommand(
      "env", "The hub's Python environments, which Python servables name in python.environment.");
  env->require_subcommand(1);
  AddClientCommand(*env, set, "list",
                   "List the Python environments and the packages each provides: 'system' (the "
                   "host's Debian python3-* packages, seen by every Python servable) and those "
                   "the operator registered (orrery serve --python-env NAME=DIR).",
                   RunEnvList);
}

// ---- verify ----

Status RunVerify(ApiClient& api, const ClientOptions& options, const std::string& text) {
  ASSIGN_OR_RETURN(ObjectRef ref, ParseObjectRef(text, true));
  RETURN_IF_ERROR(api.CompleteTenant(ref));
  std::string path = ref.version ? ApiPath({"servables", ref.tenant, ref.name, "versions",
                                            ref.version->ToString(), "verify"})
                                 : ApiPath({"servables", ref.tenant, ref.name, "verify"});
  ASSIGN_OR_RETURN(json answer, api.Call("POST", path));
  return PrintVerifyReport(answer, options.json, std::cout);
}

void AddVerifyCommand(CLI::App& app, CommandSet& set) {
  auto ref = std::make_shared<std::string>();
  CLI::App* verify = AddClientCommand(
      app, set, "verify",
      "Check that a servable reproduces its manifest's examples. The hub runs every example "
      "through the serving path and compares each output with the expected one; exit status "
      "1 when any example does not reproduce.",
      [ref](ApiClient& api, const ClientOptions& o) { return RunVerify(api, o, *ref); });
  verify->add_option("REF", *ref, kRefHelp)->required();
}

}  // namespace

void AddServingCommands(CLI::App& app, CommandSet& set) {
  AddInferCommand(app, set);
  AddVerifyCommand(app, set);
  AddLogsCommand(app, set);
  AddEnvCommand(app, set);
}

}  // namespace orrery::cli
