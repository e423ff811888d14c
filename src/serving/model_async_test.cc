// Model's event-loop path for worker backends (AsyncInfer): a fake worker
// instance and a fake reactor that the test drives by hand.
#include <gtest/gtest.h>

#include <cstring>
#include <future>

#include "core/reactor.h"
#include "serving/model.h"
#include "serving/testing/test_servable.h"

namespace orrery {
namespace {

using namespace std::chrono_literals;

// Records WaitReadable calls; the test fires their callbacks.
class FakeReactor final : public Reactor {
 public:
  struct Wait {
    int fd;
    std::chrono::steady_clock::time_point deadline;
    std::function<void(Wake)> done;
  };
  FakeReactor() { SetCurrent(this); }
  ~FakeReactor() override { SetCurrent(nullptr); }
  void WaitReadable(int fd, std::chrono::steady_clock::time_point deadline,
                    std::function<void(Wake)> done) override {
    waits.push_back({fd, deadline, std::move(done)});
  }
  // Fires the oldest registration.
  void Fire(Wake wake) {
    ASSERT_FALSE(waits.empty());
    Wait wait = std::move(waits.front());
    waits.erase(waits.begin());
    wait.done(wake);
  }
  std::vector<Wait> waits;
};

struct WorkerCounts {
  std::atomic<int> sync_calls{0};
  std::atomic<int> begins{0};
  std::atomic<int> aborts{0};
  std::atomic<bool> in_async{false};          // between Begin and Complete/Abort
  std::atomic<bool> infer_overlapped{false};  // Infer ran while a split one was pending
  bool last_abort_timed_out = false;
  Status begin_error;  // returned by the next Begin when set
};

// A worker-like instance: Infer (its thread's path) and the split form
// both echo the input as "y".
class FakeWorker final : public Instance, public AsyncInfer {
 public:
  explicit FakeWorker(WorkerCounts& counts) : counts_(counts) {}
  Result<std::vector<Tensor>> Infer(const std::vector<Tensor>& inputs, Deadline) override {
    ++counts_.sync_calls;
    if (counts_.in_async.load()) counts_.infer_overlapped = true;
    return Echo(inputs);
  }
  uint64_t MemoryBytes() const override { return 1; }
  AsyncInfer* Async() override { return this; }
  Result<int> Begin(const std::vector<Tensor>& inputs, Deadline) override {
    ++counts_.begins;
    if (!counts_.begin_error.ok()) return std::exchange(counts_.begin_error, Status::Ok());
    pending_ = inputs;
    counts_.in_async = true;
    return 42;
  }
  Result<std::vector<Tensor>> Complete() override {
    counts_.in_async = false;
    return Echo(pending_);
  }
  Status Abort(bool timed_out) override {
    counts_.in_async = false;
    ++counts_.aborts;
    counts_.last_abort_timed_out = timed_out;
    return Unavailable(timed_out ? "worker timed out; killed" : "stopping");
  }

 private:
  static std::vector<Tensor> Echo(std::vector<Tensor> tensors) {
    tensors[0].name = "y";
    return tensors;
  }
  WorkerCounts& counts_;
  std::vector<Tensor> pending_;
};

class FakeWorkerBackend final : public Backend {
 public:
  explicit FakeWorkerBackend(WorkerCounts& counts) : counts_(counts) {}
  bool InProcess(const LoadContext&) const override { return false; }
  Result<std::unique_ptr<Instance>> Load(const LoadContext&) override {
    return std::unique_ptr<Instance>(new FakeWorker(counts_));
  }

 private:
  WorkerCounts& counts_;
};

std::shared_ptr<const ResolvedServable> Servable() {
  return testing::TestServable("worker", {{"x", "FP32", {-1}}}, {{"y", "FP32", {-1}}});
}

std::future<InferOutcome> Submit(Model& model, size_t floats = 1) {
  auto promise = std::make_shared<std::promise<InferOutcome>>();
  InferJob job;
  job.inputs = {Tensor{"x", DataType::kFp32, {static_cast<int64_t>(floats)},
                       std::string(floats * 4, '\1')}};
  job.deadline = std::chrono::steady_clock::now() + 5s;
  job.done = [promise](InferOutcome outcome) { promise->set_value(std::move(outcome)); };
  model.Submit(std::move(job));
  return promise->get_future();
}

class ModelAsyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = std::make_unique<Model>(Servable(), Model::Options{});
    model_->Load(backend_, LoadContext{});
    ASSERT_EQ(model_->state(), ModelState::kReady);
  }
  WorkerCounts counts_;
  FakeWorkerBackend backend_{counts_};
  std::unique_ptr<Model> model_;
};

TEST_F(ModelAsyncTest, RequestOnALoopThreadIsSentAndItsAnswerReadThere) {
  FakeReactor reactor;
  auto outcome = Submit(*model_);
  ASSERT_EQ(reactor.waits.size(), 1u);
  EXPECT_EQ(reactor.waits[0].fd, 42);
  EXPECT_EQ(outcome.wait_for(0s), std::future_status::timeout);  // waits for the answer
  reactor.Fire(Reactor::Wake::kReadable);
  ASSERT_EQ(outcome.wait_for(0s), std::future_status::ready);
  InferOutcome result = outcome.get();
  ASSERT_TRUE(result.status.ok()) << result.status.message();
  EXPECT_EQ(result.outputs[0].name, "y");
  EXPECT_EQ(counts_.begins.load(), 1);
  EXPECT_EQ(counts_.sync_calls.load(), 0);
  EXPECT_EQ(model_->InFlight(), 0);
}

TEST_F(ModelAsyncTest, DeadlineOnTheLoopAbortsTheRequest) {
  FakeReactor reactor;
  auto outcome = Submit(*model_);
  reactor.Fire(Reactor::Wake::kTimedOut);
  InferOutcome result = outcome.get();
  EXPECT_EQ(result.status.code(), Code::kUnavailable);
  EXPECT_NE(result.status.message().find("timed out"), std::string::npos);
  EXPECT_EQ(counts_.aborts.load(), 1);
  EXPECT_TRUE(counts_.last_abort_timed_out);
  // The slot is free again: the next request is sent the same way.
  auto next = Submit(*model_);
  ASSERT_EQ(reactor.waits.size(), 1u);
  reactor.Fire(Reactor::Wake::kCancelled);
  EXPECT_FALSE(next.get().status.ok());
  EXPECT_FALSE(counts_.last_abort_timed_out);
}

TEST_F(ModelAsyncTest, WithoutAReactorTheInstanceThreadRunsIt) {
  auto outcome = Submit(*model_);
  ASSERT_EQ(outcome.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(outcome.get().status.ok());
  EXPECT_EQ(counts_.sync_calls.load(), 1);
  EXPECT_EQ(counts_.begins.load(), 0);
}

TEST_F(ModelAsyncTest, LargeRequestGoesThroughTheInstanceThread) {
  FakeReactor reactor;
  auto outcome = Submit(*model_, AsyncInfer::kMaxAsyncBytes / 4);
  ASSERT_EQ(outcome.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(outcome.get().status.ok());
  EXPECT_TRUE(reactor.waits.empty());
  EXPECT_EQ(counts_.sync_calls.load(), 1);
}

TEST_F(ModelAsyncTest, RequestArrivingWhileBusyQueuesAndRunsOnTheThreadAfterwards) {
  FakeReactor reactor;
  auto first = Submit(*model_);
  auto second = Submit(*model_);  // the only instance is busy: queued
  EXPECT_EQ(reactor.waits.size(), 1u);
  EXPECT_EQ(second.wait_for(0s), std::future_status::timeout);
  reactor.Fire(Reactor::Wake::kReadable);
  EXPECT_TRUE(first.get().status.ok());
  ASSERT_EQ(second.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(second.get().status.ok());
  EXPECT_EQ(counts_.sync_calls.load(), 1);
  // Its thread left the busy slot alone: the queued request never ran
  // while the first was still waiting for its answer.
  EXPECT_FALSE(counts_.infer_overlapped.load());
}

TEST_F(ModelAsyncTest, BeginThatFailsAnswersAtOnceAndFreesTheSlot) {
  FakeReactor reactor;
  counts_.begin_error = Unavailable("worker restarting after a crash");
  auto failed = Submit(*model_);
  ASSERT_EQ(failed.wait_for(0s), std::future_status::ready);
  InferOutcome result = failed.get();
  EXPECT_NE(result.status.message().find("worker restarting"), std::string::npos);
  EXPECT_TRUE(reactor.waits.empty());
  auto next = Submit(*model_);
  ASSERT_EQ(reactor.waits.size(), 1u);
  reactor.Fire(Reactor::Wake::kReadable);
  EXPECT_TRUE(next.get().status.ok());
}

}  // namespace
}  // namespace orrery
