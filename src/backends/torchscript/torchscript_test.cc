// Tests of the torchscript backend through the registry, on the example
// servable (examples/digits-mlp-torchscript) and the small modules of
// testdata/ (made by testdata/make_testdata.py).
#include <dlfcn.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include <gtest/gtest.h>

#include "backends/backend.h"
#include "backends/testing/backend_test_util.h"
#include "core/files.h"

namespace orrery {
namespace {

namespace fs = std::filesystem;
using namespace backend_testing;

const Deadline kFar = std::chrono::steady_clock::time_point::max();

fs::path ExampleDir() {
  return SourceDir() / "examples/digits-mlp-torchscript";
}
fs::path TestData() {
  return SourceDir() / "src/backends/torchscript/testdata";
}

std::unique_ptr<Package> Example() {
  auto package = ReadPackage(ExampleDir());
  EXPECT_TRUE(package.ok()) << package.status().ToString();
  return package.ok() ? std::move(package).value() : nullptr;
}

// A package over testdata/`file` with the given signature.
std::unique_ptr<Package> TestModule(const std::string& file, std::vector<TensorSpec> inputs,
                                    std::vector<TensorSpec> outputs,
                                    nlohmann::json config = nlohmann::json::object()) {
  Manifest manifest;
  manifest.name = "test";
  manifest.backend = "torchscript";
  manifest.files = {{file, ""}};
  manifest.inputs = std::move(inputs);
  manifest.outputs = std::move(outputs);
  manifest.config = std::move(config);
  return MakePackage(TestData(), std::move(manifest));
}

Tensor Fp32(std::string name, std::vector<int64_t> shape, const std::vector<double>& values) {
  return FromDoubles(std::move(name), DataType::kFp32, std::move(shape), values);
}

TEST(TorchScriptTest, RunsTheManifestExamples) {
  auto package = Example();
  ASSERT_TRUE(package);
  EXPECT_TRUE(FindBackend("torchscript")->InProcess(package->context));
  auto instance = MustLoad(*package);
  ASSERT_TRUE(instance);
  EXPECT_TRUE(RunManifestExamples(*package, *instance));
  EXPECT_EQ(instance->MemoryBytes(), (64 * 128 + 128 + 128 * 10 + 10) * 4u);  // parameters
}

TEST(TorchScriptTest, BatchOfSeveralRowsMatchesRowByRow) {
  auto package = Example();
  ASSERT_TRUE(package);
  auto instance = MustLoad(*package);
  ASSERT_TRUE(instance);
  std::vector<Tensor> rows;
  for (const auto& example : package->manifest.examples)
    rows.push_back(ExampleInputs(package->manifest, example)->at(0));
  Tensor batch = Concat({rows[0], rows[1], rows[0], rows[1], rows[1]});
  auto out = instance->Infer({batch}, kFar);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->at(0).shape, (std::vector<int64_t>{5, 10}));
  for (int64_t r = 0; r < 5; ++r) {
    auto one = instance->Infer({Rows(batch, r, r + 1)}, kFar);
    ASSERT_TRUE(one.ok());
    EXPECT_TRUE(TensorNear(Rows(out->at(0), r, r + 1), one->at(0), 1e-5));
  }
  auto empty = instance->Infer({Rows(batch, 0, 0)}, kFar);
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->at(0).shape, (std::vector<int64_t>{0, 10}));
}

TEST(TorchScriptTest, NanAndInfPassThrough) {
  auto package = Example();
  ASSERT_TRUE(package);
  auto instance = MustLoad(*package);
  ASSERT_TRUE(instance);
  std::vector<double> values(64, 1.0);
  values[0] = NAN;
  values[1] = INFINITY;
  auto out = instance->Infer({Fp32("input", {1, 64}, values)}, kFar);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(std::isnan(TensorValues(out->at(0))[0]));
}

class TorchScriptFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create(fs::temp_directory_path(), "torchscript-test-");
    ASSERT_TRUE(dir.ok());
    dir_.emplace(std::move(dir).value());
    fs::copy_file(ExampleDir() / "orrery.yaml", dir_->path() / "orrery.yaml");
  }
  // Loads the example manifest over a package whose model.pt is `bytes`.
  Status LoadWith(const std::string* bytes) {
    if (bytes) WriteBytes(dir_->path() / "model.pt", *bytes);
    auto package = ReadPackage(dir_->path());
    if (!package.ok()) return package.status();
    return LoadPackage(**package).status();
  }
  std::optional<TempDir> dir_;
};

TEST_F(TorchScriptFileTest, RandomBytesAreUnprocessable) {
  std::string bytes = RandomBytes(4096);
  Status status = LoadWith(&bytes);
  EXPECT_EQ(status.code(), Code::kUnprocessable);
  EXPECT_EQ(status.message().rfind("cannot load model.pt: ", 0), 0u) << status.message();
  EXPECT_EQ(status.message().find('\n'), std::string::npos) << status.message();
}

TEST_F(TorchScriptFileTest, TruncatedFileIsUnprocessable) {
  auto model = ReadFile(ExampleDir() / "model.pt");
  ASSERT_TRUE(model.ok());
  for (size_t size : {model->size() / 2, model->size() - 100, size_t{0}}) {
    std::string bytes = model->substr(0, size);
    Status status = LoadWith(&bytes);
    EXPECT_EQ(status.code(), Code::kUnprocessable) << size;
    EXPECT_EQ(status.message().rfind("cannot load model.pt: ", 0), 0u) << status.message();
    EXPECT_EQ(status.message().find('\n'), std::string::npos) << status.message();
  }
}

TEST_F(TorchScriptFileTest, MissingFileIsUnprocessable) {
  Status status = LoadWith(nullptr);
  EXPECT_EQ(status.code(), Code::kUnprocessable);
  EXPECT_EQ(status.message(), "cannot load model.pt: file not found");
}

TEST(TorchScriptTest, EveryTorchDatatypeRoundTrips) {
  for (DataType type :
       {DataType::kBool, DataType::kUint8, DataType::kInt8, DataType::kInt16, DataType::kInt32,
        DataType::kInt64, DataType::kFp16, DataType::kBf16, DataType::kFp32, DataType::kFp64}) {
    std::string name(DataTypeName(type));
    auto package = TestModule("identity.pt", {{"x", name, {-1, 3}}}, {{"y", name, {-1, 3}}});
    auto instance = MustLoad(*package);
    ASSERT_TRUE(instance) << name;
    Tensor x = FromDoubles("x", type, {2, 3}, {1, 0, 1, 1, 1, 0});
    if (type != DataType::kBool) x = FromDoubles("x", type, {2, 3}, {1, 2, 3, -4, 5.5, 126});
    if (type == DataType::kUint8) x = FromDoubles("x", type, {2, 3}, {1, 2, 3, 4, 5, 255});
    auto out = instance->Infer({x}, kFar);
    ASSERT_TRUE(out.ok()) << name << ": " << out.status().ToString();
    Tensor expected = x;
    expected.name = "y";
    EXPECT_TRUE(TensorNear(out->at(0), expected, 0)) << name;
  }
}

TEST(TorchScriptTest, UnsignedWideTypesAreRefusedAtLoad) {
  auto package = TestModule("identity.pt", {{"x", "UINT32", {-1}}}, {{"y", "FP32", {-1}}});
  auto instance = LoadPackage(*package);
  EXPECT_EQ(instance.status().code(), Code::kUnprocessable);
  EXPECT_NE(instance.status().message().find("'x' has datatype UINT32"), std::string::npos)
      << instance.status().message();
}

TEST(TorchScriptTest, ConvertsOutputsToTheSignatureDatatype) {
  auto package = TestModule("double.pt", {{"x", "FP32", {-1}}}, {{"y", "FP32", {-1}}});
  auto instance = MustLoad(*package);
  ASSERT_TRUE(instance);
  auto out = instance->Infer({Fp32("x", {3}, {1, 2.5, -3})}, kFar);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(TensorNear(out->at(0), Fp32("y", {3}, {2, 5, -6}), 0));
}

TEST(TorchScriptTest, TupleListAndDictResults) {
  auto tuple = TestModule("two_in_tuple.pt", {{"a", "FP32", {-1}}, {"b", "FP32", {-1}}},
                          {{"sum", "FP32", {-1}}, {"product", "FP32", {-1}}});
  auto instance = MustLoad(*tuple);
  ASSERT_TRUE(instance);
  auto out = instance->Infer({Fp32("a", {2}, {1, 2}), Fp32("b", {2}, {3, 4})}, kFar);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(TensorNear(out->at(0), Fp32("sum", {2}, {4, 6}), 0));
  EXPECT_TRUE(TensorNear(out->at(1), Fp32("product", {2}, {3, 8}), 0));

  auto list = TestModule("list_out.pt", {{"x", "FP32", {-1}}},
                         {{"plus", "FP32", {-1}}, {"minus", "FP32", {-1}}});
  instance = MustLoad(*list);
  ASSERT_TRUE(instance);
  out = instance->Infer({Fp32("x", {1}, {5})}, kFar);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(TensorNear(out->at(1), Fp32("minus", {1}, {4}), 0));

  // Dict entries are matched by name, whatever their order.
  auto dict = TestModule("dict_out.pt", {{"x", "FP32", {-1, 2}}},
                         {{"total", "FP64", {-1}}, {"twice", "FP32", {-1, 2}}});
  instance = MustLoad(*dict);
  ASSERT_TRUE(instance);
  out = instance->Infer({Fp32("x", {1, 2}, {1, 2})}, kFar);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(TensorNear(out->at(0), FromDoubles("total", DataType::kFp64, {1}, {3}), 0));
  EXPECT_TRUE(TensorNear(out->at(1), Fp32("twice", {1, 2}, {2, 4}), 0));

  auto missing = TestModule("dict_out.pt", {{"x", "FP32", {-1, 2}}}, {{"other", "FP32", {-1}}});
  instance = MustLoad(*missing);
  ASSERT_TRUE(instance);
  auto failed = instance->Infer({Fp32("x", {1, 2}, {1, 2})}, kFar);
  EXPECT_EQ(failed.status().code(), Code::kInternal);
  EXPECT_NE(failed.status().message().find("without output 'other'"), std::string::npos);
}

TEST(TorchScriptTest, SignatureThatDoesNotFitTheModuleIsRefused) {
  struct Case {
    std::unique_ptr<Package> package;
    std::string message;
  };
  Case cases[] = {
      {TestModule("identity.pt", {{"a", "FP32", {-1}}, {"b", "FP32", {-1}}}, {{"y", "FP32", {-1}}}),
       "forward() of identity.pt takes 1 inputs (x) but the signature declares 2 (a, b)"},
      {TestModule("two_in_tuple.pt", {{"a", "FP32", {-1}}, {"b", "FP32", {-1}}},
                  {{"y", "FP32", {-1}}}),
       "(2 values) but the signature declares 1 outputs"},
      {TestModule("identity.pt", {{"x", "FP32", {-1}}}, {{"y", "FP32", {-1}}, {"z", "FP32", {-1}}}),
       "returns Tensor but the signature declares 2 outputs"},
      {TestModule("returns_int.pt", {{"x", "FP32", {-1}}}, {{"y", "FP32", {-1}}}),
       "returns int; expected a Tensor"},
  };
  for (const Case& c : cases) {
    auto instance = LoadPackage(*c.package);
    EXPECT_EQ(instance.status().code(), Code::kUnprocessable);
    EXPECT_NE(instance.status().message().find(c.message), std::string::npos)
        << instance.status().message();
  }
}

TEST(TorchScriptTest, InputTheModelRejectsIsInvalidArgument) {
  auto package = TestModule("linear4x2.pt", {{"x", "FP32", {-1, -1}}}, {{"y", "FP32", {-1, 2}}});
  auto instance = MustLoad(*package);
  ASSERT_TRUE(instance);
  EXPECT_EQ(instance->MemoryBytes(), (4 * 2 + 2) * 4u);  // parameter + buffer
  auto out = instance->Infer({Fp32("x", {1, 3}, {1, 2, 3})}, kFar);
  EXPECT_EQ(out.status().code(), Code::kInvalidArgument);
  EXPECT_NE(out.status().message().find("shapes cannot be multiplied"), std::string::npos)
      << out.status().message();
  EXPECT_EQ(out.status().message().find('\n'), std::string::npos);
}

TEST(TorchScriptTest, OutputShapeOutsideTheSignatureIsInternal) {
  auto package = TestModule("identity.pt", {{"x", "FP32", {-1, -1}}}, {{"y", "FP32", {-1, 5}}});
  auto instance = MustLoad(*package);
  ASSERT_TRUE(instance);
  auto out = instance->Infer({Fp32("x", {1, 3}, {1, 2, 3})}, kFar);
  EXPECT_EQ(out.status().code(), Code::kInternal);
  EXPECT_EQ(out.status().message(),
            "torchscript: output 'y' has shape [1, 3] but the signature says [-1, 5]");
}

TEST(TorchScriptTest, Config) {
  auto threads = TestModule("identity.pt", {{"x", "FP32", {-1}}}, {{"y", "FP32", {-1}}},
                            {{"threads", 2}, {"file", "identity.pt"}});
  auto instance = MustLoad(*threads);
  ASSERT_TRUE(instance);
  EXPECT_TRUE(instance->Infer({Fp32("x", {2}, {1, 2})}, kFar).ok());
  for (auto [config, message] : std::vector<std::pair<nlohmann::json, std::string>>{
           {{{"threads", 0}}, "config.threads must be an integer from 1 to 64"},
           {{{"in_process", false}}, "in_process: false is not supported"},
           {{{"file", "../model.pt"}}, "config.file"},
           {{{"file", "absent.pt"}}, "cannot load absent.pt: file not found"}}) {
    auto package = TestModule("identity.pt", {{"x", "FP32", {-1}}}, {{"y", "FP32", {-1}}}, config);
    auto failed = LoadPackage(*package);
    EXPECT_EQ(failed.status().code(), Code::kUnprocessable);
    EXPECT_NE(failed.status().message().find(message), std::string::npos)
        << failed.status().message();
  }
}

// Infer computes on the calling thread: torch's intra-op and inter-op pools
// and OpenBLAS are set to one thread, and 300 calls at batch 32 start no
// thread (a pool would start at the first parallel call).
TEST(TorchScriptTest, InfersOnTheCallingThreadOnly) {
  auto package = Example();
  ASSERT_TRUE(package);
  auto instance = MustLoad(*package);
  ASSERT_TRUE(instance);
  Tensor row = ExampleInputs(package->manifest, package->manifest.examples[0])->at(0);
  std::vector<Tensor> inputs = {Concat(std::vector<Tensor>(32, row))};
  // An instance sets torch's thread count to its own (config.threads, 1) as
  // it infers: another instance of this process may have set another.
  ASSERT_TRUE(instance->Infer(inputs, kFar).ok());
  using GetThreads = int (*)();
  for (const char* symbol : {"_ZN2at15get_num_threadsEv", "_ZN2at23get_num_interop_threadsEv",
                             "openblas_get_num_threads"}) {
    auto threads = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, symbol));
    ASSERT_NE(threads, nullptr) << symbol;
    EXPECT_EQ(threads(), 1) << symbol;
  }
  int before = ProcessThreads();
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(instance->Infer(inputs, kFar).ok());
  EXPECT_LE(ProcessThreads(), before);  // none started (one a previous test left may end)
}

}  // namespace
}  // namespace orrery
