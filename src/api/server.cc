// `orrery serve`: opens the repository and the model manager, and serves
// them through the HTTP transport (http_transport.h) and the gRPC listener
// (grpc/grpc_server.h) until SIGINT/SIGTERM.
//
// The first signal drains (the transport refuses new requests and lets
// admitted ones finish, readiness turns false); the second stops at once.
// Worker processes are stopped when the ModelManager is destroyed, after the
// transport: no request can reach a model then.
#include "api/server.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <iostream>

#include "api/grpc/grpc_server.h"
#include "api/http_transport.h"
#include "api/router.h"
#include "core/log.h"
#include "jobs/job_service.h"
#include "sandbox/sandbox.h"

namespace orrery {
namespace {

// The transport SIGINT/SIGTERM stop; Drain() and Stop() only set flags and
// write to eventfds, and a lock-free atomic is async-signal-safe.
std::atomic<HttpTransport*> g_transport{nullptr};
std::atomic<int> g_stop_signals{0};

void OnStopSignal(int) {
  int earlier = g_stop_signals.fetch_add(1);
  HttpTransport* transport = g_transport.load();
  if (transport == nullptr) {
    // The transport is gone and the models are being unloaded (which waits
    // for their requests): a second signal must still stop at once.
    if (earlier > 0) _exit(1);
    return;
  }
  if (earlier == 0) {
    transport->Drain();
  } else {
    transport->Stop();
  }
}

// Signals go to the main thread only, which never holds the transport while
// it is destroyed: every other thread is started with them blocked.
void BlockStopSignals(int how) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(how, &set, nullptr);
}

void HandleSignals() {
  struct sigaction stop {};
  stop.sa_handler = OnStopSignal;
  sigemptyset(&stop.sa_mask);
  ::sigaction(SIGINT, &stop, nullptr);
  ::sigaction(SIGTERM, &stop, nullptr);
  // Writes to a closed socket fail with EPIPE instead (sendfile has no
  // MSG_NOSIGNAL); workers reset every signal before exec (sandbox.cc).
  std::signal(SIGPIPE, SIG_IGN);
}

ModelManager::Options ModelOptions(const ServerOptions& options, const Repository& repository) {
  ModelManager::Options models;
  models.memory_budget_bytes = options.memory_budget_bytes;
  models.instances = options.instances;
  models.max_queue = options.max_queue;
  models.timeout_ms = options.timeout_ms;
  for (const std::string& entry : options.servable_timeouts) {  // checked by the flag parser
    size_t equals = entry.rfind('=');
    models.servable_timeout_ms[entry.substr(0, equals)] = std::stoll(entry.substr(equals + 1));
  }
  models.warmup = options.warmup;
  models.cache_bytes = options.cache_bytes;
  models.trusted = options.trusted_native;
  models.network = options.network_allowed;
  models.sandbox.use_bubblewrap = options.bubblewrap;
  models.sandbox.memory_bytes = options.worker_memory_bytes;
  models.sandbox.cpu_seconds = options.worker_cpu_seconds;
  models.sandbox.open_files = options.worker_open_files;
  models.sandbox.max_processes = options.worker_processes;
  for (const std::string& entry : options.python_environments) {  // checked by the flag parser
    size_t equals = entry.find('=');
    models.sandbox.python_environments[entry.substr(0, equals)] =
        std::filesystem::absolute(entry.substr(equals + 1));
  }
  models.sandbox.scratch_root = repository.TempRoot();
  models.worker_isolation =
      ProbeIsolation(options.bubblewrap).mode == IsolationMode::kBubblewrap ? "bubblewrap"
                                                                          : "fallback";
  return models;
}

JobService::Options JobOptions(const ServerOptions& options, const Repository& repository) {
  JobService::Options jobs;
  jobs.data_dir = options.data_dir;
  jobs.capacity.max_running = options.job_slots;
  long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  jobs.capacity.cpus = options.job_cpus > 0 ? options.job_cpus : std::max<long>(cores, 1);
  jobs.capacity.memory_bytes = options.job_memory_bytes > 0
                                   ? options.job_memory_bytes
                                   : std::max<int64_t>(int64_t{pages} * page / 2, int64_t{1} << 30);
  jobs.capacity.gpus = options.job_gpus;
  jobs.default_limits.max_wall_time_s = options.job_max_wall_time_s;
  jobs.allow_network = options.jobs_allow_network;
  jobs.log_limit_bytes = static_cast<int64_t>(options.job_log_bytes);
  jobs.sandbox.use_bubblewrap = options.bubblewrap;
  jobs.sandbox.scratch_root = repository.TempRoot();
  return jobs;
}

}  // namespace

int RunServer(const ServerOptions& options) {
  if (options.threads < 1) {
    std::cerr << "orrery: --threads must be at least 1\n";
    return 2;
  }
  BlockStopSignals(SIG_BLOCK);  // inherited by every thread started from here on
  Repository::Options repository_options;
  repository_options.data_dir = options.data_dir;
  repository_options.archive_limits.max_entries = options.max_archive_entries;
  repository_options.archive_limits.max_total_bytes = options.max_unpacked_bytes;
  repository_options.gc_min_age_s = options.gc_min_age_s;
  repository_options.min_free_bytes = options.min_free_bytes;
  repository_options.reset_admin_token = options.reset_admin_token;
  Result<std::unique_ptr<Repository>> repository = Repository::Open(repository_options);
  if (!repository.ok()) {
    std::cerr << "orrery: cannot open " << options.data_dir << ": " << repository.status().message()
              << "\n";
    return 1;
  }
  Result<std::unique_ptr<ModelManager>> models =
      ModelManager::Create(**repository, ModelOptions(options, **repository));
  if (!models.ok()) {
    std::cerr << "orrery: " << models.status().message() << "\n";
    return 1;
  }
  LogInfo("python and untrusted native servables run in workers: " +
          DescribeIsolation((*models)->options().sandbox));
  Result<std::unique_ptr<JobService>> jobs = JobService::Create(**repository, JobOptions(options, **repository));
  if (!jobs.ok()) {
    std::cerr << "orrery: " << jobs.status().message() << "\n";
    return 1;
  }
  std::atomic<bool> stopping{false};
  Router router(**repository, **models, **jobs, options, stopping);

  Result<std::unique_ptr<HttpTransport>> transport =
      HttpTransport::Create(router, options, (*repository)->TempRoot(), stopping);
  if (!transport.ok()) {
    std::cerr << "orrery: " << transport.status().message() << "\n";
    return 1;
  }
  std::unique_ptr<GrpcServer> grpc;
  if (options.grpc_port >= 0) {  // started with the stop signals blocked, like every thread
    GrpcServer::Options grpc_options;
    grpc_options.host = options.host;
    grpc_options.port = options.grpc_port;
    grpc_options.max_message_bytes = options.max_infer_bytes;
    grpc_options.threads = options.threads;
    Result<std::unique_ptr<GrpcServer>> started = GrpcServer::Start(router, grpc_options);
    if (!started.ok()) {
      std::cerr << "orrery: " << started.status().message() << "\n";
      return 1;
    }
    grpc = std::move(*started);
    LogInfo("orrery gRPC listening on " + options.host + ":" + std::to_string(grpc->port()));
  }
  g_transport.store(transport->get());
  HandleSignals();
  BlockStopSignals(SIG_UNBLOCK);
  LogInfo("orrery listening on http://" + options.host + ":" +
          std::to_string((*transport)->port()) + " (data: " + options.data_dir.string() +
          ", admin token: " + (*repository)->AdminTokenPath().string() + "; Host names: " +
          (*transport)->AllowedHosts() + ")");
  size_t cut_off = (*transport)->Run();
  g_transport.store(nullptr);
  transport->reset();  // closes every connection before the models go
  if (grpc) {
    // New calls were refused since the first signal (`stopping`); those in
    // flight get what is left of the shutdown timeout, then are cancelled.
    grpc->Shutdown(std::chrono::seconds(g_stop_signals.load() > 1 ? 0 : options.shutdown_timeout_s));
    grpc.reset();
  }
  LogInfo(cut_off == 0 ? std::string("stopping: every admitted request was answered")
                       : "stopping: " + std::to_string(cut_off) +
                             " admitted requests were cut off (a second signal, or the "
                             "shutdown timeout of " +
                             std::to_string(options.shutdown_timeout_s) + " s)");
  jobs->reset();    // stops following jobs; they run on under their supervisors
  models->reset();  // unloads every model and stops its worker processes
  LogInfo("orrery stopped");
  return cut_off == 0 ? 0 : 1;
}

}  // namespace orrery
