// The pipeline runner over real Models with fake backends: the order of
// steps, parallel branches, failures naming the step, deleted steps,
// deadlines, timings and readiness.
#include "serving/pipeline.h"

#include <gtest/gtest.h>

#include <cstring>
#include <future>
#include <map>

#include "serving/testing/test_servable.h"

namespace orrery {
namespace {

using namespace std::chrono_literals;
using StepFn = std::function<Result<std::vector<Tensor>>(const std::vector<Tensor>&, Deadline)>;

Tensor Floats(const std::string& name, const std::vector<float>& values) {
  Tensor tensor{name, DataType::kFp32, {static_cast<int64_t>(values.size())}, {}};
  tensor.data.resize(values.size() * 4);
  std::memcpy(tensor.data.data(), values.data(), tensor.data.size());
  return tensor;
}

std::vector<float> Values(const Tensor& tensor) {
  std::vector<float> values(tensor.data.size() / 4);
  std::memcpy(values.data(), tensor.data.data(), tensor.data.size());
  return values;
}

// y = x + `add` (every input added up, then `add`).
StepFn Add(float add) {
  return [add](const std::vector<Tensor>& inputs, Deadline) -> Result<std::vector<Tensor>> {
    std::vector<float> sum = Values(inputs[0]);
    for (size_t i = 1; i < inputs.size(); ++i) {
      std::vector<float> more = Values(inputs[i]);
      for (size_t k = 0; k < sum.size(); ++k) sum[k] += more[k];
    }
    for (float& value : sum) value += add;
    return std::vector<Tensor>{Floats("y", sum)};
  };
}

class FnInstance final : public Instance {
 public:
  explicit FnInstance(StepFn fn) : fn_(std::move(fn)) {}
  Result<std::vector<Tensor>> Infer(const std::vector<Tensor>& inputs, Deadline deadline) override {
    return fn_(inputs, deadline);
  }
  uint64_t MemoryBytes() const override { return 1; }

 private:
  StepFn fn_;
};

class FnBackend final : public Backend {
 public:
  FnBackend(StepFn fn, Status load_error) : fn_(std::move(fn)), load_error_(load_error) {}
  bool InProcess(const LoadContext&) const override { return true; }
  Result<std::unique_ptr<Instance>> Load(const LoadContext&) override {
    if (!load_error_.ok()) return load_error_;
    return std::unique_ptr<Instance>(new FnInstance(fn_));
  }

 private:
  StepFn fn_;
  Status load_error_;
};

// The catalog of step models a test builds; Acquire fails for removed ones.
class FakeSteps {
 public:
  // lab/<name>:1 with inputs `inputs` (FP32 [-1] each) and output y.
  std::shared_ptr<Model> Add(const std::string& name, StepFn fn,
                             std::vector<std::string> inputs = {"x"},
                             Status load_error = Status::Ok()) {
    std::vector<TensorSpec> specs;
    for (const std::string& input : inputs) specs.push_back({input, "FP32", {-1}});
    auto servable = testing::TestServable(name, specs, {{"y", "FP32", {-1}}});
    auto model = std::make_shared<Model>(servable, Model::Options{});
    FnBackend backend(std::move(fn), load_error);
    model->Load(backend, LoadContext{});
    std::lock_guard lock(mutex_);
    models_[servable->key] = model;
    return model;
  }
  void Remove(const std::string& key) {
    std::lock_guard lock(mutex_);
    models_.erase(key);
  }

  class Resolver final : public StepResolver {
   public:
    explicit Resolver(FakeSteps& steps) : steps_(steps) {}
    Result<std::shared_ptr<Model>> Acquire(const QualifiedName& name, int64_t version) override {
      std::string key = name.ToString() + ":" + std::to_string(version);
      std::shared_ptr<Model> model = Find(key);
      if (model == nullptr)
        return NotFound("version " + std::to_string(version) + " of " + name.ToString() +
                        " not found");
      return model;
    }
    std::shared_ptr<Model> Find(const std::string& key) const override {
      std::lock_guard lock(steps_.mutex_);
      auto it = steps_.models_.find(key);
      return it == steps_.models_.end() ? nullptr : it->second;
    }

   private:
    FakeSteps& steps_;
  };

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Model>> models_;
};

// lab/p:1: input x FP32 [-1], output y FP32 [-1], with `steps` and `outputs`
// (YAML flow text) as its pipeline section.
std::shared_ptr<ResolvedServable> PipelineServable(const std::string& steps,
                                                   const std::string& outputs) {
  auto servable = testing::TestServable("p", {}, {});
  Result<Manifest> manifest = ParseManifest(
      "name: p\ntitle: P\ncreators: [T]\nyear: 2026\nbackend: pipeline\n"
      "signature:\n  inputs: [{name: x, datatype: FP32, shape: [-1]}]\n"
      "  outputs: [{name: y, datatype: FP32, shape: [-1]}]\n"
      "pipeline:\n  steps: " +
      steps + "\n  outputs: " + outputs + "\n");
  EXPECT_TRUE(manifest.ok()) << manifest.status().ToString();
  if (manifest.ok()) servable->manifest = std::move(*manifest);
  return servable;
}

const char* kChain =
    "[{name: first, servable: lab/plus1, version: 1, inputs: {x: $inputs.x}},"
    " {name: second, servable: lab/plus10, version: 1, inputs: {x: first.y}}]";

class PipelineTest : public ::testing::Test {
 protected:
  // The pipeline's own Model, serving through a Pipeline as the manager does.
  std::shared_ptr<Model> Serve(const std::string& steps, const std::string& outputs) {
    auto servable = PipelineServable(steps, outputs);
    auto model = std::make_shared<Model>(servable, Model::Options{});
    auto pipeline =
        Pipeline::Create(*servable, std::make_unique<FakeSteps::Resolver>(steps_), &pool_);
    EXPECT_TRUE(pipeline.ok()) << pipeline.status().ToString();
    model->LoadComposite(pipeline.ok() ? Result<std::unique_ptr<Composite>>(std::move(*pipeline))
                                       : Result<std::unique_ptr<Composite>>(pipeline.status()));
    return model;
  }

  InferOutcome Infer(Model& model, std::vector<float> x, bool timings = false,
                     Deadline deadline = std::chrono::steady_clock::now() + 10s) {
    auto promise = std::make_shared<std::promise<InferOutcome>>();
    auto outcome = promise->get_future();
    InferJob job;
    job.inputs = {Floats("x", x)};
    job.deadline = deadline;
    job.report_timings = timings;
    job.done = [promise](InferOutcome result) { promise->set_value(std::move(result)); };
    model.Submit(std::move(job));
    return outcome.get();
  }

  FakeSteps steps_;
  TaskPool pool_{2};
};

TEST_F(PipelineTest, StepsRunInOrderAndOutputsAreMapped) {
  steps_.Add("plus1", Add(1));
  auto plus10 = steps_.Add("plus10", Add(10));
  auto model = Serve(kChain, "{y: second.y}");
  EXPECT_TRUE(model->Ready());
  InferOutcome outcome = Infer(*model, {1, 2});
  ASSERT_TRUE(outcome.status.ok()) << outcome.status.ToString();
  ASSERT_EQ(outcome.outputs.size(), 1u);
  EXPECT_EQ(outcome.outputs[0].name, "y");
  EXPECT_EQ(Values(outcome.outputs[0]), (std::vector<float>{12, 13}));
  EXPECT_TRUE(outcome.parameters.is_null());  // no timings unless asked
  // Each step went through its own model; the pipeline counts its own requests.
  EXPECT_EQ(plus10->metrics().requests.load(), 1u);
  EXPECT_EQ(model->metrics().requests.load(), 1u);
  EXPECT_EQ(model->metrics().total.Count(), 1u);
  EXPECT_EQ(model->metrics().failures.load(), 0u);
  EXPECT_EQ(model->ReadyInstances(), 0);
  EXPECT_EQ(model->InFlight(), 0);
}

TEST_F(PipelineTest, IndependentBranchesRunAtTheSameTime) {
  // Both branches read only the input; each waits until the other runs. A
  // runner that ran them one after the other would see neither side meet.
  std::promise<void> left_started, right_started;
  std::shared_future<void> left = left_started.get_future().share();
  std::shared_future<void> right = right_started.get_future().share();
  std::atomic<int> met{0};
  auto meet = [&met](std::promise<void>& mine, std::shared_future<void> other, float add) {
    return [&met, &mine, other, add](const std::vector<Tensor>& inputs, Deadline deadline) {
      mine.set_value();
      if (other.wait_for(10s) == std::future_status::ready) ++met;
      return Add(add)(inputs, deadline);
    };
  };
  steps_.Add("left", meet(left_started, right, 1));
  steps_.Add("right", meet(right_started, left, 100));
  steps_.Add("join", Add(0), {"a", "b"});
  auto model = Serve(
      "[{name: l, servable: lab/left, version: 1, inputs: {x: $inputs.x}},"
      " {name: r, servable: lab/right, version: 1, inputs: {x: $inputs.x}},"
      " {name: j, servable: lab/join, version: 1, inputs: {a: l.y, b: r.y}}]",
      "{y: j.y}");
  InferOutcome outcome = Infer(*model, {1});
  ASSERT_TRUE(outcome.status.ok()) << outcome.status.ToString();
  EXPECT_EQ(Values(outcome.outputs[0]), (std::vector<float>{103}));  // (1+1) + (1+100)
  EXPECT_EQ(met.load(), 2);
}

TEST_F(PipelineTest, AFailingStepFailsTheRequestNamingItAndKeepsItsStatus) {
  steps_.Add("plus1", [](const std::vector<Tensor>&, Deadline) -> Result<std::vector<Tensor>> {
    return InvalidArgument("x must be positive");
  });
  auto plus10 = steps_.Add("plus10", Add(10));
  auto model = Serve(kChain, "{y: second.y}");
  InferOutcome outcome = Infer(*model, {1});
  EXPECT_EQ(outcome.status.code(), Code::kInvalidArgument);
  EXPECT_EQ(outcome.status.message().rfind("step 'first' (lab/plus1:1): ", 0), 0u)
      << outcome.status.message();
  EXPECT_NE(outcome.status.message().find("x must be positive"), std::string::npos);
  EXPECT_EQ(plus10->metrics().requests.load(), 0u);  // nothing after the failure
  EXPECT_EQ(model->metrics().failures.load(), 1u);

  steps_.Add("plus1", [](const std::vector<Tensor>&, Deadline) -> Result<std::vector<Tensor>> {
    return Unavailable("worker crashed (signal 11)");
  });
  outcome = Infer(*model, {1});
  EXPECT_EQ(outcome.status.code(), Code::kUnavailable);  // a 5xx stays a 5xx
  EXPECT_NE(outcome.status.message().find("step 'first'"), std::string::npos);
}

TEST_F(PipelineTest, AFailureIsAnsweredOnlyOnceTheRunningStepsFinish) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> slow_finished{false};
  steps_.Add("slow", [&, released](const std::vector<Tensor>& inputs, Deadline deadline) {
    released.wait();
    slow_finished = true;
    return Add(1)(inputs, deadline);
  });
  std::promise<void> bad_ran;
  steps_.Add("bad", [&](const std::vector<Tensor>&, Deadline) -> Result<std::vector<Tensor>> {
    bad_ran.set_value();
    return InvalidArgument("bad row");
  });
  steps_.Add("join", Add(0), {"a", "b"});
  auto model = Serve(
      "[{name: s, servable: lab/slow, version: 1, inputs: {x: $inputs.x}},"
      " {name: b, servable: lab/bad, version: 1, inputs: {x: $inputs.x}},"
      " {name: j, servable: lab/join, version: 1, inputs: {a: s.y, b: b.y}}]",
      "{y: j.y}");
  auto promise = std::make_shared<std::promise<InferOutcome>>();
  auto answer = promise->get_future();
  InferJob job;
  job.inputs = {Floats("x", {1})};
  job.deadline = std::chrono::steady_clock::now() + 10s;
  std::atomic<bool> slow_finished_at_answer{false};
  job.done = [promise, &slow_finished, &slow_finished_at_answer](InferOutcome result) {
    slow_finished_at_answer = slow_finished.load();
    promise->set_value(std::move(result));
  };
  std::thread submitter([&] { model->Submit(std::move(job)); });
  bad_ran.get_future().wait();  // the failure is in while the slow step still runs
  release.set_value();
  InferOutcome outcome = answer.get();
  submitter.join();
  EXPECT_TRUE(slow_finished_at_answer.load());
  EXPECT_EQ(outcome.status.code(), Code::kInvalidArgument);
  EXPECT_NE(outcome.status.message().find("step 'b' (lab/bad:1): "), std::string::npos);
}

TEST_F(PipelineTest, AStepDeletedAfterLoadFailsRequestsNamingIt) {
  steps_.Add("plus1", Add(1));
  steps_.Add("plus10", Add(10));
  auto model = Serve(kChain, "{y: second.y}");
  steps_.Remove("lab/plus10:1");
  InferOutcome outcome = Infer(*model, {1});
  EXPECT_EQ(outcome.status.code(), Code::kNotFound);
  EXPECT_EQ(outcome.status.message(),
            "step 'second' (lab/plus10:1): version 1 of lab/plus10 not found");
}

TEST_F(PipelineTest, EveryStepGetsTheRequestsDeadline) {
  std::vector<Deadline> seen(2);
  auto record = [&seen](size_t i, float add) {
    return [&seen, i, add](const std::vector<Tensor>& inputs, Deadline deadline) {
      seen[i] = deadline;
      return Add(add)(inputs, deadline);
    };
  };
  steps_.Add("plus1", record(0, 1));
  steps_.Add("plus10", record(1, 10));
  auto model = Serve(kChain, "{y: second.y}");
  Deadline deadline = std::chrono::steady_clock::now() + 7s;
  ASSERT_TRUE(Infer(*model, {1}, false, deadline).status.ok());
  EXPECT_EQ(seen[0], deadline);
  EXPECT_EQ(seen[1], deadline);
  // A request whose time ran out starts no step.
  InferOutcome late = Infer(*model, {1}, false, std::chrono::steady_clock::now() - 1ms);
  EXPECT_EQ(late.status.code(), Code::kUnavailable);
  EXPECT_NE(late.status.message().find("step 'first' (lab/plus1:1): the request's time ran out"),
            std::string::npos)
      << late.status.message();
}

TEST_F(PipelineTest, TimingsAreReportedPerStepWhenAsked) {
  steps_.Add("plus1", Add(1));
  steps_.Add("plus10", Add(10));
  auto model = Serve(kChain, "{y: second.y}");
  InferOutcome outcome = Infer(*model, {1}, /*timings=*/true);
  ASSERT_TRUE(outcome.status.ok()) << outcome.status.ToString();
  const nlohmann::json& p = outcome.parameters;
  for (const char* step : {"first", "second"}) {
    for (const char* field : {"start_us", "duration_us", "queue_us", "compute_us"}) {
      std::string key = std::string("pipeline.") + step + "." + field;
      ASSERT_TRUE(p.contains(key)) << key << " in " << p.dump();
      EXPECT_TRUE(p[key].is_number_integer()) << key;
      EXPECT_GE(p[key].get<int64_t>(), 0) << key;
    }
  }
  // The second step starts after the first one ended.
  EXPECT_GE(
      p["pipeline.second.start_us"].get<int64_t>(),
      p["pipeline.first.start_us"].get<int64_t>() + p["pipeline.first.duration_us"].get<int64_t>());
  EXPECT_EQ(p.size(), 8u);
}

TEST_F(PipelineTest, ReadinessFollowsTheStepsModels) {
  steps_.Add("plus1", Add(1));
  steps_.Add("plus10", Add(10), {"x"}, Unprocessable("cannot load model.pt: bad magic"));
  auto model = Serve(kChain, "{y: second.y}");
  EXPECT_EQ(model->state(), ModelState::kReady);
  EXPECT_FALSE(model->Ready());
  EXPECT_EQ(model->reason(), "step 'second' (lab/plus10:1): cannot load model.pt: bad magic");
}

TEST_F(PipelineTest, CreateNamesTheStepItCannotServe) {
  steps_.Add("plus1", Add(1));
  auto missing = Pipeline::Create(*PipelineServable(kChain, "{y: second.y}"),
                                  std::make_unique<FakeSteps::Resolver>(steps_), &pool_);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_EQ(missing.status().message(),
            "step 'second' (lab/plus10:1): version 1 of lab/plus10 not found");
  // A step output the step's signature lacks.
  steps_.Add("plus10", Add(10));
  auto wrong = Pipeline::Create(*PipelineServable(kChain, "{y: second.z}"),
                                std::make_unique<FakeSteps::Resolver>(steps_), &pool_);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("nothing provides 'second.z'"), std::string::npos);
  // The pipeline's model fails to load with the reason.
  Model model(PipelineServable(kChain, "{y: second.z}"), Model::Options{});
  model.LoadComposite(wrong.status());
  EXPECT_EQ(model.state(), ModelState::kFailed);
  EXPECT_NE(model.reason().find("second.z"), std::string::npos);
}

}  // namespace
}  // namespace orrery
