// Test support for backend unit tests: packages (manifest + LoadContext) read
// from a directory or built in code, manifest examples as Tensors, numeric
// comparison with a tolerance, batching rows, and latency measurement.
//
// Only numeric datatypes are supported (BYTES is not: no in-process backend
// takes it). FP16 and BF16 are converted with round-to-nearest-even.
//
// Thread-safety: free functions without shared state; a Package is a value
// owned by one test.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "backends/backend.h"

namespace orrery::backend_testing {

// The repository root (examples/ and src/.../testdata/ live under it).
std::filesystem::path SourceDir();

// A servable package: its manifest and a LoadContext for its directory.
// `context.manifest` points into the same object, so a Package is handed
// around by unique_ptr and never copied.
struct Package {
  Manifest manifest;
  LoadContext context;
};

// Reads `dir`/orrery.yaml with ParseManifest.
Result<std::unique_ptr<Package>> ReadPackage(const std::filesystem::path& dir);
// A package whose manifest is built by the test.
std::unique_ptr<Package> MakePackage(const std::filesystem::path& dir, Manifest manifest);

// Loads `package` with the backend its manifest names.
Result<std::unique_ptr<Instance>> LoadPackage(const Package& package);
// LoadPackage, or nullptr after a test failure naming the error.
std::unique_ptr<Instance> MustLoad(const Package& package);

// An example tensor {datatype, shape, data (flat)} as a Tensor named `name`.
Result<Tensor> TensorFromJson(const std::string& name, const nlohmann::json& value);
// The inputs of one manifest example, in signature order.
Result<std::vector<Tensor>> ExampleInputs(const Manifest& manifest, const nlohmann::json& example);

// A tensor of `type` from doubles (TensorValues in tensor.h goes back).
Tensor FromDoubles(std::string name, DataType type, std::vector<int64_t> shape,
                   const std::vector<double>& values);

// Stacks tensors of one datatype and equal trailing dimensions along dim 0.
Tensor Concat(const std::vector<Tensor>& parts);
// Rows [begin, end) of dimension 0.
Tensor Rows(const Tensor& tensor, int64_t begin, int64_t end);

// True when `actual` has `expected`'s name, datatype and shape, and every
// element is within tolerance x max(1, |expected|) (NaN matches NaN).
::testing::AssertionResult TensorNear(const Tensor& actual, const Tensor& expected,
                                      double tolerance);

// Runs every example of the package's manifest through `instance` and
// compares each output with the example's, within the example's tolerance
// (1e-6 when it has none).
::testing::AssertionResult RunManifestExamples(const Package& package, Instance& instance);

// Threads of this process now (/proc/self/task). A runtime that spreads a
// computation over a pool starts the pool's threads at its first parallel
// call: a count that stays the same across calls shows they ran on the
// calling thread. (Latencies are measured by bench/, not by tests.)
int ProcessThreads();

// Writes `bytes` to `path` (test set-up; fails the test on error).
void WriteBytes(const std::filesystem::path& path, const std::string& bytes);
// `size` pseudo-random bytes from a fixed seed.
std::string RandomBytes(size_t size, uint32_t seed = 1);

}  // namespace orrery::backend_testing
