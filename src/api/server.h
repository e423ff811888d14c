// The `orrery serve` process: opens the repository under the data directory
// and answers the REST API (docs/api.md) and the Open Inference Protocol
// (docs/inference.md) over HTTP/1.1 (http_transport.h), and the protocol
// over gRPC (grpc/grpc_server.h, docs/grpc.md).
//
// Thread-safety: RunServer is called once per process.
#pragma once

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace orrery {

struct ServerOptions {
  std::filesystem::path data_dir = "orrery-data";  // catalog.db, blobs/, work/, tmp/, admin.token
  std::string host = "127.0.0.1";                  // loopback by default; 0.0.0.0 to expose
  uint16_t port = 7070;                            // 0 picks a free port (printed at start)
  int grpc_port = 7071;  // the gRPC listener (docs/grpc.md): 0 picks a free port; -1: none
  int threads = 4;                                 // HTTP event loops; as many gRPC queues
  uint64_t max_upload_bytes = 1ull << 30;          // archive upload body limit (413)
  uint64_t max_json_bytes = 1ull << 20;            // any other request body (413)
  uint64_t max_archive_entries = 10000;            // files + directories in a package (413)
  uint64_t max_unpacked_bytes = 4ull << 30;        // sum of file sizes in a package (413)
  int64_t gc_min_age_s = 600;                      // full GC spares blobs younger than this
  uint64_t min_free_bytes = 64ull << 20;           // publishes leave this free (507 otherwise)
  bool reset_admin_token = false;                  // write a new hub admin token at start
  // Anyone without a token may read, download, cite and run public objects
  // (route_table.h, OpenToPublicRead). Off: every route but liveness needs a token.
  bool public_read = false;
  // Host names requests may carry besides the listen address and localhost
  // (host_allowlist.h); "*" accepts any.
  std::vector<std::string> allowed_hosts;
  // Asynchronous inference (POST .../infer-async, GET /api/v1/requests/{id}).
  size_t async_max_pending = 1000;          // unanswered requests per tenant (503 beyond)
  uint64_t async_max_bytes = 256ull << 20;  // kept answers per tenant (507 for one beyond)
  int64_t async_keep_s = 3600;              // an answer is kept this long, then expires (410)
  int64_t shutdown_timeout_s = 30;                 // SIGTERM: how long admitted requests may finish
  // Serving (see ModelManager::Options and SandboxOptions).
  uint64_t max_infer_bytes = 64ull << 20;          // inference request body limit (413)
  uint64_t memory_budget_bytes = 8ull << 30;       // loaded models; LRU idle ones unloaded beyond
  int instances = 1;                               // instances per servable version
  size_t max_queue = 128;                          // waiting requests per version (503 beyond)
  int64_t timeout_ms = 30'000;                     // per inference request
  std::vector<std::string> servable_timeouts;  // "tenant/name=MS": longer (or shorter) per servable
  std::vector<std::string>
      python_environments;  // "NAME=DIR": site-packages Python servables may use
  bool warmup = true;                              // run manifest examples after a load
  uint64_t cache_bytes = 256ull << 20;             // response cache; 0 disables caching
  std::set<std::string> trusted_native;            // "tenant/name" native servables run in process
  std::set<std::string> network_allowed;           // "tenant/name" servables that may use the network
  bool bubblewrap = true;                          // sandbox workers with bwrap when it works
  uint64_t worker_memory_bytes = 4ull << 30;       // RLIMIT_AS of each worker process
  uint64_t worker_cpu_seconds = 24 * 3600;         // RLIMIT_CPU of each worker process
  uint64_t worker_open_files = 256;                // RLIMIT_NOFILE of each worker process
  uint64_t worker_processes = 128;  // processes + threads of each worker's tree (pids cgroup)
  // Training jobs (docs/jobs.md; JobService::Options). 0 for cpus and
  // memory: this machine's cores, and half its memory.
  int64_t job_slots = 2;                  // jobs running at once, hub-wide
  int64_t job_cpus = 0;                   // cpus jobs may hold at once
  int64_t job_memory_bytes = 0;           // memory jobs may hold at once
  int64_t job_gpus = 0;                   // gpus jobs may hold at once
  int64_t job_max_wall_time_s = 7 * 86400;  // a tenant's per-job wall time until an admin sets one
  bool jobs_allow_network = false;        // jobs whose spec asks for the network may have it
  uint64_t job_log_bytes = 64ull << 20;   // a job attempt's log beyond this keeps only its tail
};

// Serves until SIGINT or SIGTERM, then stops gracefully: readiness turns
// false, new requests are refused with 503, requests already admitted finish
// (up to shutdown_timeout_s), worker processes are stopped, and it returns 0.
// A second signal stops at once. Returns 1 when admitted requests were cut
// off (the timeout or a second signal), 2 for bad options. Prints
// "orrery listening on http://HOST:PORT" to stderr once accepting (after
// "orrery gRPC listening on HOST:PORT" when gRPC is on), and the admin
// token's file path on first start.
int RunServer(const ServerOptions& options);

}  // namespace orrery
