// Tests of the `native` backend through the registry, with the C plugins of
// testdata/: the trusted in-process path and the sandboxed worker path.
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "backends/backend.h"
#include "backends/testing/worker_timeouts.h"
#include "orrery/servable.h"

namespace orrery {
namespace {

namespace fs = std::filesystem;
using std::chrono::steady_clock;

constexpr const char* kLibrary = "lib/plugin.so";

Tensor Fp32(std::string name, std::vector<int64_t> shape, const std::vector<float>& values) {
  Tensor tensor{std::move(name), DataType::kFp32, std::move(shape), {}};
  tensor.data.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  return tensor;
}

std::vector<float> Floats(const Tensor& tensor) {
  std::vector<float> values(tensor.data.size() / sizeof(float));
  std::memcpy(values.data(), tensor.data.data(), tensor.data.size());
  return values;
}

Deadline In(std::chrono::milliseconds ms) {
  return steady_clock::now() + ms;
}

// A package directory holding one plugin, its manifest and load context.
class NativeBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "native_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    fs::create_directories(root_ / "package" / "lib");
    fs::create_directories(root_ / "scratch");
    sandbox_.native_worker = ORRERY_NATIVE_WORKER;
    sandbox_.scratch_root = root_ / "scratch";
    sandbox_.start_timeout = std::chrono::milliseconds(20'000);
    manifest_.name = "plugin";
    manifest_.backend = "native";
    manifest_.files = {{kLibrary, ""}};
    manifest_.config = {{"library", kLibrary}};
    manifest_.inputs = {{"x", "FP32", {-1, 16}}};
    manifest_.outputs = {{"y", "FP32", {-1, 16}}};
  }
  void TearDown() override { fs::remove_all(root_); }

  // Loads `plugin` (a testdata build output) as lib/plugin.so.
  Result<std::unique_ptr<Instance>> Load(const char* plugin, bool trusted) {
    fs::copy_file(plugin, root_ / "package" / kLibrary, fs::copy_options::overwrite_existing);
    context_ = LoadContext{root_ / "package", &manifest_, "lab",  "lab/plugin:1", false,
                           trusted,           &sandbox_,  nullptr};
    Backend* backend = FindBackend("native");
    if (backend == nullptr) return Internal("native backend not registered");
    EXPECT_EQ(backend->InProcess(context_), trusted);
    return backend->Load(context_);
  }

  fs::path root_;
  SandboxOptions sandbox_;
  Manifest manifest_;
  LoadContext context_;
};

const std::vector<float> kOnes(16, 1.0f);

// --- trusted: in process ---------------------------------------------------

TEST_F(NativeBackendTest, AddOneInProcess) {
  auto instance = Load(ORRERY_TEST_ADD_ONE, /*trusted=*/true);
  ASSERT_TRUE(instance.ok()) << instance.status().ToString();
  std::vector<float> x(16);
  for (int i = 0; i < 16; ++i) x[i] = i - 0.5f;
  auto outputs = (*instance)->Infer({Fp32("x", {1, 16}, x)}, In(std::chrono::seconds(5)));
  ASSERT_TRUE(outputs.ok()) << outputs.status().ToString();
  ASSERT_EQ(outputs->size(), 1u);
  EXPECT_EQ((*outputs)[0].name, "y");
  EXPECT_EQ((*outputs)[0].shape, (std::vector<int64_t>{1, 16}));
  for (int i = 0; i < 16; ++i) EXPECT_EQ(Floats((*outputs)[0])[i], x[i] + 1);
  EXPECT_GT((*instance)->MemoryBytes(), 0u);
}

TEST_F(NativeBackendTest, ConfigReachesCreate) {
  manifest_.config["addend"] = 2.5;
  auto instance = Load(ORRERY_TEST_ADD_ONE, true);
  ASSERT_TRUE(instance.ok()) << instance.status().ToString();
  auto outputs = (*instance)->Infer({Fp32("x", {1, 16}, kOnes)}, In(std::chrono::seconds(5)));
  ASSERT_TRUE(outputs.ok()) << outputs.status().ToString();
  EXPECT_EQ(Floats((*outputs)[0])[0], 3.5f);
}

// One input per datatype, each echoed back byte for byte.
TEST_F(NativeBackendTest, EchoAllDatatypes) {
  std::vector<Tensor> inputs;
  manifest_.inputs.clear();
  manifest_.outputs.clear();
  for (int type = ORRERY_TYPE_BOOL; type <= ORRERY_TYPE_BYTES; ++type) {
    Tensor tensor{"t" + std::to_string(type), static_cast<DataType>(type), {2}, {}};
    if (tensor.datatype == DataType::kBytes) {
      tensor.data = std::string("\x02\x00\x00\x00hi\x00\x00\x00\x00", 10);  // "hi", ""
    } else {
      for (size_t i = 0; i < 2 * DataTypeSize(tensor.datatype); ++i) tensor.data += char(i & 1);
    }
    const std::string name(DataTypeName(tensor.datatype));
    manifest_.inputs.push_back({tensor.name, name, {-1}});
    manifest_.outputs.push_back({tensor.name, name, {-1}});
    inputs.push_back(tensor);
  }
  inputs.push_back(Tensor{"scalar", DataType::kInt64, {}, std::string(8, '\x07')});
  manifest_.inputs.push_back({"scalar", "INT64", {}});
  manifest_.outputs.push_back({"scalar", "INT64", {}});
  auto instance = Load(ORRERY_TEST_ECHO, true);
  ASSERT_TRUE(instance.ok()) << instance.status().ToString();
  auto outputs = (*instance)->Infer(inputs, In(std::chrono::seconds(5)));
  ASSERT_TRUE(outputs.ok()) << outputs.status().ToString();
  ASSERT_EQ(outputs->size(), inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    EXPECT_EQ((*outputs)[i].name, inputs[i].name);
    EXPECT_EQ((*outputs)[i].datatype, inputs[i].datatype);
    EXPECT_EQ((*outputs)[i].shape, inputs[i].shape);
    EXPECT_EQ((*outputs)[i].data, inputs[i].data) << inputs[i].name;
  }
}

TEST_F(NativeBackendTest, WrongAbiVersionNamesBothVersions) {
  auto instance = Load(ORRERY_TEST_WRONG_VERSION, true);
  ASSERT_FALSE(instance.ok());
  EXPECT_EQ(instance.status().code(), Code::kUnprocessable);
  EXPECT_NE(instance.status().message().find("2.0"), std::string::npos)
      << instance.status().message();
  EXPECT_NE(instance.status().message().find("1.0"), std::string::npos);
}

TEST_F(NativeBackendTest, MissingSymbolIsNamed) {
  auto instance = Load(ORRERY_TEST_MISSING_SYMBOL, true);
  ASSERT_FALSE(instance.ok());
  EXPECT_EQ(instance.status().code(), Code::kUnprocessable);
  EXPECT_NE(instance.status().message().find("orrery_servable_infer"), std::string::npos)
      << instance.status().message();
}

TEST_F(NativeBackendTest, LibraryMustBeAManifestFile) {
  manifest_.files = {{"other.so", ""}};
  auto instance = Load(ORRERY_TEST_ADD_ONE, true);
  ASSERT_FALSE(instance.ok());
  EXPECT_EQ(instance.status().code(), Code::kUnprocessable);
  EXPECT_NE(instance.status().message().find("not one of the manifest's files"), std::string::npos)
      << instance.status().message();
}

TEST_F(NativeBackendTest, LibraryPathIsChecked) {
  for (const char* bad : {"../lib/plugin.so", "/etc/passwd", "lib/../lib/plugin.so", ""}) {
    manifest_.config["library"] = bad;
    manifest_.files.push_back({bad, ""});
    auto instance = Load(ORRERY_TEST_ADD_ONE, true);
    ASSERT_FALSE(instance.ok()) << bad;
    EXPECT_EQ(instance.status().code(), Code::kUnprocessable) << bad;
  }
  manifest_.config = {{"library", 3}};
  EXPECT_EQ(Load(ORRERY_TEST_ADD_ONE, true).status().code(), Code::kUnprocessable);
  manifest_.config = {{"library", "lib/absent.so"}};
  manifest_.files = {{"lib/absent.so", ""}};
  EXPECT_EQ(Load(ORRERY_TEST_ADD_ONE, true).status().code(), Code::kUnprocessable);
}

TEST_F(NativeBackendTest, CreateErrorPropagates) {
  manifest_.config["fail_create"] = true;
  auto instance = Load(ORRERY_TEST_FAULTY, true);
  ASSERT_FALSE(instance.ok());
  EXPECT_EQ(instance.status().code(), Code::kUnprocessable);
  EXPECT_NE(instance.status().message().find("fail_create was set"), std::string::npos)
      << instance.status().message();
}

// The first element of x selects faulty.c's misbehaviour.
Status FaultyInfer(Instance& instance, float first, Deadline deadline) {
  std::vector<float> x = kOnes;
  x[0] = first;
  return instance.Infer({Fp32("x", {1, 16}, x)}, deadline).status();
}

TEST_F(NativeBackendTest, InferErrorsPropagate) {
  auto instance = Load(ORRERY_TEST_FAULTY, true);
  ASSERT_TRUE(instance.ok()) << instance.status().ToString();
  const Deadline later = In(std::chrono::seconds(5));
  EXPECT_TRUE(FaultyInfer(**instance, 1, later).ok());
  Status status = FaultyInfer(**instance, -1, later);
  EXPECT_EQ(status.code(), Code::kInvalidArgument);
  EXPECT_NE(status.message().find("x must not be negative"), std::string::npos) << status.message();
  status = FaultyInfer(**instance, 7, later);
  EXPECT_EQ(status.code(), Code::kInternal);
  EXPECT_NE(status.message().find("allocated twice"), std::string::npos) << status.message();
  status = FaultyInfer(**instance, 8, later);
  EXPECT_NE(status.message().find("produced no output 'y'"), std::string::npos) << status.message();
  status = FaultyInfer(**instance, 9, later);
  EXPECT_NE(status.message().find("not in the signature"), std::string::npos) << status.message();
  EXPECT_TRUE(FaultyInfer(**instance, 2, later).ok());  // still usable
}

TEST_F(NativeBackendTest, OutputShapeMustMatchSignature) {
  manifest_.outputs = {{"y", "FP32", {-1, 8}}};
  auto instance = Load(ORRERY_TEST_ADD_ONE, true);
  ASSERT_TRUE(instance.ok()) << instance.status().ToString();
  Status status = FaultyInfer(**instance, 1, In(std::chrono::seconds(5)));
  EXPECT_EQ(status.code(), Code::kInternal);
  EXPECT_NE(status.message().find("has shape [1, 16]"), std::string::npos) << status.message();
}

// Latency in process and through a worker is measured by bench/
// (orrery-bench-backend --trusted, serving.py), not here.

// --- untrusted: a sandboxed worker process -----------------------------------

TEST_F(NativeBackendTest, AddOneThroughWorker) {
  auto instance = Load(ORRERY_TEST_ADD_ONE, /*trusted=*/false);
  ASSERT_TRUE(instance.ok()) << instance.status().ToString();
  auto outputs = (*instance)->Infer({Fp32("x", {2, 16}, std::vector<float>(32, 4.0f))},
                                    In(std::chrono::seconds(5)));
  ASSERT_TRUE(outputs.ok()) << outputs.status().ToString();
  ASSERT_EQ(outputs->size(), 1u);
  EXPECT_EQ((*outputs)[0].name, "y");
  EXPECT_EQ((*outputs)[0].shape, (std::vector<int64_t>{2, 16}));
  EXPECT_EQ(Floats((*outputs)[0]), std::vector<float>(32, 5.0f));
}

// Without namespaces there is no /servable mount; the worker finds the
// package through $ORRERY_SERVABLE_DIR instead.
TEST_F(NativeBackendTest, AddOneThroughWorkerWithoutNamespaces) {
  sandbox_.use_bubblewrap = false;
  auto instance = Load(ORRERY_TEST_ADD_ONE, /*trusted=*/false);
  ASSERT_TRUE(instance.ok()) << instance.status().ToString();
  auto outputs = (*instance)->Infer({Fp32("x", {1, 16}, kOnes)}, In(std::chrono::seconds(5)));
  ASSERT_TRUE(outputs.ok()) << outputs.status().ToString();
  EXPECT_EQ(Floats((*outputs)[0]), std::vector<float>(16, 2.0f));
}

TEST_F(NativeBackendTest, WorkerLoadErrorsAreUnprocessable) {
  auto instance = Load(ORRERY_TEST_WRONG_VERSION, false);
  ASSERT_FALSE(instance.ok());
  EXPECT_EQ(instance.status().code(), Code::kUnprocessable) << instance.status().ToString();
  EXPECT_NE(instance.status().message().find("2.0"), std::string::npos)
      << instance.status().message();
}

TEST_F(NativeBackendTest, WorkerInferErrorPropagates) {
  auto instance = Load(ORRERY_TEST_FAULTY, false);
  ASSERT_TRUE(instance.ok()) << instance.status().ToString();
  Status status = FaultyInfer(**instance, -1, In(std::chrono::seconds(5)));
  EXPECT_EQ(status.code(), Code::kInvalidArgument) << status.ToString();
  EXPECT_NE(status.message().find("x must not be negative"), std::string::npos) << status.message();
  EXPECT_TRUE(FaultyInfer(**instance, 1, In(std::chrono::seconds(5))).ok());
}

// A plugin that segfaults fails its request with kUnavailable; this
// process (standing in for the server) lives on and the worker comes back.
TEST_F(NativeBackendTest, SegfaultInWorkerFailsOnlyTheRequest) {
  auto instance = Load(ORRERY_TEST_FAULTY, false);
  ASSERT_TRUE(instance.ok()) << instance.status().ToString();
  Status status = FaultyInfer(**instance, 13, In(std::chrono::seconds(5)));
  EXPECT_EQ(status.code(), Code::kUnavailable) << status.ToString();
  EXPECT_EQ(status.message(), "worker crashed (signal 11)");
  // Until it is back (a condition, polled with a bound only against a hang).
  const Deadline give_up = In(std::chrono::seconds(20));
  while (!(*instance)->Health().ready) {
    ASSERT_LT(steady_clock::now(), give_up) << "worker did not come back";
    std::this_thread::yield();
  }
  EXPECT_TRUE(FaultyInfer(**instance, 1, In(std::chrono::seconds(5))).ok());
  EXPECT_EQ((*instance)->Health().restarts, 1u);
}

TEST_F(NativeBackendTest, HungWorkerMissesTheDeadline) {
  auto instance = Load(ORRERY_TEST_FAULTY, false);
  ASSERT_TRUE(instance.ok()) << instance.status().ToString();
  Status status = FaultyInfer(**instance, 10, In(std::chrono::milliseconds(300)));
  EXPECT_EQ(status.code(), Code::kUnavailable) << status.ToString();
  backend_testing::ExpectTimedOutAfterAbout(status.message(), 300);
}

}  // namespace
}  // namespace orrery
