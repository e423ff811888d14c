// Dynamic batching in Model, with a fake in-process backend that records
// the rows of every call and echoes its inputs (or breaks the row contract).
#include <gtest/gtest.h>

#include <cstring>
#include <future>
#include <mutex>

#include "serving/model.h"
#include "serving/testing/gate.h"
#include "serving/testing/test_servable.h"

namespace orrery {
namespace {

using namespace std::chrono_literals;

struct Calls {
  testing::Gate gate;         // every call passes it (open unless a test closes it)
  std::mutex mutex;
  std::vector<int64_t> rows;  // per backend call
  bool drop_a_row = false;    // answer one row short
};

class EchoInstance final : public Instance {
 public:
  explicit EchoInstance(Calls& calls) : calls_(calls) {}
  Result<std::vector<Tensor>> Infer(const std::vector<Tensor>& inputs, Deadline) override {
    calls_.gate.Pass();
    std::vector<Tensor> outputs = inputs;
    outputs[0].name = "y";
    {
      std::lock_guard lock(calls_.mutex);
      calls_.rows.push_back(inputs[0].shape[0]);
      if (calls_.drop_a_row) {
        outputs[0].shape[0] -= 1;
        outputs[0].data.resize(outputs[0].data.size() - 4 * static_cast<size_t>(
                                                                outputs[0].shape[1]));
      }
    }
    return outputs;
  }
  uint64_t MemoryBytes() const override { return 1; }

 private:
  Calls& calls_;
};

class EchoBackend final : public Backend {
 public:
  explicit EchoBackend(Calls& calls) : calls_(calls) {}
  bool InProcess(const LoadContext&) const override { return true; }
  Result<std::unique_ptr<Instance>> Load(const LoadContext&) override {
    return std::unique_ptr<Instance>(new EchoInstance(calls_));
  }

 private:
  Calls& calls_;
};

std::shared_ptr<const ResolvedServable> Batched(uint32_t max_rows, uint32_t delay_us) {
  auto servable =
      testing::TestServable("batched", {{"x", "FP32", {-1, -1}}}, {{"y", "FP32", {-1, -1}}});
  servable->manifest.batching.max_batch_size = max_rows;
  servable->manifest.batching.max_queue_delay_us = delay_us;
  return servable;
}

// A request of `rows` x `columns` floats, element i = base + i.
std::vector<Tensor> Rows(int64_t rows, int64_t columns, float base) {
  Tensor x{"x", DataType::kFp32, {rows, columns}, std::string(rows * columns * 4, '\0')};
  for (int64_t i = 0; i < rows * columns; ++i) {
    float value = base + static_cast<float>(i);
    std::memcpy(x.data.data() + i * 4, &value, 4);
  }
  return {x};
}

std::future<InferOutcome> Submit(Model& model, std::vector<Tensor> inputs) {
  auto promise = std::make_shared<std::promise<InferOutcome>>();
  InferJob job;
  job.inputs = std::move(inputs);
  job.deadline = std::chrono::steady_clock::now() + 30s;
  job.done = [promise](InferOutcome outcome) { promise->set_value(std::move(outcome)); };
  model.Submit(std::move(job));
  return promise->get_future();
}

class ModelBatchingTest : public ::testing::Test {
 protected:
  void Load(uint32_t max_rows, uint32_t delay_us) {
    model_ = std::make_unique<Model>(Batched(max_rows, delay_us), Model::Options{});
    model_->Load(backend_, LoadContext{});
    ASSERT_EQ(model_->state(), ModelState::kReady);
  }
  Calls calls_;
  EchoBackend backend_{calls_};
  std::unique_ptr<Model> model_;
};

TEST_F(ModelBatchingTest, QueuedRequestsShareOneCallAndEachGetsItsOwnRows) {
  Load(8, 2'000'000);  // long delay: the batch goes when it is full
  std::vector<std::future<InferOutcome>> outcomes;
  std::vector<std::vector<Tensor>> sent;
  for (int i = 0; i < 4; ++i) {
    sent.push_back(Rows(2, 3, 100.0f * i));
    outcomes.push_back(Submit(*model_, sent.back()));
  }
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(outcomes[i].wait_for(10s), std::future_status::ready);
    InferOutcome result = outcomes[i].get();
    ASSERT_TRUE(result.status.ok()) << result.status.message();
    EXPECT_EQ(result.outputs[0].shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(result.outputs[0].data, sent[i][0].data) << "request " << i;
  }
  std::lock_guard lock(calls_.mutex);
  EXPECT_EQ(calls_.rows, (std::vector<int64_t>{8}));
  EXPECT_EQ(model_->metrics().batch_sizes.Count(), 1u);
}

TEST_F(ModelBatchingTest, LoneRequestRunsAfterTheDelay) {
  Load(8, 20'000);
  auto outcome = Submit(*model_, Rows(1, 2, 0));
  ASSERT_EQ(outcome.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(outcome.get().status.ok());
  std::lock_guard lock(calls_.mutex);
  EXPECT_EQ(calls_.rows, (std::vector<int64_t>{1}));
}

TEST_F(ModelBatchingTest, RequestsWithOtherTrailingDimensionsAreNotMixed) {
  Load(8, 0);
  calls_.gate.Close();
  auto blocker = Submit(*model_, Rows(1, 2, 99));
  calls_.gate.AwaitWaiting(1);  // the only instance is busy: the next three queue
  auto a = Submit(*model_, Rows(1, 2, 0));
  auto b = Submit(*model_, Rows(1, 3, 0));
  auto c = Submit(*model_, Rows(1, 2, 10));
  calls_.gate.Open();
  for (auto* f : {&blocker, &a, &b, &c}) {
    ASSERT_EQ(f->wait_for(10s), std::future_status::ready);
    EXPECT_TRUE(f->get().status.ok());
  }
  std::lock_guard lock(calls_.mutex);
  EXPECT_EQ(calls_.rows, (std::vector<int64_t>{1, 2, 1}));  // the blocker, a+c, then b
}

TEST_F(ModelBatchingTest, BatchesAreCutAtTheLargestPreferredSizeThatFits) {
  model_ = std::make_unique<Model>(
      [] {
        auto servable = std::const_pointer_cast<ResolvedServable>(Batched(8, 0));
        servable->manifest.batching.preferred_batch_sizes = {2, 4};
        return std::shared_ptr<const ResolvedServable>(servable);
      }(),
      Model::Options{});
  model_->Load(backend_, LoadContext{});
  calls_.gate.Close();
  std::vector<std::future<InferOutcome>> outcomes;
  outcomes.push_back(Submit(*model_, Rows(1, 1, 99)));
  calls_.gate.AwaitWaiting(1);  // six rows queue behind it
  for (int i = 0; i < 6; ++i) outcomes.push_back(Submit(*model_, Rows(1, 1, i)));
  calls_.gate.Open();
  for (auto& outcome : outcomes) {
    ASSERT_EQ(outcome.wait_for(10s), std::future_status::ready);
    EXPECT_TRUE(outcome.get().status.ok());
  }
  std::lock_guard lock(calls_.mutex);
  EXPECT_EQ(calls_.rows, (std::vector<int64_t>{1, 4, 2}));
}

TEST_F(ModelBatchingTest, BadBatchDimensionsAreRefusedAtOnce) {
  Load(4, 1'000);
  InferOutcome over = Submit(*model_, Rows(5, 1, 0)).get();
  EXPECT_EQ(over.status.code(), Code::kInvalidArgument);
  EXPECT_NE(over.status.message().find("max_batch_size 4"), std::string::npos)
      << over.status.message();
  std::vector<Tensor> disagree = Rows(2, 1, 0);
  Tensor second = Rows(3, 1, 0)[0];
  second.name = "z";
  disagree.push_back(second);
  InferOutcome mixed = Submit(*model_, disagree).get();
  EXPECT_EQ(mixed.status.code(), Code::kInvalidArgument);
  EXPECT_NE(mixed.status.message().find("disagree on the batch dimension"), std::string::npos)
      << mixed.status.message();
  std::lock_guard lock(calls_.mutex);
  EXPECT_TRUE(calls_.rows.empty());
}

TEST_F(ModelBatchingTest, BackendThatBreaksTheRowContractFailsTheWholeBatch) {
  Load(4, 2'000'000);
  calls_.drop_a_row = true;
  std::vector<std::future<InferOutcome>> outcomes;
  for (int i = 0; i < 4; ++i) outcomes.push_back(Submit(*model_, Rows(1, 2, i)));
  for (auto& outcome : outcomes) {
    ASSERT_EQ(outcome.wait_for(10s), std::future_status::ready);
    InferOutcome result = outcome.get();
    EXPECT_EQ(result.status.code(), Code::kInternal) << result.status.message();
  }
}

}  // namespace
}  // namespace orrery
