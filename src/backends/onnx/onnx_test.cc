// Tests of the onnx backend through the registry, on the example servable
// (examples/digits-cnn-onnx) and the small graphs of testdata/ (made by
// testdata/make_testdata.py).
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <gtest/gtest.h>

#include "backends/backend.h"
#include "backends/onnx/onnx_graph.h"
#include "backends/onnx/onnx_support.h"
#include "backends/testing/backend_test_util.h"
#include "core/files.h"

namespace orrery {
namespace {

namespace fs = std::filesystem;
using namespace backend_testing;

const Deadline kFar = std::chrono::steady_clock::time_point::max();

fs::path ExampleDir() {
  return SourceDir() / "examples/digits-cnn-onnx";
}
fs::path TestData() {
  return SourceDir() / "src/backends/onnx/testdata";
}

std::unique_ptr<Package> Example() {
  auto package = ReadPackage(ExampleDir());
  EXPECT_TRUE(package.ok()) << package.status().ToString();
  return package.ok() ? std::move(package).value() : nullptr;
}

std::unique_ptr<Package> TestGraph(const std::string& file, std::vector<TensorSpec> inputs,
                                   std::vector<TensorSpec> outputs) {
  Manifest manifest;
  manifest.name = "test";
  manifest.backend = "onnx";
  manifest.files = {{file, ""}};
  manifest.inputs = std::move(inputs);
  manifest.outputs = std::move(outputs);
  return MakePackage(TestData(), std::move(manifest));
}

Tensor Fp32(std::string name, std::vector<int64_t> shape, const std::vector<double>& values) {
  return FromDoubles(std::move(name), DataType::kFp32, std::move(shape), values);
}

Tensor ExampleRow(const Package& package, size_t i) {
  return ExampleInputs(package.manifest, package.manifest.examples.at(i))->at(0);
}

TEST(OnnxTest, RunsTheManifestExamples) {
  auto package = Example();
  ASSERT_TRUE(package);
  EXPECT_TRUE(FindBackend("onnx")->InProcess(package->context));
  auto instance = MustLoad(*package);
  ASSERT_TRUE(instance);
  EXPECT_TRUE(RunManifestExamples(*package, *instance));
  EXPECT_GT(instance->MemoryBytes(),
            4u * (16 * 9 + 32 * 16 * 9 + 32 * 10));  // at least the weights
  std::printf("onnx digits-cnn MemoryBytes: %llu (file %llu)\n",
              static_cast<unsigned long long>(instance->MemoryBytes()),
              static_cast<unsigned long long>(fs::file_size(ExampleDir() / "model.onnx")));
}

TEST(OnnxTest, BatchOfSeveralRowsMatchesRowByRow) {
  auto package = Example();
  ASSERT_TRUE(package);
  auto instance = MustLoad(*package);
  ASSERT_TRUE(instance);
  Tensor a = ExampleRow(*package, 0), b = ExampleRow(*package, 1);
  Tensor batch = Concat({a, b, b, a, b});
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

TEST(OnnxTest, NanAndInfPassThrough) {
  auto package = Example();
  ASSERT_TRUE(package);
  auto instance = MustLoad(*package);
  ASSERT_TRUE(instance);
  std::vector<double> values = TensorValues(ExampleRow(*package, 0));
  values[0] = NAN;
  values[9] = INFINITY;
  auto out = instance->Infer({Fp32("input", {1, 1, 8, 8}, values)}, kFar);
  ASSERT_TRUE(out.ok()) << out.status().ToString();  // MaxPool may drop the NaN
  EXPECT_EQ(out->at(0).shape, (std::vector<int64_t>{1, 10}));

  auto add = TestGraph("renamed_io.onnx", {{"x", "FP32", {-1, 4}}}, {{"y", "FP32", {-1, 4}}});
  instance = MustLoad(*add);
  ASSERT_TRUE(instance);
  out = instance->Infer({Fp32("x", {1, 4}, {NAN, INFINITY, -INFINITY, 0})}, kFar);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  std::vector<double> y = TensorValues(out->at(0));
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(y[1], INFINITY);
  EXPECT_EQ(y[2], -INFINITY);
}

TEST(OnnxTest, Fp64InputAndOutput) {
  auto package = Example();
  ASSERT_TRUE(package);
  package->manifest.inputs[0].datatype = "FP64";
  package->manifest.outputs[0].datatype = "FP64";
  auto instance = MustLoad(*package);
  ASSERT_TRUE(instance);
  for (size_t i = 0; i < package->manifest.examples.size(); ++i) {
    Tensor row = ExampleRow(*package, i);
    auto out =
        instance->Infer({FromDoubles("input", DataType::kFp64, row.shape, TensorValues(row))}, kFar);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    auto expected = TensorFromJson("logits", package->manifest.examples[i]["outputs"]["logits"]);
    EXPECT_TRUE(TensorNear(
        out->at(0), FromDoubles("logits", DataType::kFp64, {1, 10}, TensorValues(*expected)), 1e-4));
  }
}

TEST(OnnxTest, UnsupportedOperatorIsNamed) {
  auto package =
      TestGraph("unsupported_op.onnx", {{"x", "FP32", {-1, 4}}}, {{"y", "FP32", {-1, 4}}});
  auto instance = LoadPackage(*package);
  EXPECT_EQ(instance.status().code(), Code::kUnprocessable);
  EXPECT_EQ(
      instance.status().message(),
      "onnx: operator 'Hardmax' is not supported by the OpenCV DNN runtime (layer 'hardmax_1')");
}

TEST(OnnxTest, BindsByPositionWhenNamesDifferAndSkipsInitializers) {
  auto graph = ReadFile(TestData() / "renamed_io.onnx");
  ASSERT_TRUE(graph.ok());
  auto names = onnx::ReadOnnxGraph(*graph);
  ASSERT_TRUE(names.ok()) << names.status().ToString();
  EXPECT_EQ(names->inputs, (std::vector<std::string>{"data"}));  // not the initializer "bias"
  EXPECT_EQ(names->outputs, (std::vector<std::string>{"out"}));

  auto package = TestGraph("renamed_io.onnx", {{"x", "FP32", {-1, 4}}}, {{"y", "FP32", {-1, 4}}});
  auto instance = MustLoad(*package);
  ASSERT_TRUE(instance);
  auto out = instance->Infer({Fp32("x", {2, 4}, {0, 0, 0, 0, 1, 1, 1, 1})}, kFar);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(TensorNear(out->at(0), Fp32("y", {2, 4}, {1, 2, 3, 4, 2, 3, 4, 5}), 0));
}

TEST(OnnxTest, BindsByNameInAnyOrder) {
  auto package = TestGraph("two_in_two_out.onnx", {{"b", "FP32", {-1, 4}}, {"a", "FP32", {-1, 4}}},
                           {{"product", "FP32", {-1, 4}}, {"sum", "FP32", {-1, 4}}});
  auto instance = MustLoad(*package);
  ASSERT_TRUE(instance);
  auto out =
      instance->Infer({Fp32("b", {1, 4}, {10, 20, 30, 40}), Fp32("a", {1, 4}, {1, 2, 3, 4})}, kFar);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(TensorNear(out->at(0), Fp32("product", {1, 4}, {10, 40, 90, 160}), 0));
  EXPECT_TRUE(TensorNear(out->at(1), Fp32("sum", {1, 4}, {11, 22, 33, 44}), 0));
}

TEST(OnnxTest, SignatureThatDoesNotFitIsRefused) {
  struct Case {
    std::unique_ptr<Package> package;
    std::string message;
  };
  Case cases[] = {
      {TestGraph("renamed_io.onnx", {{"x", "FP32", {-1, 4}}, {"z", "FP32", {-1, 4}}},
                 {{"y", "FP32", {-1, 4}}}),
       "onnx: renamed_io.onnx has 1 inputs (data) but the signature declares 2 (x, z)"},
      {TestGraph("two_in_two_out.onnx", {{"a", "FP32", {-1, 4}}, {"b", "FP32", {-1, 4}}},
                 {{"sum", "FP32", {-1, 4}}}),
       "onnx: two_in_two_out.onnx has 2 outputs (sum, product) but the signature declares 1 (sum)"},
      {TestGraph("renamed_io.onnx", {{"x", "INT64", {-1, 4}}}, {{"y", "FP32", {-1, 4}}}),
       "onnx: input 'x' is INT64; the OpenCV DNN runtime takes and returns FP32 or FP64"},
      {TestGraph("renamed_io.onnx", {{"x", "FP32", {-1, 3}}}, {{"y", "FP32", {-1, 4}}}),
       "onnx: renamed_io.onnx does not run in the OpenCV DNN runtime: assertion failed: "},
  };
  for (const Case& c : cases) {
    auto instance = LoadPackage(*c.package);
    EXPECT_EQ(instance.status().code(), Code::kUnprocessable);
    EXPECT_EQ(instance.status().message().substr(0, c.message.size()), c.message)
        << instance.status().message();
  }
}

class OnnxFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create(fs::temp_directory_path(), "onnx-test-");
    ASSERT_TRUE(dir.ok());
    dir_.emplace(std::move(dir).value());
    fs::copy_file(ExampleDir() / "orrery.yaml", dir_->path() / "orrery.yaml");
  }
  Status LoadWith(const std::string* bytes) {
    if (bytes) WriteBytes(dir_->path() / "model.onnx", *bytes);
    auto package = ReadPackage(dir_->path());
    if (!package.ok()) return package.status();
    return LoadPackage(**package).status();
  }
  std::optional<TempDir> dir_;
};

TEST_F(OnnxFileTest, CorruptFilesAreUnprocessable) {
  auto model = ReadFile(ExampleDir() / "model.onnx");
  ASSERT_TRUE(model.ok());
  std::vector<std::string> cases = {RandomBytes(4096), std::string()};
  for (size_t size = 1; size < model->size(); size += size < 64 ? 7 : 997)
    cases.push_back(model->substr(0, size));
  for (const std::string& bytes : cases) {
    Status status = LoadWith(&bytes);
    EXPECT_EQ(status.code(), Code::kUnprocessable) << bytes.size();
    EXPECT_EQ(status.message().rfind("cannot load model.onnx: ", 0), 0u) << status.message();
    EXPECT_EQ(status.message().find('\n'), std::string::npos) << status.message();
  }
  Status status = LoadWith(&cases[0]);
  std::printf("random bytes: %s\n", status.message().c_str());
}

TEST_F(OnnxFileTest, MissingFileIsUnprocessable) {
  Status status = LoadWith(nullptr);
  EXPECT_EQ(status.code(), Code::kUnprocessable);
  EXPECT_EQ(status.message(), "cannot load model.onnx: file not found");
}

TEST(OnnxSupportTest, CleanMessage) {
  EXPECT_EQ(onnx::CleanMessage("OpenCV(4.6.0) ./modules/dnn/src/onnx/onnx_importer.cpp:310: error: "
                               "(-215:Assertion failed) tensor.has_shape() in function "
                               "'dumpValueInfoProto'\n"),
            "assertion failed: tensor.has_shape()");
  EXPECT_EQ(
      onnx::CleanMessage("OpenCV(4.6.0) x.cpp:1: error: (-2:Unspecified error) in function 'f'\n"
                         "> Node [Foo@ai.onnx]:(onnx_node!x) parse error: bad\n"),
      "Node [Foo@ai.onnx]:(onnx_node!x) parse error: bad");
  EXPECT_EQ(onnx::CleanMessage("caf\xc3\xa9"), "caf\\xc3\\xa9");
}

TEST(OnnxSupportTest, FitShape) {
  TensorSpec spec{"y", "FP32", {-1, 10}};
  EXPECT_EQ(*onnx::FitShape(spec, {3, 10}), (std::vector<int64_t>{3, 10}));
  EXPECT_EQ(*onnx::FitShape({"y", "FP32", {-1}}, {3, 1}), (std::vector<int64_t>{3}));
  EXPECT_EQ(onnx::FitShape(spec, {3, 5}).status().code(), Code::kInternal);
}

}  // namespace
}  // namespace orrery
