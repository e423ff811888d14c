// ModelManager against a real Repository (temp data dir) and a fake backend
// registered under the name "native" (this test binary links no real
// backend): name resolution and its cache, loads off the request thread,
// the memory budget (a bound: reservations, waiting in order, LRU eviction
// of idle models, deadlines, measured sizes), explicit load and unload,
// admin overrides of serving settings. Order is set by gates the test
// opens, never by sleeps.
#include "serving/model_manager.h"

#include <gtest/gtest.h>

#include <future>

#include "core/files.h"
#include "repository/testing/test_repository.h"
#include "serving/testing/gate.h"

namespace orrery {
namespace {

using namespace std::chrono_literals;

using testing::Gate;

Gate g_loads;                    // every Load passes it
Gate g_infers;                   // every Infer passes it
std::atomic<bool> g_fail_loads{false};

// config.bytes: what an instance holds (100 if absent); config.estimate: what
// the backend expects before loading (bytes if absent).
uint64_t ConfigBytes(const Manifest& manifest, const char* key, uint64_t fallback) {
  auto it = manifest.config.find(key);
  return it != manifest.config.end() && it->is_number_integer() ? it->get<uint64_t>() : fallback;
}

class EchoInstance final : public Instance {
 public:
  explicit EchoInstance(uint64_t bytes) : bytes_(bytes) {}
  Result<std::vector<Tensor>> Infer(const std::vector<Tensor>& inputs, Deadline) override {
    g_infers.Pass();
    std::vector<Tensor> outputs = inputs;
    outputs[0].name = "y";
    return outputs;
  }
  uint64_t MemoryBytes() const override { return bytes_; }

 private:
  uint64_t bytes_;
};

class GatedEchoBackend final : public Backend {
 public:
  bool InProcess(const LoadContext&) const override { return true; }
  Result<std::unique_ptr<Instance>> Load(const LoadContext& context) override {
    g_loads.Pass();
    if (g_fail_loads.load()) return Unprocessable("the fake backend fails this load");
    if (!std::filesystem::exists(context.dir / "model.bin")) return Unprocessable("no model.bin");
    return std::unique_ptr<Instance>(
        new EchoInstance(ConfigBytes(*context.manifest, "bytes", 100)));
  }
  uint64_t EstimateMemoryBytes(const LoadContext& context, uint64_t) const override {
    uint64_t bytes = ConfigBytes(*context.manifest, "bytes", 100);
    return ConfigBytes(*context.manifest, "estimate", bytes);
  }
};
ORRERY_REGISTER_BACKEND("native", GatedEchoBackend);

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
    g_loads.Open();
    g_infers.Open();
    g_fail_loads = false;
  }
  void TearDown() override {
    g_loads.Open();
    g_infers.Open();
    for (std::thread& submitter : submitters_) submitter.join();
    manager_.reset();
    repo_.reset();
    std::filesystem::remove_all(dir_);
  }

  void MakeManager(uint64_t budget, int64_t timeout_ms = 30'000, bool warmup = false) {
    ModelManager::Options options;
    options.memory_budget_bytes = budget;
    options.timeout_ms = timeout_ms;
    options.warmup = warmup;
    manager_ = ModelManager::Create(*repo_, options).value();
  }

  // `config`: the manifest's config map in YAML flow form, e.g. "{bytes: 150}";
  // `extra`: more manifest lines.
  void Publish(const std::string& name, const std::string& config = "{}",
               const std::string& extra = "") {
    std::string manifest = "name: " + name +
                           "\ntitle: T\ncreators: [{name: Tester}]\nyear: 2026\n"
                           "backend: native\nfiles: [model.bin]\nconfig: " + config + "\n" +
                           extra + "signature:\n"
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
    WaitSettled(*model);
    return model;
  }

  // Polls `done` until it holds or 10 s pass (a loaded machine can delay the
  // manager's threads; no expected outcome depends on the 10 s).
  template <typename Predicate>
  static bool WaitUntil(Predicate done) {
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > give_up) return false;
      std::this_thread::sleep_for(1ms);
    }
    return true;
  }

  static void WaitSettled(Model& model) {
    std::promise<void> settled;
    model.OnSettled([&] { settled.set_value(); });
    settled.get_future().wait();
  }

  // Submits one request to `model`; its outcome arrives on the future.
  std::future<InferOutcome> Submit(Model& model, Deadline deadline) {
    auto outcome = std::make_shared<std::promise<InferOutcome>>();
    std::future<InferOutcome> future = outcome->get_future();
    InferJob job;
    job.inputs = {Tensor{"x", DataType::kFp32, {1}, std::string(4, '\0')}};
    job.deadline = deadline;
    job.done = [outcome](InferOutcome o) { outcome->set_value(std::move(o)); };
    // Off this thread: an idle in-process instance would run it here. Joined
    // before the manager goes (TearDown): Submit may still be draining the
    // model's queue after the outcome arrived.
    submitters_.emplace_back(
        [&model, job = std::move(job)]() mutable { model.Submit(std::move(job)); });
    return future;
  }

  std::vector<std::thread> submitters_;
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

TEST_F(ModelManagerTest, ADeleteUnloadsWhatItDeletedAndFreesItsMemory) {
  MakeManager(1 << 20);
  Publish("echo");
  Publish("echo");  // version 2
  Publish("kept");
  std::shared_ptr<Model> one =
      manager_->Load(acme_, *manager_->Resolve(acme_, {"acme", "echo"}, VersionRef{1, ""}));
  WaitSettled(*one);
  std::shared_ptr<Model> two = LoadAndWait("echo");
  std::shared_ptr<Model> kept = LoadAndWait("kept");
  ASSERT_EQ(manager_->Models().size(), 3u);
  uint64_t charged = manager_->memory_stats().accounted_bytes;

  ASSERT_TRUE(repo_->DeleteVersion(acme_, PackageKind::kServable, {"acme", "echo"},
                                   VersionRef{1, ""}).ok());
  EXPECT_EQ(manager_->Find("acme/echo:1"), nullptr);  // out of the map at once
  EXPECT_TRUE(WaitUntil([&] { return one->state() == ModelState::kUnloaded; }));
  EXPECT_TRUE(WaitUntil([&] { return manager_->memory_stats().accounted_bytes < charged; }));
  EXPECT_EQ(two->state(), ModelState::kReady);  // another version of it stays

  ASSERT_TRUE(repo_->DeleteObject(acme_, PackageKind::kServable, {"acme", "echo"}).ok());
  EXPECT_TRUE(WaitUntil([&] { return two->state() == ModelState::kUnloaded; }));
  ASSERT_EQ(manager_->Models().size(), 1u);
  EXPECT_EQ(manager_->Models()[0]->key(), "acme/kept:1");
  EXPECT_EQ(kept->state(), ModelState::kReady);
  EXPECT_EQ(manager_->RenderMetrics("").find("acme/echo"), std::string::npos);
}

TEST_F(ModelManagerTest, AcquireNeverWaitsForTheLoad) {
  MakeManager(1 << 20);
  Publish("slow");
  g_loads.Close();  // the load cannot finish until the test says so
  std::shared_ptr<Model> model = manager_->Acquire(acme_, Resolve("slow"));
  EXPECT_EQ(model->state(), ModelState::kLoading);  // Acquire returned while it loads
  g_loads.AwaitWaiting(1);                          // on a load thread, not this one
  auto outcome = Submit(*model, std::chrono::steady_clock::now() + 60s);
  g_loads.Open();
  EXPECT_TRUE(outcome.get().status.ok());  // ran once the load finished
  EXPECT_EQ(manager_->Acquire(acme_, Resolve("slow")).get(), model.get());
}

TEST_F(ModelManagerTest, MemoryBudgetUnloadsLeastRecentlyUsedIdleModels) {
  MakeManager(250);  // room for two models of 100 bytes
  Publish("a");
  Publish("b");
  Publish("c");
  std::shared_ptr<Model> a = LoadAndWait("a");
  LoadAndWait("b");
  EXPECT_TRUE(Submit(*a, std::chrono::steady_clock::now() + 60s).get().status.ok());  // a: newer
  LoadAndWait("c");  // admitted once b, the least recently used, is unloaded
  EXPECT_EQ(manager_->Find("acme/b:1"), nullptr);
  EXPECT_NE(manager_->Find("acme/a:1"), nullptr);
  EXPECT_NE(manager_->Find("acme/c:1"), nullptr);
  ModelManager::MemoryStats stats = manager_->memory_stats();
  EXPECT_EQ(stats.accounted_bytes, 200u);
  EXPECT_EQ(stats.reserved_bytes, 0u);
  EXPECT_EQ(stats.evictions, 1u);
  EXPECT_EQ(stats.high_water_bytes, 200u);
}

TEST_F(ModelManagerTest, LoadsStartedTogetherNeverOvershootTheBudget) {
  MakeManager(300);  // three models of 100 bytes
  std::vector<std::string> names = {"m0", "m1", "m2", "m3", "m4"};
  for (const std::string& name : names) Publish(name);
  g_loads.Close();
  std::vector<std::shared_ptr<Model>> models;
  for (const std::string& name : names) models.push_back(manager_->Acquire(acme_, Resolve(name)));
  g_loads.AwaitWaiting(2);  // the manager's two load threads hold admitted loads
  // Admission is the manager's own thread: until it has seen all five.
  WaitUntil([&] {
    return manager_->memory_stats().waiting_loads == 2 &&
           models[3]->reason().rfind("waiting for memory", 0) == 0;
  });
  ModelManager::MemoryStats held = manager_->memory_stats();
  EXPECT_EQ(held.reserved_bytes, 300u);  // three admitted (one not started yet)
  EXPECT_EQ(held.waiting_loads, 2u);     // the other two wait, in order
  EXPECT_EQ(models[3]->reason().rfind("waiting for memory (100 bytes", 0), 0u)
      << models[3]->reason();
  g_loads.Open();
  for (const auto& model : models) WaitSettled(*model);
  for (const auto& model : models) EXPECT_NE(model->state(), ModelState::kFailed);
  ModelManager::MemoryStats stats = manager_->memory_stats();
  EXPECT_EQ(stats.high_water_bytes, 300u);
  EXPECT_EQ(stats.evictions, 2u);  // two of m0..m2 made room for m3 and m4
  EXPECT_EQ(stats.waiting_loads, 0u);
  // Which two depends on which of the concurrent loads finished first (the
  // least recently used is the first to be ready); m3 and m4 came last.
  int early_kept = 0;
  for (const char* name : {"acme/m0:1", "acme/m1:1", "acme/m2:1"}) {
    if (manager_->Find(name) != nullptr) ++early_kept;
  }
  EXPECT_EQ(early_kept, 1);
  EXPECT_NE(manager_->Find("acme/m3:1"), nullptr);
  EXPECT_NE(manager_->Find("acme/m4:1"), nullptr);
}

TEST_F(ModelManagerTest, BusyModelsStayAndALateRequestIsToldToRetry) {
  MakeManager(200);
  Publish("a");
  Publish("b");
  Publish("c");
  std::shared_ptr<Model> a = LoadAndWait("a");
  std::shared_ptr<Model> b = LoadAndWait("b");
  g_infers.Close();
  auto busy_a = Submit(*a, std::chrono::steady_clock::now() + 60s);
  auto busy_b = Submit(*b, std::chrono::steady_clock::now() + 60s);
  g_infers.AwaitWaiting(2);  // both models are in use: neither may be evicted
  std::shared_ptr<Model> c = manager_->Acquire(acme_, Resolve("c"));
  // Its deadline passes while it waits in c's queue for memory (300 ms is
  // room for it to get there first: one that arrives expired is refused as such).
  InferOutcome late = Submit(*c, std::chrono::steady_clock::now() + 300ms).get();
  EXPECT_EQ(late.status.code(), Code::kUnavailable);
  EXPECT_TRUE(late.retry_later);
  EXPECT_EQ(late.status.message().rfind("request timed out after ", 0), 0u);
  EXPECT_NE(late.status.message().find(" ms waiting for memory to load acme/c:1 (the memory "
                                       "budget is held by models in use)"),
            std::string::npos)
      << late.status.message();
  EXPECT_EQ(c->state(), ModelState::kLoading);
  auto on_time = Submit(*c, std::chrono::steady_clock::now() + 60s);
  g_infers.Open();  // a and b finish; one of them goes, and c loads
  EXPECT_TRUE(busy_a.get().status.ok());
  EXPECT_TRUE(busy_b.get().status.ok());
  EXPECT_TRUE(on_time.get().status.ok());
  EXPECT_EQ(c->state(), ModelState::kReady);
  EXPECT_EQ(manager_->memory_stats().high_water_bytes, 200u);
}

TEST_F(ModelManagerTest, ALoadThatFindsNoMemoryInTimeFailsAndIsRetriedAfresh) {
  MakeManager(100, /*timeout_ms=*/500);  // room for a loaded machine on the retry
  Publish("a");
  Publish("b");
  std::shared_ptr<Model> a = LoadAndWait("a");
  g_infers.Close();
  auto busy = Submit(*a, std::chrono::steady_clock::now() + 60s);
  g_infers.AwaitWaiting(1);
  std::shared_ptr<Model> b = manager_->Load(acme_, Resolve("b"));
  WaitSettled(*b);
  EXPECT_EQ(b->state(), ModelState::kFailed);
  EXPECT_TRUE(b->retry_later());
  EXPECT_EQ(b->reason(), "not enough memory to load it within 500 ms: the memory budget (100 "
                         "bytes) is held by models in use");
  EXPECT_EQ(manager_->Find("acme/b:1"), nullptr);  // the next request starts afresh
  g_infers.Open();
  EXPECT_TRUE(busy.get().status.ok());
  // Its answer is out; the request leaves `a` just after.
  WaitUntil([&] { return a->InFlight() == 0; });
  ASSERT_EQ(a->InFlight(), 0);
  std::shared_ptr<Model> again = LoadAndWait("b");
  EXPECT_EQ(again->state(), ModelState::kReady);
}

TEST_F(ModelManagerTest, AnUnderestimateIsMeasuredAndReservedNextTime) {
  MakeManager(1000);
  Publish("big", "{bytes: 150, estimate: 50}");
  std::shared_ptr<Model> first = LoadAndWait("big");
  EXPECT_EQ(manager_->memory_stats().underestimates, 1u);
  EXPECT_EQ(manager_->memory_stats().accounted_bytes, 150u);
  ASSERT_TRUE(manager_->Unload("acme/big:1").ok());
  g_loads.Close();
  std::shared_ptr<Model> second = manager_->Acquire(acme_, Resolve("big"));
  g_loads.AwaitWaiting(1);
  // What it measured (and an eighth more for the variation between loads), not 50.
  EXPECT_EQ(manager_->memory_stats().reserved_bytes, 150u + 150u / 8);
  g_loads.Open();
  WaitSettled(*second);
  EXPECT_EQ(manager_->memory_stats().underestimates, 1u);
}

TEST_F(ModelManagerTest, UnloadDuringWarmUpLeavesNothingCharged) {
  MakeManager(1000, 30'000, /*warmup=*/true);
  Publish("warm", "{}",
          "examples: [{inputs: {x: {datatype: FP32, shape: [1], data: [1.0]}},"
          " outputs: {y: {datatype: FP32, shape: [1], data: [1.0]}}}]\n");
  g_infers.Close();
  std::shared_ptr<Model> model = manager_->Acquire(acme_, Resolve("warm"));
  g_infers.AwaitWaiting(1);  // loaded, and its warm-up is running the example
  ASSERT_TRUE(manager_->Unload("acme/warm:1").ok());
  // Until the unload has reached the model (a load thread runs it).
  WaitUntil([&] { return model->stopping(); });
  ASSERT_TRUE(model->stopping());
  g_infers.Open();
  WaitSettled(*model);
  EXPECT_EQ(model->state(), ModelState::kFailed);
  EXPECT_EQ(model->reason(), "unloaded while loading");
  ModelManager::MemoryStats stats = manager_->memory_stats();
  EXPECT_EQ(stats.reserved_bytes, 0u);
  EXPECT_EQ(stats.accounted_bytes, 0u);  // nothing stays charged for a model that is gone
}

TEST_F(ModelManagerTest, FailedLoadIsReportedAndRetriedByExplicitLoad) {
  MakeManager(1 << 20);
  Publish("echo");
  g_fail_loads = true;
  std::shared_ptr<Model> failed = manager_->Acquire(acme_, Resolve("echo"));
  WaitSettled(*failed);
  EXPECT_EQ(failed->state(), ModelState::kFailed);
  EXPECT_EQ(failed->reason(), "the fake backend fails this load");
  EXPECT_FALSE(failed->retry_later());
  g_fail_loads = false;
  // A request does not retry a failed load (it would fail every request
  // slowly); an explicit load does.
  EXPECT_EQ(manager_->Acquire(acme_, Resolve("echo")).get(), failed.get());
  std::shared_ptr<Model> again = LoadAndWait("echo");
  EXPECT_NE(again.get(), failed.get());
  EXPECT_EQ(again->state(), ModelState::kReady);
  EXPECT_EQ(manager_->memory_stats().accounted_bytes, 100u);  // the failed load held nothing
}

TEST_F(ModelManagerTest, UnloadThenLoadMakesANewModel) {
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
  WaitUntil([&] { return old_model->state() == ModelState::kUnloaded; });
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
