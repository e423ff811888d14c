// The autoscaler's seam of Model (model.h, scheduler.h): adding a loaded
// instance serves requests on it at once, removing one waits for its
// request to end and never takes the last one, on each kind of scheduling;
// and a model that is not ready, or a pipeline, has no instances to change.
//
// The fake backend is a gate: a call records its value and blocks until the
// test opens the gate, so the test knows how many instances are busy.
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>

#include "serving/model.h"
#include "serving/testing/test_servable.h"

namespace orrery {
namespace {

using namespace std::chrono_literals;

struct Gate {
  std::mutex mutex;
  std::condition_variable changed;
  bool open = false;
  int running = 0;      // calls inside Infer now
  int max_running = 0;  // the most at once
  std::vector<float> calls;

  void WaitForRunning(int n) {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, 60s, [&] { return running >= n; }))
        << running << " running, waited for " << n;
  }
  void Open() {
    std::lock_guard lock(mutex);
    open = true;
    changed.notify_all();
  }
};

class GatedInstance final : public Instance {
 public:
  explicit GatedInstance(Gate& gate) : gate_(gate) {}
  Result<std::vector<Tensor>> Infer(const std::vector<Tensor>& inputs, Deadline) override {
    std::unique_lock lock(gate_.mutex);
    float value;
    std::memcpy(&value, inputs[0].data.data(), 4);
    gate_.calls.push_back(value);
    gate_.max_running = std::max(gate_.max_running, ++gate_.running);
    gate_.changed.notify_all();
    gate_.changed.wait(lock, [&] { return gate_.open; });
    --gate_.running;
    std::vector<Tensor> outputs = inputs;
    outputs[0].name = "y";
    return outputs;
  }
  uint64_t MemoryBytes() const override { return 1000; }

 private:
  Gate& gate_;
};

class GatedBackend final : public Backend {
 public:
  GatedBackend(Gate& gate, bool in_process) : gate_(gate), in_process_(in_process) {}
  bool InProcess(const LoadContext&) const override { return in_process_; }
  Result<std::unique_ptr<Instance>> Load(const LoadContext&) override {
    return std::unique_ptr<Instance>(new GatedInstance(gate_));
  }

 private:
  Gate& gate_;
  bool in_process_;
};

std::future<InferOutcome> Submit(Model& model, float value) {
  auto promise = std::make_shared<std::promise<InferOutcome>>();
  InferJob job;
  job.inputs = {Tensor{"x", DataType::kFp32, {1}, std::string(4, '\0')}};
  std::memcpy(job.inputs[0].data.data(), &value, 4);
  job.deadline = std::chrono::steady_clock::now() + 60s;
  job.done = [promise](InferOutcome outcome) { promise->set_value(std::move(outcome)); };
  model.Submit(std::move(job));
  return promise->get_future();
}

bool Answered(std::future<InferOutcome>& outcome) {
  if (outcome.wait_for(60s) != std::future_status::ready) return false;
  InferOutcome result = outcome.get();
  EXPECT_TRUE(result.status.ok()) << result.status.message();
  return result.status.ok();
}

enum class Kind { kDirect, kWorker, kBatched };

class ModelInstancesTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    auto servable = testing::TestServable("scaled", {{"x", "FP32", {-1}}}, {{"y", "FP32", {-1}}});
    if (GetParam() == Kind::kBatched) servable->manifest.batching.max_batch_size = 1;
    model_ = std::make_unique<Model>(servable, Model::Options{});
    model_->Load(backend_, LoadContext{});
    ASSERT_EQ(model_->state(), ModelState::kReady);
  }
  void TearDown() override {
    gate_.Open();
    model_.reset();
  }
  // Submits from another thread: a direct scheduler runs a request on the
  // submitting thread, which the gate would block.
  std::future<InferOutcome> SubmitAside(float value) {
    return std::async(std::launch::async, [this, value] {
      std::future<InferOutcome> outcome = Submit(*model_, value);
      return outcome.get();
    });
  }

  Gate gate_;
  GatedBackend backend_{gate_, GetParam() == Kind::kDirect};
  std::unique_ptr<Model> model_;
};

TEST_P(ModelInstancesTest, AnAddedInstanceTakesTheRequestWaitingInTheQueue) {
  EXPECT_EQ(model_->Instances(), 1);
  auto first = SubmitAside(1);
  gate_.WaitForRunning(1);
  auto second = SubmitAside(2);
  // The only instance is busy: the second request waits in the queue.
  for (int i = 0; i < 1000 && model_->QueueLengths() != std::vector<size_t>{1}; ++i) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(model_->QueueLengths(), std::vector<size_t>{1});
  // A direct scheduler runs the waiting request on the adding thread.
  auto added = std::async(std::launch::async, [&] {
    return model_->AddInstance(std::make_unique<GatedInstance>(gate_));
  });
  gate_.WaitForRunning(2);  // both instances busy at once
  EXPECT_EQ(model_->Instances(), 2);
  EXPECT_EQ(model_->MemoryBytes(), 2000u);
  gate_.Open();
  EXPECT_TRUE(added.get().ok());
  EXPECT_TRUE(Answered(first));
  EXPECT_TRUE(Answered(second));
  EXPECT_EQ(gate_.max_running, 2);
}

TEST_P(ModelInstancesTest, RemovingWaitsForTheInstancesRequestAndKeepsTheLastOne) {
  ASSERT_TRUE(model_->AddInstance(std::make_unique<GatedInstance>(gate_)).ok());
  auto a = SubmitAside(1);
  auto b = SubmitAside(2);
  gate_.WaitForRunning(2);  // every instance busy
  auto removed = std::async(std::launch::async, [&] { return model_->RemoveInstance(); });
  EXPECT_EQ(removed.wait_for(100ms), std::future_status::timeout)
      << "an instance was taken out while it ran a request";
  gate_.Open();
  Result<std::unique_ptr<Instance>> instance = removed.get();
  ASSERT_TRUE(instance.ok()) << instance.status().message();
  EXPECT_NE(*instance, nullptr);
  EXPECT_EQ(model_->Instances(), 1);
  EXPECT_EQ(model_->MemoryBytes(), 1000u);
  EXPECT_TRUE(Answered(a));
  EXPECT_TRUE(Answered(b));

  Result<std::unique_ptr<Instance>> last = model_->RemoveInstance();
  EXPECT_EQ(last.status().code(), Code::kConflict);
  EXPECT_EQ(last.status().message(),
            "servable lab/scaled:1 keeps its last instance (unload it instead)");
  auto after = SubmitAside(3);  // the one left still serves
  EXPECT_TRUE(Answered(after));
}

TEST_P(ModelInstancesTest, UnloadDestroysAddedInstancesToo) {
  ASSERT_TRUE(model_->AddInstance(std::make_unique<GatedInstance>(gate_)).ok());
  ASSERT_TRUE(model_->AddInstance(std::make_unique<GatedInstance>(gate_)).ok());
  EXPECT_EQ(model_->Instances(), 3);
  gate_.Open();
  for (float value : {1, 2, 3, 4}) {
    auto outcome = SubmitAside(value);
    EXPECT_TRUE(Answered(outcome));
  }
  model_->Unload();
  EXPECT_EQ(model_->state(), ModelState::kUnloaded);
  EXPECT_EQ(model_->Instances(), 0);
  EXPECT_EQ(model_->MemoryBytes(), 0u);
  EXPECT_EQ(model_->AddInstance(std::make_unique<GatedInstance>(gate_)).code(), Code::kConflict);
}

INSTANTIATE_TEST_SUITE_P(Kinds, ModelInstancesTest,
                         ::testing::Values(Kind::kDirect, Kind::kWorker, Kind::kBatched),
                         [](const auto& info) {
                           switch (info.param) {
                             case Kind::kDirect:
                               return "Direct";
                             case Kind::kWorker:
                               return "Worker";
                             case Kind::kBatched:
                               return "Batched";
                           }
                           return "Unknown";
                         });

TEST(ModelInstances, AModelThatIsNotReadyHasNoInstancesToChange) {
  Gate gate;
  GatedBackend backend(gate, true);
  auto servable = testing::TestServable("loading", {{"x", "FP32", {-1}}}, {{"y", "FP32", {-1}}});
  Model model(servable, Model::Options{});
  EXPECT_EQ(model.Instances(), 0);
  Status added = model.AddInstance(std::make_unique<GatedInstance>(gate));
  EXPECT_EQ(added.code(), Code::kConflict);
  EXPECT_EQ(added.message(), "servable lab/loading:1 is not ready: loading");
  EXPECT_EQ(model.RemoveInstance().status().code(), Code::kConflict);
}

TEST(ModelInstances, APipelineHasNoInstancesOfItsOwn) {
  class Echo final : public Composite {
   public:
    void Run(InferJob job) override { job.done({Status::Ok(), job.inputs}); }
    std::string NotReadyReason() const override { return ""; }
  };
  Gate gate;
  GatedBackend backend(gate, true);
  auto servable = testing::TestServable("chain", {{"x", "FP32", {-1}}}, {{"y", "FP32", {-1}}});
  Model model(servable, Model::Options{});
  model.LoadComposite(std::unique_ptr<Composite>(new Echo));
  ASSERT_TRUE(model.Ready());
  EXPECT_EQ(model.Instances(), 0);
  Status added = model.AddInstance(std::make_unique<GatedInstance>(gate));
  EXPECT_EQ(added.code(), Code::kConflict);
  EXPECT_EQ(added.message(), "servable lab/chain:1 is a pipeline: it has no instances (its steps do)");
  EXPECT_EQ(model.RemoveInstance().status().code(), Code::kConflict);
  auto outcome = Submit(model, 5);
  EXPECT_TRUE(Answered(outcome));
}

}  // namespace
}  // namespace orrery
