// The flags of `orrery serve`, apart from commands_serve.cc so that tests can
// check them without linking the server.
#include <filesystem>

#include "api/server.h"
#include "cli/commands.h"
#include "repository/manifest.h"
#include "repository/names.h"

namespace orrery::cli {

namespace {

// Accepts "tenant/name" only (both parts valid), for the per-servable lists.
const CLI::Validator kQualifiedName(
    [](std::string& text) {
      Result<QualifiedName> name = ParseQualifiedName(text);
      return name.ok() ? std::string() : name.status().message();
    },
    "TENANT/NAME");

// "tenant/name=MS": a servable's own longest request time.
const CLI::Validator kServableTimeout(
    [](std::string& text) {
      size_t equals = text.rfind('=');
      if (equals == std::string::npos) return std::string("expected TENANT/NAME=MS");
      Result<QualifiedName> name = ParseQualifiedName(text.substr(0, equals));
      if (!name.ok()) return name.status().message();
      std::string ms = text.substr(equals + 1);
      bool digits =
          !ms.empty() && ms.size() <= 9 && ms.find_first_not_of("0123456789") == std::string::npos;
      if (!digits || std::stoll(ms) < 1) {
        return std::string("the milliseconds after '=' must be 1..999999999");
      }
      return std::string();
    },
    "TENANT/NAME=MS");

// "NAME=DIR": a Python environment (a site-packages directory) to register.
const CLI::Validator kPythonEnvironment(
    [](std::string& text) {
      size_t equals = text.find('=');
      if (equals == std::string::npos) return std::string("expected NAME=DIR");
      std::string name = text.substr(0, equals), dir = text.substr(equals + 1);
      if (!IsEnvironmentName(name) || name == "system") {
        return std::string(
            "environment names may only contain letters, digits, '.', '_' and "
            "'-' (and 'system' is the host's own)");
      }
      std::error_code error;
      if (!std::filesystem::is_directory(dir, error)) return dir + " is not a directory";
      return std::string();
    },
    "NAME=DIR");

void AddListenFlags(CLI::App& serve, ServerOptions& options, std::string& data_dir) {
  serve.add_option("--data-dir", data_dir,
                   "catalog, blobs and admin token (default: $ORRERY_DATA_DIR, else "
                   "./orrery-data)");
  serve.add_option("--host", options.host, "address to listen on; 0.0.0.0 to expose")
      ->capture_default_str();
  serve.add_option("--port", options.port, "TCP port; 0 picks a free one")->capture_default_str();
  serve
      .add_option_function<std::string>(
          "--grpc-port",
          [&options](const std::string& value) {
            if (value == "off") {
              options.grpc_port = -1;
              return;
            }
            bool digits = !value.empty() && value.size() <= 5 &&
                          value.find_first_not_of("0123456789") == std::string::npos;
            if (!digits || std::stoi(value) > 65535) {
              throw CLI::ValidationError("--grpc-port",
                                         "must be a port 0..65535 or off, not '" + value + "'");
            }
            options.grpc_port = std::stoi(value);
          },
          "gRPC port of the Open Inference Protocol (and grpc.health.v1); 0 picks a free "
          "one; off: no gRPC listener")
      ->default_str(std::to_string(options.grpc_port));
  serve.add_option("--threads", options.threads,
                   "HTTP event-loop threads, and as many gRPC completion-queue threads")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  serve
      .add_option("--shutdown-timeout", options.shutdown_timeout_s,
                  "seconds: on SIGTERM or SIGINT, how long requests already admitted may run "
                  "before the server exits anyway (new ones get 503 at once; a second signal "
                  "stops at once)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  serve
      .add_option("--async-max-pending", options.async_max_pending,
                  "asynchronous inference requests a tenant may have unanswered (503 beyond)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  serve
      .add_option("--async-max-bytes", options.async_max_bytes,
                  "bytes of asynchronous answers kept per tenant (an answer beyond is a 507)")
      ->capture_default_str();
  serve
      .add_option("--async-keep-s", options.async_keep_s,
                  "seconds an asynchronous answer is kept before it expires (410)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  serve.add_flag("--public-read", options.public_read,
                 "let anyone without a token read, download, cite and run public servables and "
                 "datasets, as public model hubs do (off: every route but liveness needs a "
                 "token; private and shared objects always do)");
  serve.add_option("--allowed-host", options.allowed_hosts,
                   "a name clients reach the hub by, accepted in the Host header besides the "
                   "listen address and localhost (repeatable; '*' accepts any, e.g. behind a "
                   "proxy that checks Host): other names are refused, so that a web page cannot "
                   "reach a loopback hub by DNS rebinding")
      ->type_name("NAME");
  serve.add_flag("--reset-admin-token", options.reset_admin_token,
                 "write a new hub admin token to <data-dir>/admin.token (for an operator who "
                 "lost it); existing tokens stay valid until revoked");
}

void AddRepositoryFlags(CLI::App& serve, ServerOptions& options) {
  serve
      .add_option("--max-upload-bytes", options.max_upload_bytes,
                  "largest archive upload (413 above)")
      ->capture_default_str();
  serve
      .add_option("--max-json-bytes", options.max_json_bytes,
                  "largest other request body (413 above)")
      ->capture_default_str();
  serve
      .add_option("--max-archive-entries", options.max_archive_entries,
                  "most files and directories in a package (413 above)")
      ->capture_default_str();
  serve
      .add_option("--max-unpacked-bytes", options.max_unpacked_bytes,
                  "largest sum of file sizes in a package (413 above)")
      ->capture_default_str();
  serve
      .add_option("--min-free-bytes", options.min_free_bytes,
                  "free space a publish must leave in the data directory's file system (507 "
                  "otherwise, before anything is written), so that deletes and token and "
                  "tenant changes always find room")
      ->capture_default_str();
  serve
      .add_option("--gc-min-age-s", options.gc_min_age_s,
                  "a full garbage collection spares blobs younger than this")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

void AddInferenceFlags(CLI::App& serve, ServerOptions& options) {
  serve
      .add_option("--max-infer-bytes", options.max_infer_bytes,
                  "largest inference request body (413 above)")
      ->capture_default_str();
  serve
      .add_option("--memory-budget-bytes", options.memory_budget_bytes,
                  "memory for loaded models; idle ones are unloaded, least recently used "
                  "first, beyond it")
      ->capture_default_str();
  serve.add_option("--instances", options.instances, "instances of each servable version")
      ->check(CLI::Range(1, 8))
      ->capture_default_str();
  serve
      .add_option("--max-queue", options.max_queue,
                  "requests waiting per servable version (503 beyond)")
      ->capture_default_str();
  serve
      .add_option("--timeout-ms", options.timeout_ms,
                  "longest an inference request may take; its \"timeout\" parameter may "
                  "only shorten it")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  serve
      .add_option("--servable-timeout", options.servable_timeouts,
                  "TENANT/NAME=MS: that servable's requests may take up to MS milliseconds "
                  "instead of --timeout-ms, e.g. for long asynchronous runs (repeatable)")
      ->check(kServableTimeout);
  serve.add_flag("--no-warmup{false}", options.warmup,
                 "do not run a servable's manifest examples after loading it");
  serve
      .add_option("--cache-bytes", options.cache_bytes,
                  "response cache for servables with 'cache: true' (least recently used "
                  "answers evicted beyond it); 0 disables caching")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

void AddSandboxFlags(CLI::App& serve, ServerOptions& options) {
  serve
      .add_option("--trusted-native", options.trusted_native,
                  "a native servable to run inside the server process instead of a sandboxed "
                  "worker (repeatable)")
      ->check(kQualifiedName);
  serve
      .add_option("--allow-network", options.network_allowed,
                  "a servable whose workers may use the network (repeatable)")
      ->check(kQualifiedName);
  serve.add_flag("--no-bubblewrap{false}", options.bubblewrap,
                 "do not sandbox workers with bwrap, even where it works");
  serve
      .add_option("--worker-memory-bytes", options.worker_memory_bytes,
                  "address-space limit (RLIMIT_AS) of each worker process")
      ->capture_default_str();
  serve
      .add_option("--worker-cpu-seconds", options.worker_cpu_seconds,
                  "CPU-time limit (RLIMIT_CPU) of each worker process; a worker that uses it up "
                  "is killed (and restarted)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  serve
      .add_option("--worker-open-files", options.worker_open_files,
                  "open-descriptor limit (RLIMIT_NOFILE) of each worker process")
      ->check(CLI::Range(uint64_t{16}, uint64_t{1} << 20))
      ->capture_default_str();
  serve
      .add_option("--python-env", options.python_environments,
                  "NAME=DIR: register a Python environment, a site-packages directory (made "
                  "with pip install --target, or from Debian packages) that Python servables "
                  "naming it in python.environment see read-only, ahead of the system's "
                  "packages (repeatable; orrery env list)")
      ->check(kPythonEnvironment);
  serve
      .add_option("--worker-processes", options.worker_processes,
                  "processes and threads each worker may have, its own included (a pids "
                  "cgroup's pids.max where the host allows one)")
      ->check(CLI::Range(uint64_t{4}, uint64_t{1} << 20))
      ->capture_default_str();
}

void AddJobFlags(CLI::App& serve, ServerOptions& options) {
  serve.add_option("--job-slots", options.job_slots, "training jobs running at once, hub-wide")
      ->check(CLI::Range(int64_t{1}, int64_t{100000}))
      ->capture_default_str();
  serve
      .add_option("--job-cpus", options.job_cpus,
                  "cpus running jobs may hold at once (0: this machine's cores); a job asking "
                  "more is refused at submit")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  serve
      .add_option("--job-memory-bytes", options.job_memory_bytes,
                  "memory running jobs may hold at once (0: half of this machine's); a job "
                  "asking more is refused at submit")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  serve.add_option("--job-gpus", options.job_gpus, "gpus running jobs may hold at once")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  serve
      .add_option("--job-max-wall-time", options.job_max_wall_time_s,
                  "seconds: the longest wall time a tenant's job may ask for, until the hub "
                  "admin sets the tenant's own limits")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  serve.add_flag("--jobs-allow-network", options.jobs_allow_network,
                 "let jobs whose spec says network: true reach the network (off: such jobs are "
                 "refused at submit)");
  serve
      .add_option("--job-log-bytes", options.job_log_bytes,
                  "log bytes kept per job attempt; beyond it only the last 64 KiB are kept")
      ->check(CLI::Range(uint64_t{4096}, uint64_t{1} << 40))
      ->capture_default_str();
}

}  // namespace

void AddServeFlags(CLI::App& serve, ServerOptions& options, std::string& data_dir) {
  AddListenFlags(serve, options, data_dir);
  AddRepositoryFlags(serve, options);
  AddInferenceFlags(serve, options);
  AddSandboxFlags(serve, options);
  AddJobFlags(serve, options);
}

}  // namespace orrery::cli
