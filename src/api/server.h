// The `orrery serve` process: opens the repository under the data directory
// and answers the REST API (docs/api.md) and the Open Inference Protocol's
// health routes over HTTP/1.1 (Boost.Beast).
//
// Thread-safety: RunServer is called once per process.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace orrery {

struct ServerOptions {
  std::filesystem::path data_dir = "orrery-data";  // catalog.db, blobs/, work/, tmp/, admin.token
  std::string host = "127.0.0.1";                  // loopback by default; 0.0.0.0 to expose
  uint16_t port = 7070;                            // 0 picks a free port (printed at start)
  int threads = 4;                                 // HTTP worker threads
  uint64_t max_upload_bytes = 1ull << 30;          // archive upload body limit (413)
  uint64_t max_json_bytes = 1ull << 20;            // any other request body (413)
  uint64_t max_archive_entries = 10000;            // files + directories in a package (413)
  uint64_t max_unpacked_bytes = 4ull << 30;        // sum of file sizes in a package (413)
  int64_t gc_min_age_s = 600;                      // full GC spares blobs younger than this
  bool reset_admin_token = false;                  // write a new hub admin token at start
};

// Serves until SIGINT or SIGTERM; returns the process exit code. Prints
// "orrery listening on http://HOST:PORT" to stderr once accepting, and the
// admin token's file path on first start.
int RunServer(const ServerOptions& options);

}  // namespace orrery
