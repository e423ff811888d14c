// The python backend through the registry, with the example servables of
// examples/ and small servables written by the tests.
#include "backends/python/python_backend.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "backends/backend.h"
#include "core/files.h"
#include "repository/manifest.h"

namespace orrery {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kExamples = fs::path(ORRERY_SOURCE_DIR) / "examples";

Deadline In(int ms) {
  return std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
}

Manifest LoadManifest(const fs::path& dir) {
  Result<std::string> text = ReadFile(dir / kManifestFileName);
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  Result<Manifest> manifest = ParseManifest(text.ok() ? *text : "");
  EXPECT_TRUE(manifest.ok()) << manifest.status().ToString();
  return manifest.ok() ? *manifest : Manifest{};
}

// A tensor from a manifest example entry ({datatype, shape, data}); FP32 and
// FP64 only (what the python examples use).
Tensor FromExample(const std::string& name, const json& entry) {
  Tensor t;
  t.name = name;
  t.datatype = *ParseDataType(entry["datatype"].get<std::string>());
  t.shape = entry["shape"].get<std::vector<int64_t>>();
  for (const json& value : entry["data"]) {
    if (t.datatype == DataType::kFp32) {
      float f = value.get<float>();
      t.data.append(reinterpret_cast<const char*>(&f), sizeof(f));
    } else {
      double d = value.get<double>();
      t.data.append(reinterpret_cast<const char*>(&d), sizeof(d));
    }
  }
  return t;
}

double ValueAt(const Tensor& t, size_t i) {
  if (t.datatype == DataType::kFp32) {
    float f;
    std::memcpy(&f, t.data.data() + i * 4, 4);
    return f;
  }
  double d;
  std::memcpy(&d, t.data.data() + i * 8, 8);
  return d;
}

class PythonBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create(fs::temp_directory_path(), "python-backend-test-");
    ASSERT_TRUE(dir.ok());
    root_.emplace(std::move(dir).value());
    sandbox_.scratch_root = root_->path() / "scratch";
    sandbox_.first_backoff = std::chrono::milliseconds(20);
    backend_ = FindBackend("python");
    ASSERT_NE(backend_, nullptr);
  }

  Result<std::unique_ptr<Instance>> Load(const fs::path& dir, const Manifest& manifest) {
    LoadContext context;
    context.dir = dir;
    context.manifest = &manifest;
    context.tenant = "test";
    context.label = "test/" + manifest.name + ":1";
    context.sandbox = &sandbox_;
    return backend_->Load(context);
  }

  // A servable in a fresh directory: m.py with `source`, x FP32 [-1, -1] in,
  // y FP32 [-1, -1] out unless changed afterwards.
  fs::path Write(const std::string& source, Manifest* manifest,
                 const std::string& entrypoint = "m:f") {
    fs::path dir = root_->path() / ("s" + std::to_string(count_++));
    EXPECT_TRUE(EnsureDir(dir).ok());
    EXPECT_TRUE(WriteFileAtomic(dir / "m.py", source).ok());
    manifest->name = "m";
    manifest->backend = "python";
    manifest->inputs = {{"x", "FP32", {-1, -1}}};
    manifest->outputs = {{"y", "FP32", {-1, -1}}};
    manifest->config = {{"entrypoint", entrypoint}};
    return dir;
  }

  // Runs every example of the package in `dir` and compares within its tolerance.
  void CheckExamples(const fs::path& dir) {
    Manifest manifest = LoadManifest(dir);
    auto instance = Load(dir, manifest);
    ASSERT_TRUE(instance.ok()) << instance.status().ToString();
    ASSERT_FALSE(manifest.examples.empty());
    for (const json& example : manifest.examples) {
      std::vector<Tensor> inputs;
      for (const TensorSpec& spec : manifest.inputs) {
        inputs.push_back(FromExample(spec.name, example["inputs"][spec.name]));
      }
      auto outputs = (*instance)->Infer(inputs, In(10'000));
      ASSERT_TRUE(outputs.ok()) << outputs.status().ToString();
      double tolerance = example.value("tolerance", 1e-6);
      ASSERT_EQ(outputs->size(), manifest.outputs.size());
      for (size_t o = 0; o < manifest.outputs.size(); ++o) {
        Tensor expected =
            FromExample(manifest.outputs[o].name, example["outputs"][manifest.outputs[o].name]);
        const Tensor& got = (*outputs)[o];
        EXPECT_EQ(got.name, expected.name);
        EXPECT_EQ(got.shape, expected.shape);
        ASSERT_EQ(got.data.size(), expected.data.size());
        for (size_t i = 0; i < expected.data.size() / DataTypeSize(expected.datatype); ++i) {
          EXPECT_NEAR(ValueAt(got, i), ValueAt(expected, i), tolerance) << dir << " " << i;
        }
      }
    }
  }

  Backend* backend_ = nullptr;
  SandboxOptions sandbox_;
  std::optional<TempDir> root_;
  int count_ = 0;
};

TEST_F(PythonBackendTest, RegisteredAndOutOfProcess) {
  EXPECT_FALSE(backend_->InProcess(LoadContext{}));
  auto worker = FindPythonWorker();
  ASSERT_TRUE(worker.ok()) << worker.status().ToString();
  EXPECT_TRUE(fs::equivalent(*worker, fs::path(ORRERY_SOURCE_DIR) / "python" / "orrery_worker.py"));
}

TEST_F(PythonBackendTest, DigitsExampleMatchesItsManifest) {
  CheckExamples(kExamples / "digits-logreg-python");
}

TEST_F(PythonBackendTest, KeplerExampleMatchesItsManifest) {
  CheckExamples(kExamples / "kepler-python");
}

TEST_F(PythonBackendTest, ExamplesAlsoRunInTheFallbackSandbox) {
  sandbox_.use_bubblewrap = false;
  CheckExamples(kExamples / "digits-logreg-python");
  CheckExamples(kExamples / "kepler-python");
}

TEST_F(PythonBackendTest, ServableValueErrorIsUnprocessableNamingIt) {
  Manifest manifest = LoadManifest(kExamples / "kepler-python");
  auto instance = Load(kExamples / "kepler-python", manifest);
  ASSERT_TRUE(instance.ok()) << instance.status().ToString();
  double minus = -1, one = 1;
  Tensor a{
      "semi_major_axis_au", DataType::kFp64, {1}, std::string(reinterpret_cast<char*>(&minus), 8)};
  Tensor m{
      "central_mass_msun", DataType::kFp64, {1}, std::string(reinterpret_cast<char*>(&one), 8)};
  auto result = (*instance)->Infer({a, m}, In(5000));
  EXPECT_EQ(result.status().code(), Code::kUnprocessable);
  EXPECT_EQ(result.status().message(),
            "ValueError: semi_major_axis_au and central_mass_msun must be positive");
  a.data.assign(reinterpret_cast<char*>(&one), 8);
  EXPECT_TRUE((*instance)->Infer({a, m}, In(5000)).ok());
  EXPECT_TRUE((*instance)->Health().ready);
  EXPECT_GT((*instance)->MemoryBytes(), 0u);
}

TEST_F(PythonBackendTest, EntrypointFormatIsChecked) {
  for (std::string bad : {"", "predict", "predict:", ":predict", "pre dict:f", "a..b:f", "a.:f",
                          "1a:f", "m:f.g", "m:f:g", "../m:f", "m:f()", "os:system('x')"}) {
    EXPECT_EQ(ValidatePythonEntrypoint(bad).code(), Code::kUnprocessable) << bad;
    Manifest manifest;
    fs::path dir = Write("def f(inputs):\n    return inputs\n", &manifest, bad);
    auto instance = Load(dir, manifest);
    EXPECT_EQ(instance.status().code(), Code::kUnprocessable) << bad;
    EXPECT_NE(instance.status().message().find("entrypoint"), std::string::npos);
  }
  for (std::string good : {"m:f", "pkg.sub.mod:Predictor", "_m1:_f2"}) {
    EXPECT_TRUE(ValidatePythonEntrypoint(good).ok()) << good;
  }
  Manifest manifest;
  fs::path dir = Write("", &manifest);
  manifest.config = json::object();
  EXPECT_EQ(Load(dir, manifest).status().code(), Code::kUnprocessable);
}

TEST_F(PythonBackendTest, LoadErrorsNameTheProblem) {
  struct Case {
    std::string source, entrypoint, expected;
  };
  std::vector<Case> cases = {
      {"def f(inputs):\n    return inputs\n", "absent:f", "No module named 'absent'"},
      {"def f(inputs):\n  return inputs\n return 1\n", "m:f", "IndentationError"},
      {"x = (\n", "m:f", "SyntaxError"},
      {"def g(inputs):\n    return inputs\n", "m:f", "module 'm' has no attribute 'f'"},
  };
  for (const Case& c : cases) {
    Manifest manifest;
    fs::path dir = Write(c.source, &manifest, c.entrypoint);
    auto instance = Load(dir, manifest);
    EXPECT_EQ(instance.status().code(), Code::kUnprocessable) << c.source;
    EXPECT_NE(instance.status().message().find(c.expected), std::string::npos)
        << instance.status().message();
  }
}

TEST_F(PythonBackendTest, ClassEntrypointsAndPackages) {
  Manifest manifest;
  fs::path dir = Write(
      "import os\n"
      "class Scaled:\n"
      "    def __init__(self, model_dir):\n"
      "        with open(os.path.join(model_dir, 'factor.txt')) as f:\n"
      "            self.factor = float(f.read())\n"
      "    def predict(self, inputs):\n"
      "        return inputs['x'] * self.factor\n"
      "class Called:\n"
      "    def __init__(self, scale=3.0):\n"
      "        self.scale = scale\n"
      "    def __call__(self, inputs):\n"
      "        return [inputs['x'] * self.scale]\n",
      &manifest, "m:Scaled");
  ASSERT_TRUE(WriteFileAtomic(dir / "factor.txt", "2.5").ok());
  ASSERT_TRUE(EnsureDir(dir / "pkg").ok());
  ASSERT_TRUE(WriteFileAtomic(dir / "pkg" / "__init__.py", "").ok());
  ASSERT_TRUE(WriteFileAtomic(dir / "pkg" / "mod.py", "from m import Called as C\n").ok());
  float two = 2;
  Tensor x{"x", DataType::kFp32, {1, 1}, std::string(reinterpret_cast<char*>(&two), 4)};
  for (auto [entrypoint, expected] :
       {std::pair<std::string, float>{"m:Scaled", 5.0f}, {"m:Called", 6.0f}, {"pkg.mod:C", 6.0f}}) {
    manifest.config = {{"entrypoint", entrypoint}};
    auto instance = Load(dir, manifest);
    ASSERT_TRUE(instance.ok()) << instance.status().ToString();
    auto result = (*instance)->Infer({x}, In(5000));
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(ValueAt((*result)[0], 0), expected) << entrypoint;
  }
}

TEST_F(PythonBackendTest, OutputsAreCheckedAgainstTheSignature) {
  Manifest manifest;
  fs::path dir = Write(
      "import numpy as np\n"
      "def f(inputs):\n"
      "    return np.zeros((1, 3), np.float32)\n",
      &manifest);
  manifest.outputs = {{"y", "FP32", {-1, 8}}};
  auto instance = Load(dir, manifest);
  ASSERT_TRUE(instance.ok()) << instance.status().ToString();
  float one = 1;
  auto result = (*instance)->Infer(
      {Tensor{"x", DataType::kFp32, {1, 1}, std::string(reinterpret_cast<char*>(&one), 4)}},
      In(5000));
  EXPECT_EQ(result.status().code(), Code::kInternal);
  EXPECT_NE(result.status().message().find("'y' has shape [1, 3], the signature says [-1, 8]"),
            std::string::npos)
      << result.status().message();
}

TEST_F(PythonBackendTest, MissingWorkerProgramIsUnavailable) {
  sandbox_.python_worker = root_->path() / "nowhere.py";
  Manifest manifest;
  fs::path dir = Write("def f(inputs):\n    return inputs\n", &manifest);
  auto instance = Load(dir, manifest);
  EXPECT_EQ(instance.status().code(), Code::kUnavailable);
  EXPECT_EQ(instance.status().message(), "a worker file is missing on the server");
  // The host path is for the operator's log only.
  EXPECT_NE(instance.status().detail().find("nowhere.py"), std::string::npos);
}

}  // namespace
}  // namespace orrery
