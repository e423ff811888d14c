// orrery-bench-backend: the in-process cost of one Infer() call through
// Orrery's own backend code, without HTTP, JSON or the serving core.
//
//   orrery-bench-backend PACKAGE_DIR [--trusted] [--batch N] [--calls N] [--warmup N]
//                        [--data v1,v2,...]
//
// Reads PACKAGE_DIR/orrery.yaml (ParseManifest), loads the backend it names
// (FindBackend(manifest.backend)->Load; --trusted sets LoadContext.trusted,
// as `orrery serve --trusted-native` does, so a native servable runs in this
// process rather than in a sandboxed worker), builds one FP32 input per signature
// input with shape [1, d...] (the -1 dimensions set to 1; with --batch N the
// first dimension, which must then be -1, set to N: N rows) filled from --data
// (default: element i = i/8 - 1; either cycled over the whole tensor, so with
// --data of one row's length every row is that row), runs --warmup calls, then
// times --calls calls (20000) one by one with steady_clock on the calling thread.
// Prints one JSON line: {"backend", "trusted", "in_process", "batch", "calls",
// "warmup", "median_us", "p90_us", "p99_us", "mean_us", "min_us",
// "rows_per_second" (batch * 1e6 / median_us), "outputs": [{"name", "datatype",
// "shape", "data"}]} (outputs of the last call, for the caller to check).
// Exit 1 with a message on any error (an unknown flag included).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/backend.h"
#include "repository/manifest.h"
#include "tensor/tensor.h"

namespace {

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "orrery-bench-backend: %s\n", message.c_str());
  std::exit(1);
}

std::vector<float> ParseFloats(const std::string& text) {
  std::vector<float> values;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) values.push_back(std::strtof(item.c_str(), nullptr));
  }
  return values;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace orrery;
  if (argc < 2) {
    Fail("usage: orrery-bench-backend PACKAGE_DIR [--trusted] [--batch N] [--calls N] [--warmup N] "
         "[--data v,...]");
  }
  std::filesystem::path dir = argv[1];
  long calls = 20000, warmup = 1000, batch = 1;
  bool trusted = false;
  std::vector<float> data;
  for (int i = 2; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--trusted") {
      trusted = true;
      continue;
    }
    if (flag != "--calls" && flag != "--warmup" && flag != "--data" && flag != "--batch") {
      Fail("unknown flag " + flag);
    }
    if (i + 1 >= argc) Fail(flag + " needs a value");
    const char* value = argv[++i];
    if (flag == "--calls") calls = std::atol(value);
    else if (flag == "--warmup") warmup = std::atol(value);
    else if (flag == "--batch") batch = std::atol(value);
    else data = ParseFloats(value);
  }
  if (calls < 1) Fail("--calls must be >= 1");
  if (batch < 1) Fail("--batch must be >= 1");

  std::ifstream file(dir / kManifestFileName, std::ios::binary);
  if (!file) Fail("cannot read " + (dir / kManifestFileName).string());
  std::stringstream yaml;
  yaml << file.rdbuf();
  Result<Manifest> manifest = ParseManifest(yaml.str());
  if (!manifest.ok()) Fail(manifest.status().message());

  Backend* backend = FindBackend(manifest->backend);
  if (backend == nullptr) Fail("no backend '" + manifest->backend + "' linked in");
  SandboxOptions sandbox;
  LoadContext context;
  context.dir = dir;
  context.manifest = &*manifest;
  context.tenant = "bench";
  context.label = "bench/" + manifest->name + ":1";
  context.sandbox = &sandbox;
  context.trusted = trusted;
  auto loaded = backend->Load(context);
  if (!loaded.ok()) Fail("load: " + loaded.status().message());
  std::unique_ptr<Instance> instance = std::move(loaded).value();

  std::vector<Tensor> inputs;
  for (const TensorSpec& spec : manifest->inputs) {
    if (spec.datatype != "FP32") Fail("input " + spec.name + " is not FP32");
    Tensor tensor;
    tensor.name = spec.name;
    tensor.datatype = DataType::kFp32;
    if (batch != 1 && (spec.shape.empty() || spec.shape[0] >= 0)) {
      Fail("--batch: input " + spec.name + " has no -1 first dimension");
    }
    int64_t count = 1;
    for (size_t k = 0; k < spec.shape.size(); ++k) {
      int64_t d = spec.shape[k] >= 0 ? spec.shape[k] : k == 0 ? batch : 1;
      tensor.shape.push_back(d);
      count *= d;
    }
    std::vector<float> values(count);
    for (int64_t i = 0; i < count; ++i) {
      values[i] = data.empty() ? static_cast<float>(i % 16) / 8.0f - 1.0f : data[i % data.size()];
    }
    tensor.data.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
    Status valid = ValidateTensor(tensor);
    if (!valid.ok()) Fail(valid.message());
    inputs.push_back(std::move(tensor));
  }

  auto deadline = [] { return std::chrono::steady_clock::now() + std::chrono::hours(1); };
  Result<std::vector<Tensor>> out = instance->Infer(inputs, deadline());
  if (!out.ok()) Fail("infer: " + out.status().message());
  for (long i = 0; i < warmup; ++i) {
    out = instance->Infer(inputs, deadline());
    if (!out.ok()) Fail("infer: " + out.status().message());
  }
  std::vector<double> us(calls);
  for (long i = 0; i < calls; ++i) {
    // The deadline is computed outside the timed region, as the serving
    // core computes it once per request before calling Infer.
    auto until = deadline();
    auto t0 = std::chrono::steady_clock::now();
    out = instance->Infer(inputs, until);
    auto t1 = std::chrono::steady_clock::now();
    if (!out.ok()) Fail("infer: " + out.status().message());
    us[i] = std::chrono::duration<double, std::micro>(t1 - t0).count();
  }
  double mean = 0;
  for (double v : us) mean += v / calls;
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) { return us[std::min<size_t>(us.size() - 1, static_cast<size_t>(p * us.size()))]; };

  nlohmann::json result = {{"backend", manifest->backend}, {"trusted", trusted},
                           {"in_process", backend->InProcess(context)}, {"batch", batch},
                           {"calls", calls}, {"warmup", warmup},
                           {"median_us", pct(0.5)}, {"p90_us", pct(0.9)}, {"p99_us", pct(0.99)},
                           {"mean_us", mean}, {"min_us", us.front()},
                           {"rows_per_second", batch * 1e6 / pct(0.5)}};
  nlohmann::json outputs = nlohmann::json::array();
  for (const Tensor& tensor : *out) {
    std::vector<float> values(tensor.data.size() / sizeof(float));
    if (tensor.datatype == DataType::kFp32) std::memcpy(values.data(), tensor.data.data(), values.size() * sizeof(float));
    outputs.push_back({{"name", tensor.name}, {"datatype", std::string(DataTypeName(tensor.datatype))},
                       {"shape", tensor.shape}, {"data", values}});
  }
  result["outputs"] = outputs;
  std::printf("%s\n", result.dump().c_str());
  return 0;
}
