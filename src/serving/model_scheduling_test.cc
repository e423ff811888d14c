// Model's queue (manifest `queue`): priority order, FIFO within a level,
// batches from the highest level first, the exact queue bound, and requests
// whose time ran out never reaching an instance — on the plain path (a
// worker thread per instance) and the batching path.
//
// The fake backend is a gate: every call records the rows it was given,
// then blocks until the test opens the gate. A first "blocker" request holds
// the only instance while the test queues the others, so what the queue
// holds and the order it hands them out are decided before anything runs.
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
  std::vector<std::vector<float>> calls;  // the values of every call's rows, in call order

  void WaitForCalls(size_t n) {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return calls.size() >= n; });
  }
  void Open() {
    std::lock_guard lock(mutex);
    open = true;
    changed.notify_all();
  }
  std::vector<std::vector<float>> Calls() {
    std::lock_guard lock(mutex);
    return calls;
  }
};

class GatedInstance final : public Instance {
 public:
  explicit GatedInstance(Gate& gate) : gate_(gate) {}
  Result<std::vector<Tensor>> Infer(const std::vector<Tensor>& inputs, Deadline) override {
    std::vector<float> values(inputs[0].data.size() / 4);
    std::memcpy(values.data(), inputs[0].data.data(), values.size() * 4);
    std::unique_lock lock(gate_.mutex);
    gate_.calls.push_back(values);
    gate_.changed.notify_all();
    gate_.changed.wait(lock, [&] { return gate_.open; });
    std::vector<Tensor> outputs = inputs;
    outputs[0].name = "y";
    return outputs;
  }
  uint64_t MemoryBytes() const override { return 1; }

 private:
  Gate& gate_;
};

// In process or not: a non-batched servable in process would run the
// blocker on the test's own thread, so the plain path uses worker threads.
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

// x, y: FP32 [-1]; one row per request below.
std::shared_ptr<ResolvedServable> Servable(QueueConfig queue, uint32_t max_batch_size = 0,
                                           uint32_t delay_us = 0) {
  auto servable = testing::TestServable("sched", {{"x", "FP32", {-1}}}, {{"y", "FP32", {-1}}});
  servable->manifest.queue = queue;
  servable->manifest.batching.max_batch_size = max_batch_size;
  servable->manifest.batching.max_queue_delay_us = delay_us;
  return servable;
}

// `age`: how long ago the request claims to have arrived; `*deadline`, when
// given, is set to the request's deadline (tests wait for it to pass).
std::future<InferOutcome> Submit(Model& model, float value, uint32_t priority = 0,
                                 std::chrono::nanoseconds timeout = 60s,
                                 std::chrono::nanoseconds age = 0s, Deadline* deadline = nullptr) {
  auto promise = std::make_shared<std::promise<InferOutcome>>();
  InferJob job;
  job.submitted -= age;
  job.inputs = {Tensor{"x", DataType::kFp32, {1}, std::string(4, '\0')}};
  std::memcpy(job.inputs[0].data.data(), &value, 4);
  job.priority = priority;
  job.deadline = std::chrono::steady_clock::now() + timeout;
  if (deadline != nullptr) *deadline = job.deadline;
  job.done = [promise](InferOutcome outcome) { promise->set_value(std::move(outcome)); };
  model.Submit(std::move(job));
  return promise->get_future();
}

InferOutcome Get(std::future<InferOutcome>& outcome) {
  if (outcome.wait_for(60s) != std::future_status::ready) {
    ADD_FAILURE() << "no answer";
    return {Internal("no answer"), {}, false};
  }
  return outcome.get();
}

bool TimedOut(const InferOutcome& outcome) {
  return outcome.status.code() == Code::kUnavailable && !outcome.retry_later &&
         outcome.status.message().find("timed out") != std::string::npos &&
         outcome.status.message().find("dropped before it ran") != std::string::npos;
}

class ModelSchedulingTest : public ::testing::Test {
 protected:
  // Loads the model and starts the blocker (value 0), which holds the only
  // instance until gate_.Open().
  // `blocker_age`: see Submit.
  void Start(std::shared_ptr<ResolvedServable> servable, size_t server_max_queue = 128,
             std::chrono::nanoseconds blocker_age = 0s) {
    Model::Options options;
    options.max_queue = server_max_queue;
    model_ = std::make_unique<Model>(std::move(servable), options);
    model_->Load(backend_, LoadContext{});
    ASSERT_EQ(model_->state(), ModelState::kReady);
    blocker_ = Submit(*model_, 0, 0, 60s, blocker_age);
    gate_.WaitForCalls(1);
  }
  void TearDown() override {
    gate_.Open();
    model_.reset();
  }

  Gate gate_;
  GatedBackend backend_{gate_, /*in_process=*/false};
  std::unique_ptr<Model> model_;
  std::future<InferOutcome> blocker_;
};

// Triton's rule: 0, or a level the servable lacks, is the default level.
TEST(PriorityLevel, LevelsTheServableLacksRunAtItsDefault) {
  QueueConfig none;
  EXPECT_EQ(*PriorityLevel(none, 0), 1u);
  EXPECT_EQ(*PriorityLevel(none, 1), 1u);
  EXPECT_EQ(*PriorityLevel(none, 7), 1u);
  QueueConfig three;
  three.priority_levels = 3;
  EXPECT_EQ(*PriorityLevel(three, 0), 3u);  // the lowest by default
  EXPECT_EQ(*PriorityLevel(three, 1), 1u);
  EXPECT_EQ(*PriorityLevel(three, 3), 3u);
  EXPECT_EQ(*PriorityLevel(three, 4), 3u);
  EXPECT_EQ(*PriorityLevel(three, int64_t{1} << 40), 3u);
  three.default_priority_level = 1;
  EXPECT_EQ(*PriorityLevel(three, 0), 1u);
  EXPECT_EQ(*PriorityLevel(three, 9), 1u);
  Status negative = PriorityLevel(three, -1).status();
  EXPECT_EQ(negative.code(), Code::kInvalidArgument);
  EXPECT_EQ(negative.message(), "parameter 'priority' must be a non-negative integer, got -1");
}

TEST_F(ModelSchedulingTest, PlainPathRunsHigherLevelsFirstAndFifoWithinALevel) {
  Start(Servable({.priority_levels = 3}));
  std::vector<std::future<InferOutcome>> outcomes;
  // (value, priority); 0 is the default level, the lowest (3).
  for (auto [value, priority] :
       std::vector<std::pair<float, uint32_t>>{{1, 3}, {2, 2}, {3, 3}, {4, 1}, {5, 2}, {6, 0}}) {
    outcomes.push_back(Submit(*model_, value, priority));
  }
  EXPECT_EQ(model_->QueueLengths(), (std::vector<size_t>{1, 2, 3}));
  gate_.Open();
  for (auto& outcome : outcomes) EXPECT_TRUE(Get(outcome).status.ok());
  EXPECT_EQ(gate_.Calls(), (std::vector<std::vector<float>>{{0}, {4}, {2}, {5}, {1}, {3}, {6}}));
}

// As in Triton: a level the servable lacks is its default level (here the
// lowest), so the request waits behind one of level 1 sent after it.
TEST_F(ModelSchedulingTest, OutOfRangePriorityWaitsAtTheDefaultLevel) {
  Start(Servable({.priority_levels = 2}));
  auto above = Submit(*model_, 1, 3);
  auto high = Submit(*model_, 2, 1);
  EXPECT_EQ(model_->QueueLengths(), (std::vector<size_t>{1, 1}));
  gate_.Open();
  EXPECT_TRUE(Get(above).status.ok());
  EXPECT_TRUE(Get(high).status.ok());
  EXPECT_EQ(gate_.Calls(), (std::vector<std::vector<float>>{{0}, {2}, {1}}));
}

TEST_F(ModelSchedulingTest, PlainPathRefusesExactlyTheRequestsBeyondTheBound) {
  // The manifest's max_size wins over the server's default (100).
  Start(Servable({.max_size = 3, .priority_levels = 2}), 100);
  std::vector<std::future<InferOutcome>> outcomes;
  for (int i = 1; i <= 7; ++i) outcomes.push_back(Submit(*model_, i, 1 + i % 2));
  int refused = 0, answered = 0;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(outcomes[i].wait_for(0s), std::future_status::timeout) << "queued " << i;
  }
  for (int i = 3; i < 7; ++i) {  // refused at once, before anything ran
    ASSERT_EQ(outcomes[i].wait_for(0s), std::future_status::ready) << "refused " << i;
  }
  gate_.Open();
  for (auto& future : outcomes) {
    InferOutcome outcome = Get(future);
    if (outcome.retry_later) {
      EXPECT_EQ(outcome.status.code(), Code::kUnavailable);
      EXPECT_NE(outcome.status.message().find("queue is full (3 requests waiting)"),
                std::string::npos)
          << outcome.status.message();
      ++refused;
    } else if (outcome.status.ok()) {
      ++answered;
    }
  }
  EXPECT_EQ(refused, 4);
  EXPECT_EQ(answered, 3);
  EXPECT_EQ(model_->metrics().rejected.load(), 4u);
  EXPECT_EQ(gate_.Calls().size(), 4u);  // the blocker and the three queued
}

TEST_F(ModelSchedulingTest, PlainPathDropsExpiredRequestsBeforeTheyRun) {
  Start(Servable({}));
  Deadline expiry;
  auto expiring = Submit(*model_, 1, 0, 1ms, 0s, &expiry);
  auto kept = Submit(*model_, 2);
  std::this_thread::sleep_until(expiry);  // the monotonic clock is past the first one's deadline
  gate_.Open();
  EXPECT_TRUE(TimedOut(Get(expiring)));
  EXPECT_TRUE(Get(kept).status.ok());
  EXPECT_EQ(gate_.Calls(), (std::vector<std::vector<float>>{{0}, {2}}));
  EXPECT_EQ(model_->metrics().expired.load(), 1u);
}

TEST_F(ModelSchedulingTest, ExpiredRequestsFreeTheirPlacesInAFullQueue) {
  Start(Servable({.max_size = 1}));
  Deadline expiry;
  auto expiring = Submit(*model_, 1, 0, 1ms, 0s, &expiry);
  std::this_thread::sleep_until(expiry);
  auto kept = Submit(*model_, 2);  // the queue holds one: the expired one makes room
  EXPECT_TRUE(TimedOut(Get(expiring)));
  gate_.Open();
  EXPECT_TRUE(Get(kept).status.ok());
  EXPECT_EQ(model_->metrics().rejected.load(), 0u);
  EXPECT_EQ(gate_.Calls(), (std::vector<std::vector<float>>{{0}, {2}}));
}

TEST(ModelScheduling, RequestThatArrivesExpiredNeverRunsEvenOnAnIdleInstance) {
  Gate gate;
  gate.Open();
  GatedBackend backend(gate, /*in_process=*/true);
  Model model(Servable({}), {});
  model.Load(backend, LoadContext{});
  auto late = Submit(model, 1, 0, -1ms);
  EXPECT_TRUE(TimedOut(Get(late)));
  auto fresh = Submit(model, 2);
  EXPECT_TRUE(Get(fresh).status.ok());
  EXPECT_EQ(gate.Calls(), (std::vector<std::vector<float>>{{2}}));
}

// ---- the batching path -------------------------------------------------------

TEST_F(ModelSchedulingTest, BatchesAreFilledFromTheHighestLevelFirst) {
  Start(Servable({.priority_levels = 2}, /*max_batch_size=*/2, /*delay_us=*/0));
  std::vector<std::future<InferOutcome>> outcomes;
  for (auto [value, priority] :
       std::vector<std::pair<float, uint32_t>>{{1, 2}, {2, 2}, {3, 1}, {4, 2}, {5, 1}}) {
    outcomes.push_back(Submit(*model_, value, priority));
  }
  gate_.Open();
  for (auto& outcome : outcomes) {
    InferOutcome result = Get(outcome);
    ASSERT_TRUE(result.status.ok()) << result.status.message();
  }
  EXPECT_EQ(gate_.Calls(), (std::vector<std::vector<float>>{{0}, {3, 5}, {1, 2}, {4}}));
  std::vector<BatchStats::Entry> batches = model_->metrics().batch_stats.Snapshot();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0].batch_size, 1u);
  EXPECT_EQ(batches[0].count, 2u);  // the blocker and {4}
  EXPECT_EQ(batches[1].batch_size, 2u);
  EXPECT_EQ(batches[1].count, 2u);
  EXPECT_EQ(model_->metrics().compute_input.count.load(), 4u);  // the requests of joined batches
}

// A batch cut to a preferred size gives its newest requests back to their
// levels: one that asked for a level the servable lacks goes back to the
// default level it waited at (it once went to the level it asked for, past
// the end of the queue's levels).
TEST_F(ModelSchedulingTest, ARequestCutFromABatchGoesBackToTheLevelItWaitedAt) {
  auto servable = Servable({.priority_levels = 2}, /*max_batch_size=*/4, /*delay_us=*/0);
  servable->manifest.batching.preferred_batch_sizes = {2};
  Start(servable);
  std::vector<std::future<InferOutcome>> outcomes;
  for (float value : {1, 2, 3}) outcomes.push_back(Submit(*model_, value, /*priority=*/7));
  EXPECT_EQ(model_->QueueLengths(), (std::vector<size_t>{0, 3}));
  gate_.Open();
  for (auto& outcome : outcomes) EXPECT_TRUE(Get(outcome).status.ok());
  EXPECT_EQ(gate_.Calls(), (std::vector<std::vector<float>>{{0}, {1, 2}, {3}}));
}

TEST_F(ModelSchedulingTest, TheDelayBoundRunsFromTheOldestRequestOfTheBatch) {
  // An hour's delay: the batch below must go at once because a request in
  // it (of the lower level) arrived an hour ago. (The blocker "arrived" an
  // hour ago too, so that its own batch goes at once.)
  Start(Servable({.priority_levels = 2}, /*max_batch_size=*/8, /*delay_us=*/3'600'000'000u), 128,
        1h);
  auto old = Submit(*model_, 6, 2, 60s, 1h);
  auto fresh = Submit(*model_, 7, 1);
  gate_.Open();
  EXPECT_TRUE(Get(fresh).status.ok());
  EXPECT_TRUE(Get(old).status.ok());
  EXPECT_EQ(gate_.Calls(), (std::vector<std::vector<float>>{{0}, {7, 6}}));
}

TEST_F(ModelSchedulingTest, BatchingPathRefusesExactlyTheRequestsBeyondTheBound) {
  Start(Servable({.max_size = 2}, /*max_batch_size=*/4, /*delay_us=*/0));
  std::vector<std::future<InferOutcome>> outcomes;
  for (int i = 1; i <= 6; ++i) outcomes.push_back(Submit(*model_, i));
  gate_.Open();
  int refused = 0, answered = 0;
  for (auto& future : outcomes) {
    InferOutcome outcome = Get(future);
    refused += outcome.retry_later ? 1 : 0;
    answered += outcome.status.ok() ? 1 : 0;
  }
  EXPECT_EQ(refused, 4);
  EXPECT_EQ(answered, 2);
  EXPECT_EQ(gate_.Calls(), (std::vector<std::vector<float>>{{0}, {1, 2}}));
}

TEST_F(ModelSchedulingTest, BatchingPathDropsExpiredRequestsBeforeTheyRun) {
  Start(Servable({}, /*max_batch_size=*/4, /*delay_us=*/0));
  auto kept = Submit(*model_, 1);
  Deadline expiry;
  auto expiring = Submit(*model_, 2, 0, 1ms, 0s, &expiry);
  auto also_kept = Submit(*model_, 3);
  std::this_thread::sleep_until(expiry);
  gate_.Open();
  EXPECT_TRUE(TimedOut(Get(expiring)));
  EXPECT_TRUE(Get(kept).status.ok());
  EXPECT_TRUE(Get(also_kept).status.ok());
  EXPECT_EQ(gate_.Calls(), (std::vector<std::vector<float>>{{0}, {1, 3}}));
  EXPECT_EQ(model_->metrics().expired.load(), 1u);
}

TEST(ModelScheduling, ARequestAwaitingItsBatchCountsTowardsTheBound) {
  Gate gate;
  gate.Open();
  GatedBackend backend(gate, /*in_process=*/true);
  // The first request waits (up to an hour) for its batch to fill: it is
  // waiting, not running, so with max_size 2 only one more may join it.
  Model model(Servable({.max_size = 2}, /*max_batch_size=*/8, /*delay_us=*/3'600'000'000u), {});
  model.Load(backend, LoadContext{});
  auto first = Submit(model, 1), second = Submit(model, 2);
  auto third = Submit(model, 3);
  InferOutcome refused = Get(third);
  EXPECT_TRUE(refused.retry_later) << refused.status.message();
  EXPECT_EQ(first.wait_for(0s), std::future_status::timeout);
  model.Unload();  // stops the wait: the batch runs, then the instances go
  EXPECT_TRUE(Get(first).status.ok());
  EXPECT_TRUE(Get(second).status.ok());
  EXPECT_EQ(gate.Calls(), (std::vector<std::vector<float>>{{1, 2}}));
}

TEST(ModelScheduling, RequestThatExpiresWhileItsBatchFormsNeverRuns) {
  Gate gate;
  gate.Open();
  GatedBackend backend(gate, /*in_process=*/true);
  // A batch would wait an hour to fill: the request's deadline comes first.
  Model model(Servable({}, /*max_batch_size=*/8, /*delay_us=*/3'600'000'000u), {});
  model.Load(backend, LoadContext{});
  auto expiring = Submit(model, 1, 0, 5ms);
  EXPECT_TRUE(TimedOut(Get(expiring)));
  EXPECT_TRUE(gate.Calls().empty());
  EXPECT_EQ(model.metrics().expired.load(), 1u);
}

}  // namespace
}  // namespace orrery
