// ModelManager against a real Repository (temp data dir) and a fake backend
// registered under the name "native" (this test binary links no real
// backend): name resolution and its cache, loads off the request thread,
// the memory budget's LRU eviction, explicit load and unload, admin
// overrides of serving settings.
#include "serving/model_manager.h"

#include <gtest/gtest.h>

#include <future>

#include "core/files.h"
#include "repository/testing/test_repository.h"

namespace orrery {
namespace {

using namespace std::chrono_literals;

std::atomic<int> g_load_delay_ms{0};

class EchoInstance final : public Instance {
 public:
  Result<std::vector<Tensor>> Infer(const std::vector<Tensor>& inputs, Deadline) override {
    std::vector<Tensor> outputs = inputs;
    outputs[0].name = "y";
    return outputs;
  }
  uint64_t MemoryBytes() const override { return 100; }
};

class SlowEchoBackend final : public Backend {
 public:
  bool InProcess(const LoadContext&) const override { return true; }
  Result<std::unique_ptr<Instance>> Load(const LoadContext& context) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(g_load_delay_ms.load()));
    if (!std::filesystem::exists(context.dir / "model.bin")) return Unprocessable("no model.bin");
    return std::unique_ptr<Instance>(new EchoInstance());
  }
};
ORRERY_REGISTER_BACKEND("native", SlowEchoBackend);

class ModelManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = testing::OpenTestRepository("manager-test-");
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    dir_ = opened->dir;
    repo_ = std::move(opened->repository);
    Caller admin = opened->hub;
    ASSERT_TRUE(repo_->CreateTenant(admin, "acme").ok());
    acme_ = testing::MakeCaller(*repo_, admin, "acme", Role::kPublisher).value();
    ASSERT_TRUE(repo_->CreateTenant(admin, "other").ok());
    other_ = testing::MakeCaller(*repo_, admin, "other", Role::kReader).value();
    acme_admin_ = testing::MakeCaller(*repo_, admin, "acme", Role::kAdmin).value();
    g_load_delay_ms = 0;
  }
  void TearDown() override {
    manager_.reset();
    repo_.reset();
    std::filesystem::remove_all(dir_);
  }

  void MakeManager(uint64_t budget) {
    ModelManager::Options options;
    options.memory_budget_bytes = budget;
    options.warmup = false;
    manager_ = ModelManager::Create(*repo_, options).value();
  }

  void Publish(const std::string& name) {
    std::string manifest = "name: " + name +
                           "\ntitle: T\ncreators: [{name: Tester}]\nyear: 2026\n"
                           "backend: native\nfiles: [model.bin]\nsignature:\n"
                           "  inputs: [{name: x, datatype: FP32, shape: [-1]}]\n"
                           "  outputs: [{name: y, datatype: FP32, shape: [-1]}]\n";
    auto path = dir_ / (name + std::to_string(counter_++) + ".tar");
    ASSERT_TRUE(
        testing::WritePackage(path, {{"orrery.yaml", manifest}, {"model.bin", "weights"}}).ok());
    ASSERT_TRUE(repo_->Publish(acme_, PackageKind::kServable, {"acme", name}, path, {}).ok());
  }

  std::shared_ptr<const ResolvedServable> Resolve(const std::string& name) {
    auto servable = manager_->Resolve(acme_, {"acme", name}, VersionRef{0, "latest"});
    EXPECT_TRUE(servable.ok()) << servable.status().ToString();
    return *servable;
  }

  // Loads `name` and waits until it settled.
  std::shared_ptr<Model> LoadAndWait(const std::string& name) {
    std::shared_ptr<Model> model = manager_->Load(acme_, Resolve(name));
    std::promise<void> settled;
    model->OnSettled([&] { settled.set_value(); });
    settled.get_future().wait();
    return model;
  }

  std::filesystem::path dir_;
  std::unique_ptr<Repository> repo_;
  std::unique_ptr<ModelManager> manager_;
  Caller acme_, other_, acme_admin_;
  int counter_ = 0;
};

TEST_F(ModelManagerTest, ResolvesVisibleVersionsAndForgetsDeletedOnes) {
  MakeManager(1 << 20);
  Publish("echo");
  auto servable = Resolve("echo");
  EXPECT_EQ(servable->key, "acme/echo:1");
  EXPECT_EQ(servable->manifest.backend, "native");
  EXPECT_EQ(manager_->Resolve(acme_, {"acme", "echo"}, VersionRef{0, "latest"})->get(),
            servable.get());  // cached
  auto hidden = manager_->Resolve(other_, {"acme", "echo"}, VersionRef{0, "latest"});
  EXPECT_EQ(hidden.status().code(), Code::kNotFound);  // private to acme
  ASSERT_TRUE(repo_->DeleteVersion(acme_, PackageKind::kServable, {"acme", "echo"},
                                   VersionRef{1, ""}).ok());
  auto gone = manager_->Resolve(acme_, {"acme", "echo"}, VersionRef{1, ""});
  EXPECT_EQ(gone.status().code(), Code::kNotFound);  // the cache saw the catalog change
}

TEST_F(ModelManagerTest, AcquireNeverWaitsForTheLoad) {
  MakeManager(1 << 20);
  Publish("slow");
  g_load_delay_ms = 300;
  auto start = std::chrono::steady_clock::now();
  std::shared_ptr<Model> model = manager_->Acquire(acme_, Resolve("slow"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 100ms);
  EXPECT_EQ(model->state(), ModelState::kLoading);
  std::promise<InferOutcome> outcome;
  InferJob job;
  job.inputs = {Tensor{"x", DataType::kFp32, {1}, std::string(4, '\0')}};
  job.deadline = std::chrono::steady_clock::now() + 5s;
  job.done = [&](InferOutcome o) { outcome.set_value(std::move(o)); };
  model->Submit(std::move(job));
  EXPECT_TRUE(outcome.get_future().get().status.ok());  // ran once the load finished
  EXPECT_EQ(manager_->Acquire(acme_, Resolve("slow")).get(), model.get());
}

TEST_F(ModelManagerTest, MemoryBudgetUnloadsLeastRecentlyUsedIdleModels) {
  MakeManager(250);  // room for two models of 100 bytes
  Publish("a");
  Publish("b");
  Publish("c");
  LoadAndWait("a");
  std::this_thread::sleep_for(5ms);
  LoadAndWait("b");
  std::this_thread::sleep_for(5ms);
  LoadAndWait("c");
  for (int i = 0; i < 100 && manager_->Find("acme/a:1"); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(manager_->Find("acme/a:1"), nullptr);  // the least recently used
  EXPECT_NE(manager_->Find("acme/b:1"), nullptr);
  EXPECT_NE(manager_->Find("acme/c:1"), nullptr);
}

TEST_F(ModelManagerTest, FailedLoadIsReportedAndRetriedByExplicitLoad) {
  MakeManager(1 << 20);
  Publish("echo");
  std::shared_ptr<Model> model = LoadAndWait("echo");
  EXPECT_EQ(model->state(), ModelState::kReady);
  ASSERT_TRUE(manager_->Unload("acme/echo:1").ok());
  EXPECT_EQ(manager_->Find("acme/echo:1"), nullptr);
  EXPECT_EQ(manager_->Unload("acme/echo:1").code(), Code::kNotFound);
  std::shared_ptr<Model> again = LoadAndWait("echo");
  EXPECT_NE(again.get(), model.get());
  EXPECT_EQ(again->state(), ModelState::kReady);
}

TEST_F(ModelManagerTest, ServingOverrideIsAppliedAndReplacesTheLoadedModel) {
  MakeManager(1 << 20);
  Publish("echo");
  auto before = Resolve("echo");
  std::shared_ptr<Model> old_model = LoadAndWait("echo");
  EXPECT_FALSE(old_model->servable().manifest.batching.enabled());
  auto set = repo_->SetServingOverride(
      acme_admin_, {"acme", "echo"}, VersionRef{1, ""},
      nlohmann::json::parse(R"({"batching": {"max_batch_size": 4}, "cache": true})"));
  ASSERT_TRUE(set.ok()) << set.status().ToString();

  auto after = Resolve("echo");  // the catalog changed: resolved afresh, with the override
  ASSERT_NE(after.get(), before.get());
  EXPECT_EQ(after->manifest.batching.max_batch_size, 4u);
  EXPECT_TRUE(after->manifest.cache);
  EXPECT_FALSE(after->info.serving_override.empty());

  // The model made with the old settings is replaced, and unloaded.
  std::shared_ptr<Model> new_model = manager_->Acquire(acme_, after);
  ASSERT_NE(new_model.get(), old_model.get());
  EXPECT_EQ(new_model->servable().manifest.batching.max_batch_size, 4u);
  EXPECT_EQ(manager_->Find("acme/echo:1").get(), new_model.get());
  for (int i = 0; i < 100 && old_model->state() != ModelState::kUnloaded; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(old_model->state(), ModelState::kUnloaded);
  // A request resolved before the change gets the current model, not a third one.
  EXPECT_EQ(manager_->Acquire(acme_, before).get(), new_model.get());
  EXPECT_EQ(manager_->Acquire(acme_, after).get(), new_model.get());

  // Clearing it: back to the manifest's settings on the next resolution.
  ASSERT_TRUE(repo_->ClearServingOverride(acme_admin_, {"acme", "echo"}, VersionRef{1, ""}).ok());
  auto cleared = Resolve("echo");
  EXPECT_FALSE(cleared->manifest.batching.enabled());
  EXPECT_FALSE(cleared->manifest.cache);
  std::shared_ptr<Model> plain = manager_->Acquire(acme_, cleared);
  EXPECT_NE(plain.get(), new_model.get());
  EXPECT_FALSE(plain->servable().manifest.batching.enabled());
}

}  // namespace
}  // namespace orrery
