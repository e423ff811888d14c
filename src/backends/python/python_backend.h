// The `python` backend: a tenant's Python servable runs in a sandboxed
// worker process (python/orrery_worker.py under WorkerInstance, see
// backends/worker/), never in the server.
//
// Manifest: `backend: python`, `config: {entrypoint: "module:attr"}` (see
// examples/README.md for the servable contract). Load() starts one worker
// per instance; Infer() sends the inputs over the worker's socket and checks
// the outputs against the signature (count, names, datatypes, shapes).
//
// This header only exposes the helpers the tests use; the backend registers
// itself as "python" (ORRERY_REGISTER_BACKEND) and is found by name.
#pragma once

#include <filesystem>
#include <string>

#include "core/status.h"

namespace orrery {

// kUnprocessable unless `entrypoint` is "module:attr": module one or more
// dot-separated ASCII identifiers, attr one identifier.
Status ValidatePythonEntrypoint(const std::string& entrypoint);

// Finds python/orrery_worker.py when SandboxOptions::python_worker is empty:
// looks in the directory of the running executable (/proc/self/exe) and its
// parents, up to five levels (the binary lives in build/ or deeper, e.g.
// build/src/cli/orrery, with python/ beside build/ in the source tree), then
// at the path of the source tree this binary was built from. kUnavailable
// naming the places tried when none has it.
Result<std::filesystem::path> FindPythonWorker();

}  // namespace orrery
