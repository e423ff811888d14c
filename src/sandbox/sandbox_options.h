// SandboxOptions: the limits and isolation of the processes that run tenant
// code (sandbox.h): serving's worker processes (python, untrusted native)
// today, training jobs next.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

namespace orrery {

struct SandboxOptions {
  bool use_bubblewrap = true;               // namespaces via bwrap when it works here
  uint64_t memory_bytes = 4ull << 30;       // RLIMIT_AS of a worker (0: none; test builds only)
  uint64_t cpu_seconds = 24 * 3600;         // RLIMIT_CPU of a worker
  uint64_t open_files = 256;                // RLIMIT_NOFILE of a worker
  uint64_t max_processes = 128;             // processes + threads of a worker's tree (pids_limit.h)
  uint32_t max_restarts = 5;                // crash loop: give up after this many in a row
  std::chrono::milliseconds first_backoff{100};  // doubles per consecutive crash
  std::chrono::milliseconds start_timeout{60'000};  // worker start + servable load
  std::string python = "/usr/bin/python3";
  std::filesystem::path python_worker;      // python/orrery_worker.py (found at start)
  std::filesystem::path native_worker;      // the orrery-native-worker executable
  std::filesystem::path scratch_root;       // per-worker scratch dirs (under data/tmp)
  // Python environments the operator registered (orrery serve --python-env
  // NAME=DIR): site-packages directories a Python servable may name
  // (manifest python.environment), mounted read-only in its sandbox.
  std::map<std::string, std::filesystem::path> python_environments;
};

}  // namespace orrery
