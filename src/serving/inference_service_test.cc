// InferenceService against a real Repository (temp data dir), a real
// ModelManager and a fake in-process backend registered as "native" (this
// test binary links no real backend): the order of the checks (an invisible
// model is not-found before its request is decoded), output selection,
// refusals that load nothing, the transport's deadline, the Resolver seam,
// verify, readiness and unload permissions.
#include "serving/inference_service.h"

#include <gtest/gtest.h>

#include <cstring>
#include <future>

#include "repository/testing/test_repository.h"

namespace orrery {
namespace {

using namespace std::chrono_literals;

std::atomic<int> g_infers{0};

// y = x, z = -x.
class MirrorInstance final : public Instance {
 public:
  Result<std::vector<Tensor>> Infer(const std::vector<Tensor>& inputs, Deadline) override {
    ++g_infers;
    Tensor y = inputs[0], z = inputs[0];
    y.name = "y";
    z.name = "z";
    auto* values = reinterpret_cast<float*>(z.data.data());
    for (size_t i = 0; i < z.data.size() / sizeof(float); ++i) values[i] = -values[i];
    return std::vector<Tensor>{std::move(y), std::move(z)};
  }
  uint64_t MemoryBytes() const override { return 100; }
};

class MirrorBackend final : public Backend {
 public:
  bool InProcess(const LoadContext&) const override { return true; }
  Result<std::unique_ptr<Instance>> Load(const LoadContext&) override {
    return std::unique_ptr<Instance>(new MirrorInstance());
  }
  uint64_t EstimateMemoryBytes(const LoadContext&, uint64_t) const override { return 100; }
};
ORRERY_REGISTER_BACKEND("native", MirrorBackend);

Tensor Floats(const std::string& name, std::vector<float> values) {
  Tensor tensor;
  tensor.name = name;
  tensor.datatype = DataType::kFp32;
  tensor.shape = {static_cast<int64_t>(values.size())};
  tensor.data.resize(values.size() * sizeof(float));
  std::memcpy(tensor.data.data(), values.data(), tensor.data.size());
  return tensor;
}

std::vector<float> Values(const Tensor& tensor) {
  std::vector<float> values(tensor.data.size() / sizeof(float));
  std::memcpy(values.data(), tensor.data.data(), tensor.data.size());
  return values;
}

class InferenceServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = testing::OpenTestRepository("inference-service-test-");
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    dir_ = opened->dir;
    repo_ = std::move(opened->repository);
    Caller admin = opened->hub;
    ASSERT_TRUE(repo_->CreateTenant(admin, "acme").ok());
    ASSERT_TRUE(repo_->CreateTenant(admin, "other").ok());
    acme_ = testing::MakeCaller(*repo_, admin, "acme", Role::kPublisher).value();
    acme_reader_ = testing::MakeCaller(*repo_, admin, "acme", Role::kReader).value();
    other_ = testing::MakeCaller(*repo_, admin, "other", Role::kPublisher).value();
    ModelManager::Options options;
    options.warmup = false;
    manager_ = ModelManager::Create(*repo_, options).value();
    resolver_ = std::make_unique<CatalogResolver>(*manager_);
    service_ = std::make_unique<InferenceService>(*manager_, *repo_, *resolver_);
    Publish("mirror");
    g_infers = 0;
  }
  void TearDown() override {
    service_.reset();
    resolver_.reset();
    manager_.reset();
    repo_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Publish(const std::string& name) {
    std::string manifest =
        "name: " + name +
        "\ntitle: T\ncreators: [{name: Tester}]\nyear: 2026\n"
        "backend: native\nfiles: [model.bin]\n"
        "signature:\n"
        "  inputs: [{name: x, datatype: FP32, shape: [-1]}]\n"
        "  outputs: [{name: y, datatype: FP32, shape: [-1]}, {name: z, datatype: FP32, shape: [-1]}]\n"
        "examples:\n"
        "  - inputs: {x: {datatype: FP32, shape: [2], data: [1, 2]}}\n"
        "    outputs: {y: {datatype: FP32, shape: [2], data: [1, 2]},\n"
        "              z: {datatype: FP32, shape: [2], data: [-1, -2]}}\n";
    auto path = dir_ / (name + ".tar");
    ASSERT_TRUE(
        testing::WritePackage(path, {{"orrery.yaml", manifest}, {"model.bin", "weights"}}).ok());
    PublishOptions unchecked;
    unchecked.check = false;
    auto published = repo_->Publish(acme_, PackageKind::kServable, {"acme", name}, path, unchecked);
    ASSERT_TRUE(published.ok()) << published.status().ToString();
  }

  // Runs Infer and waits for its answer; *decoded says whether the decoder ran.
  InferAnswer Run(const Caller& caller, ModelTarget target, InferRequest request,
                  InferOptions options = {}, bool* decoded = nullptr) {
    std::promise<InferAnswer> promise;
    auto future = promise.get_future();
    service_->Infer(
        caller, target,
        [&request, decoded](const Manifest&) -> Result<InferRequest> {
          if (decoded != nullptr) *decoded = true;
          return std::move(request);
        },
        options, [&promise](InferAnswer answer) { promise.set_value(std::move(answer)); });
    return future.get();
  }

  static InferRequest Request(std::vector<float> x) {
    InferRequest request;
    request.inputs.push_back(Floats("x", std::move(x)));
    return request;
  }

  std::filesystem::path dir_;
  std::unique_ptr<Repository> repo_;
  std::unique_ptr<ModelManager> manager_;
  std::unique_ptr<CatalogResolver> resolver_;
  std::unique_ptr<InferenceService> service_;
  Caller acme_, acme_reader_, other_;
};

TEST_F(InferenceServiceTest, AnswersWithTheRequestedOutputsInTheOrderAsked) {
  InferRequest request = Request({1, 2, 3});
  request.id = "r1";
  request.has_id = true;
  request.outputs = {{"z", std::nullopt, nullptr}, {"y", std::nullopt, nullptr}};
  InferAnswer answer = Run(acme_, {"mirror", ""}, std::move(request));
  ASSERT_TRUE(answer.status.ok()) << answer.status.ToString();
  EXPECT_EQ(answer.response.model_name, "acme/mirror");
  EXPECT_EQ(answer.response.model_version, "1");
  EXPECT_EQ(answer.response.id, "r1");
  ASSERT_EQ(answer.response.outputs.size(), 2u);
  EXPECT_EQ(answer.response.outputs[0].name, "z");
  EXPECT_EQ(Values(answer.response.outputs[0]), (std::vector<float>{-1, -2, -3}));
  EXPECT_EQ(answer.response.outputs[1].name, "y");
  EXPECT_EQ(answer.request.outputs.size(), 2u);  // kept for the encoder
}

TEST_F(InferenceServiceTest, AnInvisibleModelIsNotFoundBeforeItsRequestIsDecoded) {
  bool decoded = false;
  InferAnswer invisible = Run(other_, {"acme/mirror", ""}, Request({1}), {}, &decoded);
  InferAnswer absent = Run(other_, {"acme/nothing", ""}, Request({1}));
  EXPECT_EQ(invisible.status.code(), Code::kNotFound);
  EXPECT_EQ(invisible.status.message(), "servable acme/mirror not found");
  EXPECT_EQ(absent.status.message(), "servable acme/nothing not found");
  EXPECT_FALSE(decoded);
  EXPECT_EQ(Run(acme_, {"acme/mirror", "not a version!"}, Request({1})).status.code(), Code::kInvalidArgument);
}

TEST_F(InferenceServiceTest, RefusedRequestsLoadNothing) {
  InferRequest classify = Request({1});
  classify.outputs = {{"y", std::nullopt, nlohmann::json{{"classification", 2}}}};
  EXPECT_EQ(Run(acme_, {"mirror", ""}, std::move(classify)).status.message(),
            "output 'y': the classification extension is not supported");
  InferRequest unknown = Request({1});
  unknown.outputs = {{"w", std::nullopt, nullptr}};
  EXPECT_EQ(Run(acme_, {"mirror", ""}, std::move(unknown)).status.code(), Code::kInvalidArgument);
  InferRequest timeout = Request({1});
  timeout.timeout_us = 0;
  EXPECT_EQ(Run(acme_, {"mirror", ""}, std::move(timeout)).status.message(),
            "parameter 'timeout' must be 1..3600000000 (microseconds), got 0");
  InferRequest priority = Request({1});
  priority.priority = -1;
  EXPECT_EQ(Run(acme_, {"mirror", ""}, std::move(priority)).status.code(), Code::kInvalidArgument);
  InferRequest wrong_input;
  wrong_input.inputs.push_back(Floats("q", {1}));
  EXPECT_EQ(Run(acme_, {"mirror", ""}, std::move(wrong_input)).status.code(),
            Code::kInvalidArgument);
  EXPECT_EQ(manager_->Find("acme/mirror:1"), nullptr);
  EXPECT_EQ(g_infers.load(), 0);
}

TEST_F(InferenceServiceTest, TheTransportsDeadlineOnlyShortens) {
  InferOptions passed;
  passed.deadline = std::chrono::steady_clock::now() - 1ms;
  InferAnswer late = Run(acme_, {"mirror", ""}, Request({1}), passed);
  EXPECT_EQ(late.status.code(), Code::kUnavailable) << late.status.ToString();
  EXPECT_EQ(late.status.message().rfind("request timed out after ", 0), 0u);
  EXPECT_EQ(g_infers.load(), 0);  // never handed to an instance
  InferOptions generous;
  generous.deadline = std::chrono::steady_clock::now() + 24h;  // beyond the server's 30 s
  EXPECT_TRUE(Run(acme_, {"mirror", ""}, Request({1}), generous).status.ok());
}

// The seam the model-less selector will use: whatever the request names,
// this resolver picks acme/mirror.
class FixedResolver final : public Resolver {
 public:
  explicit FixedResolver(ModelManager& models) : models_(models) {}
  Result<std::shared_ptr<const ResolvedServable>> Resolve(const Caller& caller,
                                                          const ModelTarget& target) override {
    names.push_back(target.model);
    return models_.Resolve(caller, {"acme", "mirror"}, VersionRef{0, "latest"});
  }
  std::vector<std::string> names;

 private:
  ModelManager& models_;
};

TEST_F(InferenceServiceTest, AnotherResolverChoosesTheServable) {
  FixedResolver fixed(*manager_);
  InferenceService service(*manager_, *repo_, fixed);
  std::promise<InferAnswer> promise;
  service.Infer(
      acme_, {"task:acme/digits", ""}, [](const Manifest&) -> Result<InferRequest> {
        return Request({4});
      },
      {}, [&promise](InferAnswer answer) { promise.set_value(std::move(answer)); });
  InferAnswer answer = promise.get_future().get();
  ASSERT_TRUE(answer.status.ok()) << answer.status.ToString();
  EXPECT_EQ(answer.response.model_name, "acme/mirror");
  EXPECT_EQ(fixed.names, std::vector<std::string>{"task:acme/digits"});
}

TEST_F(InferenceServiceTest, VerifyRunsTheExamplesThroughTheSamePath) {
  std::promise<Result<nlohmann::json>> promise;
  service_->Verify(acme_, {"acme/mirror", "latest"},
                   [&promise](Result<nlohmann::json> report) { promise.set_value(report); });
  Result<nlohmann::json> report = promise.get_future().get();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ((*report)["servable"], "acme/mirror:1");
  EXPECT_TRUE((*report)["ok"].get<bool>()) << report->dump();
  EXPECT_EQ(g_infers.load(), 1);
}

TEST_F(InferenceServiceTest, ReadinessLoadAndUnloadPermissions) {
  Result<Readiness> before = service_->ModelReady(acme_, {"mirror", ""});
  ASSERT_TRUE(before.ok());
  EXPECT_FALSE(before->ready);
  EXPECT_EQ(before->reason, "not loaded");
  std::promise<Result<nlohmann::json>> loaded;
  service_->Load(acme_reader_, {"mirror", "1"},
                 [&loaded](Result<nlohmann::json> answer, bool) { loaded.set_value(answer); });
  ASSERT_TRUE(loaded.get_future().get().ok());
  EXPECT_TRUE(service_->ModelReady(acme_, {"acme/mirror", "1"})->ready);
  EXPECT_EQ(service_->Unload(acme_reader_, {"mirror", ""}).status().code(),
            Code::kPermissionDenied);
  EXPECT_EQ(service_->Unload(other_, {"acme/mirror", ""}).status().message(),
            "servable acme/mirror not found");
  EXPECT_EQ(service_->Unload(acme_, {"mirror", ""}).value(), 1);
  EXPECT_EQ(service_->Unload(acme_, {"mirror", ""}).value(), 0);  // not loaded: succeeds
}

}  // namespace
}  // namespace orrery
