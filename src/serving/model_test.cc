// Model's scheduling and state machine, with a fake backend (the real ones
// have their own tests under src/backends/).
#include "serving/model.h"
#include "serving/testing/gate.h"
#include "serving/testing/test_servable.h"

#include <gtest/gtest.h>

#include <future>

namespace orrery {
namespace {

using namespace std::chrono_literals;

// Echoes its inputs once past `gate`; fails every load when `load_error` is set.
struct FakeConfig {
  testing::Gate gate;
  Status load_error;
  bool in_process = true;
  std::atomic<int> running{0};
  std::atomic<int> max_running{0};
  std::atomic<int> loads{0};
  std::atomic<bool> instance_overlapped{false};  // one instance ran two requests at once
};

class FakeInstance final : public Instance {
 public:
  explicit FakeInstance(FakeConfig& config) : config_(config) {}
  Result<std::vector<Tensor>> Infer(const std::vector<Tensor>& inputs, Deadline) override {
    if (busy_.exchange(true)) config_.instance_overlapped = true;
    int now = ++config_.running;
    int seen = config_.max_running.load();
    while (now > seen && !config_.max_running.compare_exchange_weak(seen, now)) {
    }
    config_.gate.Pass();
    --config_.running;
    busy_ = false;
    std::vector<Tensor> outputs = inputs;
    outputs[0].name = "y";
    return outputs;
  }
  uint64_t MemoryBytes() const override { return 100; }

 private:
  FakeConfig& config_;
  std::atomic<bool> busy_{false};
};

class FakeBackend final : public Backend {
 public:
  explicit FakeBackend(FakeConfig& config) : config_(config) {}
  bool InProcess(const LoadContext&) const override { return config_.in_process; }
  Result<std::unique_ptr<Instance>> Load(const LoadContext&) override {
    ++config_.loads;
    if (!config_.load_error.ok()) return config_.load_error;
    return std::unique_ptr<Instance>(new FakeInstance(config_));
  }

 private:
  FakeConfig& config_;
};

std::shared_ptr<const ResolvedServable> Servable() {
  return testing::TestServable("fake", {{"x", "FP32", {-1}}}, {{"y", "FP32", {-1}}});
}

Tensor Input(float value) {
  Tensor tensor{"x", DataType::kFp32, {1}, std::string(4, '\0')};
  std::memcpy(tensor.data.data(), &value, 4);
  return tensor;
}

// Submits one job and returns a future of its outcome; `*deadline`, when
// given, is set to the job's deadline.
std::future<InferOutcome> Submit(Model& model, float value,
                                 std::chrono::milliseconds timeout = 60'000ms,
                                 Deadline* deadline = nullptr) {
  auto promise = std::make_shared<std::promise<InferOutcome>>();
  InferJob job;
  job.inputs = {Input(value)};
  job.deadline = std::chrono::steady_clock::now() + timeout;
  if (deadline != nullptr) *deadline = job.deadline;
  job.done = [promise](InferOutcome outcome) { promise->set_value(std::move(outcome)); };
  model.Submit(std::move(job));
  return promise->get_future();
}

LoadContext Context() { return LoadContext{}; }

TEST(ModelTest, ReadyModelRunsOnTheSubmittingThread) {
  FakeConfig config;
  FakeBackend backend(config);
  Model model(Servable(), {});
  model.Load(backend, Context());
  EXPECT_EQ(model.state(), ModelState::kReady);
  EXPECT_TRUE(model.Ready());
  auto outcome = Submit(model, 2.5f);
  ASSERT_EQ(outcome.wait_for(0s), std::future_status::ready);  // inline: done before Submit returned
  InferOutcome result = outcome.get();
  ASSERT_TRUE(result.status.ok()) << result.status.message();
  EXPECT_EQ(result.outputs[0].name, "y");
  EXPECT_EQ(model.metrics().requests.load(), 1u);
  EXPECT_EQ(model.metrics().compute.Count(), 1u);
}

TEST(ModelTest, RequestsQueuedWhileLoadingRunOnceReady) {
  FakeConfig config;
  FakeBackend backend(config);
  Model model(Servable(), {});
  auto first = Submit(model, 1), second = Submit(model, 2);
  EXPECT_EQ(first.wait_for(0s), std::future_status::timeout);
  model.Load(backend, Context());
  EXPECT_TRUE(first.get().status.ok());
  EXPECT_TRUE(second.get().status.ok());
  EXPECT_EQ(model.InFlight(), 0);
}

TEST(ModelTest, FailedLoadFailsQueuedAndLaterRequestsWithTheReason) {
  FakeConfig config;
  config.load_error = Unprocessable("cannot load model.pt: bad magic");
  FakeBackend backend(config);
  Model model(Servable(), {});
  auto queued = Submit(model, 1);
  bool settled = false;
  model.OnSettled([&] { settled = true; });
  model.Load(backend, Context());
  EXPECT_TRUE(settled);
  EXPECT_EQ(model.state(), ModelState::kFailed);
  EXPECT_EQ(model.reason(), "cannot load model.pt: bad magic");
  InferOutcome outcome = queued.get();
  EXPECT_EQ(outcome.status.code(), Code::kUnavailable);
  EXPECT_NE(outcome.status.message().find("bad magic"), std::string::npos);
  outcome = Submit(model, 2).get();
  EXPECT_NE(outcome.status.message().find("not ready: cannot load"), std::string::npos);
}

TEST(ModelTest, FullQueueRefusesAtOnceWithRetryLater) {
  FakeConfig config;
  config.in_process = false;  // worker threads: Submit never runs the job itself
  config.gate.Close();
  FakeBackend backend(config);
  Model::Options options;
  options.max_queue = 2;
  Model model(Servable(), options);
  model.Load(backend, Context());
  auto first = Submit(model, 0);
  config.gate.AwaitWaiting(1);  // the only instance is busy with it
  std::vector<std::future<InferOutcome>> outcomes;
  for (int i = 0; i < 5; ++i) outcomes.push_back(Submit(model, 1));
  // The 3 beyond the 2 queue places are refused at once, before anything runs.
  for (int i = 2; i < 5; ++i) {
    ASSERT_EQ(outcomes[i].wait_for(0s), std::future_status::ready) << i;
    InferOutcome result = outcomes[i].get();
    EXPECT_TRUE(result.retry_later);
    EXPECT_EQ(result.status.message(), "servable lab/fake:1: queue is full (2 requests waiting)");
  }
  config.gate.Open();
  EXPECT_TRUE(first.get().status.ok());
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(outcomes[i].get().status.ok()) << i;
  EXPECT_EQ(model.metrics().rejected.load(), 3u);
}

TEST(ModelTest, ExpiredQueuedRequestIsFailedWithoutRunning) {
  FakeConfig config;
  config.in_process = false;
  config.gate.Close();
  FakeBackend backend(config);
  Model model(Servable(), {});
  model.Load(backend, Context());
  auto slow = Submit(model, 0);
  config.gate.AwaitWaiting(1);
  Deadline deadline;
  auto expiring = Submit(model, 1, 50ms, &deadline);
  std::this_thread::sleep_until(deadline);  // its time runs out while it waits
  config.gate.Open();
  InferOutcome outcome = expiring.get();
  EXPECT_EQ(outcome.status.code(), Code::kUnavailable);
  EXPECT_EQ(outcome.status.message().rfind("request timed out after ", 0), 0u)
      << outcome.status.message();
  EXPECT_TRUE(slow.get().status.ok());
  EXPECT_EQ(model.metrics().compute.Count(), 1u);  // the expired one never ran
}

TEST(ModelTest, InstancesRunInParallelButEachOneAtATime) {
  FakeConfig config;
  config.in_process = false;
  config.gate.Close();
  FakeBackend backend(config);
  Model::Options options;
  options.instances = 3;
  Model model(Servable(), options);
  model.Load(backend, Context());
  std::vector<std::future<InferOutcome>> outcomes;
  for (int i = 0; i < 9; ++i) outcomes.push_back(Submit(model, i));
  config.gate.AwaitWaiting(3);  // three run at once, one per instance
  config.gate.Open();
  for (auto& outcome : outcomes) EXPECT_TRUE(outcome.get().status.ok());
  EXPECT_EQ(config.loads.load(), 3);
  EXPECT_EQ(config.max_running.load(), 3);
  EXPECT_FALSE(config.instance_overlapped.load());
}

TEST(ModelTest, UnloadWaitsForAcceptedRequestsThenRefusesNewOnes) {
  FakeConfig config;
  config.in_process = false;
  config.gate.Close();
  FakeBackend backend(config);
  Model model(Servable(), {});
  model.Load(backend, Context());
  auto running = Submit(model, 0), queued = Submit(model, 1);
  config.gate.AwaitWaiting(1);
  std::thread opener([&] { config.gate.Open(); });
  model.Unload();  // returns only when both finished
  opener.join();
  EXPECT_EQ(running.wait_for(0s), std::future_status::ready);
  EXPECT_TRUE(running.get().status.ok());
  EXPECT_TRUE(queued.get().status.ok());
  EXPECT_EQ(model.state(), ModelState::kUnloaded);
  InferOutcome late = Submit(model, 2).get();
  EXPECT_EQ(late.status.code(), Code::kUnavailable);
  model.Unload();  // idempotent
}

}  // namespace
}  // namespace orrery
