// Tests of the xgboost backend through the registry, on the example servable
// (examples/digits-xgboost) and the regressor of testdata/ (made by
// testdata/make_testdata.py).
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <gtest/gtest.h>

#include "backends/backend.h"
#include "backends/testing/backend_test_util.h"
#include "backends/xgboost/xgboost_support.h"
#include "core/files.h"

namespace orrery {
namespace {

namespace fs = std::filesystem;
using namespace backend_testing;

const Deadline kFar = std::chrono::steady_clock::time_point::max();

fs::path ExampleDir() {
  return SourceDir() / "examples/digits-xgboost";
}
fs::path TestData() {
  return SourceDir() / "src/backends/xgboost/testdata";
}

std::unique_ptr<Package> Example() {
  auto package = ReadPackage(ExampleDir());
  EXPECT_TRUE(package.ok()) << package.status().ToString();
  return package.ok() ? std::move(package).value() : nullptr;
}

Tensor ExampleRow(const Package& package, size_t i) {
  return ExampleInputs(package.manifest, package.manifest.examples.at(i))->at(0);
}

// The regressor of testdata/ with output shape `output_shape`.
std::unique_ptr<Package> Regressor(const std::string& file, std::vector<int64_t> output_shape) {
  Manifest manifest;
  manifest.name = "regressor";
  manifest.backend = "xgboost";
  manifest.files = {{file, ""}};
  manifest.inputs = {{"x", "FP32", {-1, 10}}};
  manifest.outputs = {{"y", "FP32", std::move(output_shape)}};
  return MakePackage(TestData(), std::move(manifest));
}

TEST(XGBoostTest, RunsTheManifestExamples) {
  auto package = Example();
  ASSERT_TRUE(package);
  EXPECT_TRUE(FindBackend("xgboost")->InProcess(package->context));
  auto instance = MustLoad(*package);
  ASSERT_TRUE(instance);
  EXPECT_TRUE(RunManifestExamples(*package, *instance));
  EXPECT_EQ(instance->MemoryBytes(), fs::file_size(ExampleDir() / "model.ubj") * 3 / 2);
}

TEST(XGBoostTest, BatchOfSeveralRowsMatchesRowByRow) {
  auto package = Example();
  ASSERT_TRUE(package);
  auto instance = MustLoad(*package);
  ASSERT_TRUE(instance);
  Tensor a = ExampleRow(*package, 0), b = ExampleRow(*package, 1);
  Tensor batch = Concat({a, b, b, a, a});
  auto out = instance->Infer({batch}, kFar);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->at(0).shape, (std::vector<int64_t>{5, 10}));
  for (int64_t r = 0; r < 5; ++r) {
    auto one = instance->Infer({Rows(batch, r, r + 1)}, kFar);
    ASSERT_TRUE(one.ok());
    EXPECT_TRUE(TensorNear(Rows(out->at(0), r, r + 1), one->at(0), 1e-6));
  }
  auto empty = instance->Infer({Rows(batch, 0, 0)}, kFar);
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->at(0).shape, (std::vector<int64_t>{0, 10}));
}

TEST(XGBoostTest, NanIsMissingAndInfPassesThrough) {
  auto package = Example();
  ASSERT_TRUE(package);
  auto instance = MustLoad(*package);
  ASSERT_TRUE(instance);
  std::vector<double> values = TensorValues(ExampleRow(*package, 0));
  values[10] = NAN;
  values[20] = INFINITY;
  values[30] = -INFINITY;
  auto out = instance->Infer({FromDoubles("input", DataType::kFp32, {1, 64}, values)}, kFar);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  double sum = 0;
  for (double p : TensorValues(out->at(0))) sum += p;
  EXPECT_NEAR(sum, 1.0, 1e-5);  // still a distribution
}

TEST(XGBoostTest, Fp64InputAndOutput) {
  auto package = Example();
  ASSERT_TRUE(package);
  auto fp32 = MustLoad(*package);
  package->manifest.inputs[0].datatype = "FP64";
  package->manifest.outputs[0].datatype = "FP64";
  auto fp64 = MustLoad(*package);
  ASSERT_TRUE(fp32 && fp64);
  Tensor row = ExampleRow(*package, 1);
  auto expected = fp32->Infer({row}, kFar);
  auto out = fp64->Infer({FromDoubles("input", DataType::kFp64, {1, 64}, TensorValues(row))}, kFar);
  ASSERT_TRUE(out.ok() && expected.ok()) << out.status().ToString();
  EXPECT_EQ(out->at(0).datatype, DataType::kFp64);
  EXPECT_TRUE(TensorNear(
      out->at(0),
      FromDoubles("probabilities", DataType::kFp64, {1, 10}, TensorValues(expected->at(0))), 1e-7));
}

TEST(XGBoostTest, RegressorInUbjAndJsonShapedAsTheSignatureSays) {
  auto expected = ReadFile(TestData() / "regression_expected.json");
  ASSERT_TRUE(expected.ok());
  auto json = nlohmann::json::parse(*expected);
  std::vector<double> inputs;
  for (const auto& row : json["inputs"]) {
    for (double v : row) inputs.push_back(v);
  }
  Tensor x = FromDoubles("x", DataType::kFp32, {3, 10}, inputs);
  std::vector<double> y = json["outputs"].get<std::vector<double>>();
  for (const char* file : {"regression.ubj", "regression.json", "regression.model"}) {
    auto flat = MustLoad(*Regressor(file, {-1}));
    ASSERT_TRUE(flat) << file;
    auto out = flat->Infer({x}, kFar);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_TRUE(TensorNear(out->at(0), FromDoubles("y", DataType::kFp32, {3}, y), 1e-6)) << file;
    auto column = MustLoad(*Regressor(file, {-1, 1}));
    ASSERT_TRUE(column) << file;
    out = column->Infer({x}, kFar);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(out->at(0).shape, (std::vector<int64_t>{3, 1}));
  }
  auto wrong = LoadPackage(*Regressor("regression.ubj", {-1, 2}));
  EXPECT_EQ(wrong.status().code(), Code::kUnprocessable);
  EXPECT_EQ(wrong.status().message(),
            "xgboost: the model returns 1 values per row, which do not fit output 'y' [-1, 2]");
}

TEST(XGBoostTest, SignatureThatDoesNotFitIsRefused) {
  struct Case {
    std::function<void(Manifest&)> change;
    std::string message;
  };
  std::vector<Case> cases = {
      {[](Manifest& m) {
         m.inputs[0].shape = {-1, 32};
       },
       "xgboost: model.ubj expects 64 features but input 'input' has 32"},
      {[](Manifest& m) { m.inputs[0].datatype = "INT64"; },
       "xgboost: input 'input' is INT64; this backend takes and returns FP32 or FP64"},
      {[](Manifest& m) {
         m.inputs[0].shape = {-1, 8, 8};
       },
       "xgboost: input 'input' must be [batch, features], not [-1, 8, 8]"},
      {[](Manifest& m) { m.outputs.push_back(m.outputs[0]); },
       "xgboost: the signature must have one input and one output (it has 1 and 2)"},
      {[](Manifest& m) {
         m.outputs[0].shape = {-1, 3};
       },
       "xgboost: the model returns 10 values per row, which do not fit output 'probabilities' "
       "[-1, 3]"},
      {[](Manifest& m) {
         m.config = {{"threads", "two"}};
       },
       "xgboost: config.threads must be an integer from 1 to 64"},
  };
  for (const Case& c : cases) {
    auto package = Example();
    ASSERT_TRUE(package);
    c.change(package->manifest);
    auto instance = LoadPackage(*package);
    EXPECT_EQ(instance.status().code(), Code::kUnprocessable);
    EXPECT_EQ(instance.status().message(), c.message);
  }
}

TEST(XGBoostTest, WrongFeatureCountAtInferIsInvalidArgument) {
  auto package = Example();
  ASSERT_TRUE(package);
  package->manifest.inputs[0].shape = {-1, -1};
  auto instance = MustLoad(*package);
  ASSERT_TRUE(instance);
  auto out = instance->Infer({FromDoubles("input", DataType::kFp32, {1, 3}, {1, 2, 3})}, kFar);
  EXPECT_EQ(out.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(out.status().message().find('\n'), std::string::npos) << out.status().message();
}

class XGBoostFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create(fs::temp_directory_path(), "xgboost-test-");
    ASSERT_TRUE(dir.ok());
    dir_.emplace(std::move(dir).value());
    fs::copy_file(ExampleDir() / "orrery.yaml", dir_->path() / "orrery.yaml");
  }
  Status LoadWith(const std::string* bytes) {
    if (bytes) WriteBytes(dir_->path() / "model.ubj", *bytes);
    auto package = ReadPackage(dir_->path());
    if (!package.ok()) return package.status();
    return LoadPackage(**package).status();
  }
  std::optional<TempDir> dir_;
};

TEST_F(XGBoostFileTest, CorruptFilesAreUnprocessable) {
  auto model = ReadFile(ExampleDir() / "model.ubj");
  ASSERT_TRUE(model.ok());
  for (const std::string& bytes : {RandomBytes(4096), model->substr(0, model->size() / 2),
                                   model->substr(0, 100), std::string()}) {
    Status status = LoadWith(&bytes);
    EXPECT_EQ(status.code(), Code::kUnprocessable) << bytes.size();
    EXPECT_EQ(status.message().rfind("cannot load model.ubj: ", 0), 0u) << status.message();
    EXPECT_EQ(status.message().find('\n'), std::string::npos) << status.message();
    EXPECT_EQ(status.message().find(dir_->path().string()), std::string::npos) << status.message();
    std::printf("%zu bytes: %s\n", bytes.size(), status.message().c_str());
  }
}

// XGBoost's own UBJSON reader would crash on most of these (model_check.h).
TEST_F(XGBoostFileTest, EveryTruncationOfTheUbjIsUnprocessable) {
  auto model = ReadFile(ExampleDir() / "model.ubj");
  ASSERT_TRUE(model.ok());
  for (size_t size = 0; size < model->size(); size += size < 512 ? 1 : 4099) {
    std::string bytes = model->substr(0, size);
    Status status = LoadWith(&bytes);
    ASSERT_EQ(status.code(), Code::kUnprocessable) << size;
  }
}

TEST_F(XGBoostFileTest, DeeplyNestedJsonIsUnprocessable) {
  fs::remove(dir_->path() / "orrery.yaml");
  auto package = Regressor("model.json", {-1});
  package->context.dir = dir_->path();
  std::string bytes = "{\"learner\":";
  for (int i = 0; i < 100000; ++i) bytes += "{\"a\":";
  WriteBytes(dir_->path() / "model.json", bytes);
  auto instance = LoadPackage(*package);
  EXPECT_EQ(instance.status().code(), Code::kUnprocessable);
  EXPECT_EQ(instance.status().message(),
            "cannot load model.json: JSON nested deeper than 128 levels at byte 646");
}

TEST_F(XGBoostFileTest, MissingFileIsUnprocessable) {
  Status status = LoadWith(nullptr);
  EXPECT_EQ(status.code(), Code::kUnprocessable);
  EXPECT_EQ(status.message(), "cannot load model.ubj: file not found");
}

// Models whose bytes parse but whose trees would make XGBoost read out of
// bounds (model_check.h): each is refused with the problem named.
TEST_F(XGBoostFileTest, InconsistentTreesAreUnprocessable) {
  auto text = ReadFile(TestData() / "regression.json");
  ASSERT_TRUE(text.ok());
  struct Case {
    std::function<void(nlohmann::json&)> change;
    std::string message;
  };
  std::vector<Case> cases = {
      {[](nlohmann::json& m) { m["trees"][0]["left_children"][0] = 99; },
       "tree 0: child 99 of node 0 is not a node"},
      {[](nlohmann::json& m) { m["trees"][1]["left_children"][1] = 0; },
       "tree 1: node 0 has two parents"},
      {[](nlohmann::json& m) { m["trees"][2]["parents"][3] = 1 << 30; },
       "tree 2: parents[3] = 1073741824 is not a node"},
      {[](nlohmann::json& m) { m["trees"][3]["split_indices"][0] = 10; },
       "tree 3: split_indices[0] = 10 is not a feature (the model has 10)"},
      {[](nlohmann::json& m) { m["trees"][4]["sum_hessian"].erase(0); },
       "tree 4.sum_hessian: must be an array of num_nodes (15) entries"},
      {[](nlohmann::json& m) { m["tree_info"][5] = 1; },
       "learner.gradient_booster.model.tree_info: output group 1 of 1"},
      {[](nlohmann::json& m) { m["gbtree_model_param"]["num_parallel_tree"] = "0"; },
       "learner.gradient_booster.model.gbtree_model_param.num_parallel_tree: 0 is outside [1, "
       "2147483647]"},
  };
  auto package = Regressor("model.json", {-1});
  package->context.dir = dir_->path();
  for (const Case& c : cases) {
    auto model = nlohmann::json::parse(*text);
    c.change(model["learner"]["gradient_booster"]["model"]);
    WriteBytes(dir_->path() / "model.json", model.dump());
    auto json = LoadPackage(*package);
    EXPECT_EQ(json.status().code(), Code::kUnprocessable);
    EXPECT_EQ(json.status().message(), "cannot load model.json: " + c.message);
  }
}

TEST(XGBoostSupportTest, CleanMessage) {
  EXPECT_EQ(xgboost::CleanMessage("[03:51:10] ./src/common/io.cc:102: Opening /d/m.ubj failed: "
                                  "No such file\nStack trace:\n  [bt] (0) x",
                                  "/d/m.ubj", "m.ubj"),
            "Opening m.ubj failed: No such file");
  EXPECT_EQ(xgboost::CleanMessage("basic_string::_M_replace_aux", "", ""),
            "basic_string::_M_replace_aux");
  EXPECT_EQ(xgboost::CleanMessage("", "", ""), "unknown error");
}

// Infer computes on the calling thread (nthread 1): 300 calls at batch 32
// start no thread (an OpenMP pool would start at the first parallel call).
TEST(XGBoostTest, InfersOnTheCallingThreadOnly) {
  auto package = Example();
  ASSERT_TRUE(package);
  auto instance = MustLoad(*package);
  ASSERT_TRUE(instance);
  std::vector<Tensor> inputs = {Concat(std::vector<Tensor>(32, ExampleRow(*package, 0)))};
  int before = ProcessThreads();
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(instance->Infer(inputs, kFar).ok());
  EXPECT_LE(ProcessThreads(), before);  // none started
}

}  // namespace
}  // namespace orrery
