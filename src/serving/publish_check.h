// The checks a servable passes before a publish makes its version visible
// (DLHub tests a servable when it is published): one instance is loaded
// with the real backend, in its sandbox when it runs code, and every example
// of its manifest is run through it and compared with the expected outputs
// (CompareExample's tolerance). A servable without examples is only loaded.
//
// Thread-safe (no shared state); blocks for the load and the examples.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "backends/backend.h"
#include "core/status.h"
#include "repository/manifest.h"

namespace orrery {

// `context` as serving would load the version (its dir the unpacked
// package). kUnprocessable saying what failed: the load ("the servable does
// not load: ..."; a Python load error ends with its traceback's last
// frames), or the first example that fails or does not reproduce, with its
// index (1-based) and the outputs it gave.
Status CheckServablePackage(const LoadContext& context, std::chrono::milliseconds timeout);

}  // namespace orrery
