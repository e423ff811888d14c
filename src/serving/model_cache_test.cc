// Model with the response cache: hits never reach an instance, misses store
// successful answers only, and servables without `cache: true` never
// consult it.
#include <gtest/gtest.h>

#include <cstring>
#include <future>

#include "serving/model.h"
#include "serving/response_cache.h"
#include "serving/testing/test_servable.h"

namespace orrery {
namespace {

using namespace std::chrono_literals;

// Answers y = x; fails for a negative x; answers a tensor the signature does
// not have for x == 99.
class CountingInstance final : public Instance {
 public:
  explicit CountingInstance(std::atomic<int>& calls) : calls_(calls) {}
  Result<std::vector<Tensor>> Infer(const std::vector<Tensor>& inputs, Deadline) override {
    ++calls_;
    float x = 0;
    std::memcpy(&x, inputs[0].data.data(), 4);
    if (x < 0) return Unprocessable("negative input");
    std::vector<Tensor> outputs = inputs;
    outputs[0].name = x == 99 ? "wrong" : "y";
    return outputs;
  }
  uint64_t MemoryBytes() const override { return 100; }

 private:
  std::atomic<int>& calls_;
};

class CountingBackend final : public Backend {
 public:
  bool InProcess(const LoadContext&) const override { return true; }
  Result<std::unique_ptr<Instance>> Load(const LoadContext&) override {
    return std::unique_ptr<Instance>(new CountingInstance(calls));
  }
  std::atomic<int> calls{0};
};

std::shared_ptr<const ResolvedServable> Servable(bool cache, int version = 1) {
  auto servable = testing::TestServable("memo", {{"x", "FP32", {-1}}}, {{"y", "FP32", {-1}}});
  servable->manifest.cache = cache;
  servable->info.version = version;
  servable->info.digest = "digest-of-v" + std::to_string(version);
  servable->key = "lab/memo:" + std::to_string(version);
  return servable;
}

Tensor Input(float value) {
  Tensor tensor{"x", DataType::kFp32, {1}, std::string(4, '\0')};
  std::memcpy(tensor.data.data(), &value, 4);
  return tensor;
}

InferOutcome Infer(Model& model, float value) {
  std::promise<InferOutcome> promise;
  InferJob job;
  job.inputs = {Input(value)};
  job.deadline = std::chrono::steady_clock::now() + 5s;
  job.done = [&promise](InferOutcome outcome) { promise.set_value(std::move(outcome)); };
  model.Submit(std::move(job));
  return promise.get_future().get();
}

// A loaded model of version `version` whose manifest says `cache: memoize`.
struct Fixture {
  explicit Fixture(bool memoize, int version = 1, std::shared_ptr<ResponseCache> shared = nullptr)
      : cache(shared ? shared : std::make_shared<ResponseCache>(ResponseCache::Options{})),
        model(Servable(memoize, version), Options(cache)) {
    model.Load(backend, LoadContext{});
  }
  static Model::Options Options(std::shared_ptr<ResponseCache> cache) {
    Model::Options options;
    options.cache = std::move(cache);
    return options;
  }
  CountingBackend backend;
  std::shared_ptr<ResponseCache> cache;
  Model model;
};

TEST(ModelCacheTest, HitIsAnsweredWithoutTheInstance) {
  Fixture f(/*cache=*/true);
  InferOutcome first = Infer(f.model, 2.5f);
  ASSERT_TRUE(first.status.ok()) << first.status.message();
  EXPECT_FALSE(first.cache_hit);
  EXPECT_EQ(f.backend.calls.load(), 1);
  InferOutcome second = Infer(f.model, 2.5f);
  ASSERT_TRUE(second.status.ok()) << second.status.message();
  EXPECT_TRUE(second.cache_hit);
  EXPECT_EQ(f.backend.calls.load(), 1);  // the instance did not run
  ASSERT_EQ(second.outputs.size(), 1u);
  EXPECT_EQ(second.outputs[0].name, first.outputs[0].name);
  EXPECT_EQ(second.outputs[0].data, first.outputs[0].data);
  EXPECT_FALSE(Infer(f.model, 3.5f).cache_hit);  // another input: a miss
  EXPECT_EQ(f.backend.calls.load(), 2);
  const ServingMetrics& m = f.model.metrics();
  EXPECT_EQ(m.requests.load(), 3u);
  EXPECT_EQ(m.cache_hits.load(), 1u);
  EXPECT_EQ(m.cache_misses.load(), 2u);
  EXPECT_EQ(m.total.Count(), 3u);    // a hit is a request with a latency ...
  EXPECT_EQ(m.compute.Count(), 2u);  // ... but no compute
  EXPECT_EQ(m.queue.Count(), 2u);    // ... and no queue time
  EXPECT_EQ(f.cache->stats().entries, 2u);
}

TEST(ModelCacheTest, ErrorsAndAnswersOffTheSignatureAreNotStored) {
  Fixture f(/*cache=*/true);
  EXPECT_EQ(Infer(f.model, -1).status.code(), Code::kUnprocessable);
  InferOutcome again = Infer(f.model, -1);
  EXPECT_EQ(again.status.code(), Code::kUnprocessable);
  EXPECT_FALSE(again.cache_hit);
  EXPECT_TRUE(Infer(f.model, 99).status.ok());  // the route turns this into a 500
  EXPECT_FALSE(Infer(f.model, 99).cache_hit);
  EXPECT_EQ(f.backend.calls.load(), 4);
  EXPECT_EQ(f.cache->stats().entries, 0u);
  EXPECT_EQ(f.model.metrics().cache_misses.load(), 4u);
}

TEST(ModelCacheTest, ServableWithoutCacheNeverConsultsIt) {
  Fixture f(/*cache=*/false);
  // The answer is there under exactly this request's key; it must not be used.
  std::vector<Tensor> stored = {Input(123)};
  stored[0].name = "y";
  ASSERT_TRUE(f.cache->Insert(
      ResponseCache::MakeKey(f.model.key(), f.model.servable().info.digest, {Input(1)}), stored));
  InferOutcome outcome = Infer(f.model, 1);
  ASSERT_TRUE(outcome.status.ok());
  EXPECT_FALSE(outcome.cache_hit);
  EXPECT_EQ(outcome.outputs[0].data, Input(1).data);
  EXPECT_EQ(f.backend.calls.load(), 1);
  EXPECT_EQ(f.model.metrics().cache_hits.load() + f.model.metrics().cache_misses.load(), 0u);
  EXPECT_EQ(f.cache->stats().entries, 1u);  // nothing stored either
}

TEST(ModelCacheTest, DisabledCacheIsNeverConsulted) {
  auto disabled = std::make_shared<ResponseCache>(ResponseCache::Options{0, {}});
  Fixture f(/*cache=*/true, 1, disabled);
  EXPECT_FALSE(Infer(f.model, 1).cache_hit);
  EXPECT_FALSE(Infer(f.model, 1).cache_hit);
  EXPECT_EQ(f.backend.calls.load(), 2);
  EXPECT_EQ(f.model.metrics().cache_misses.load(), 0u);
}

TEST(ModelCacheTest, VersionsSharingTheCacheDoNotSeeEachOthersEntries) {
  auto shared = std::make_shared<ResponseCache>(ResponseCache::Options{});
  Fixture v1(/*cache=*/true, 1, shared);
  Fixture v2(/*cache=*/true, 2, shared);
  EXPECT_FALSE(Infer(v1.model, 5).cache_hit);
  EXPECT_FALSE(Infer(v2.model, 5).cache_hit);
  EXPECT_TRUE(Infer(v1.model, 5).cache_hit);
  EXPECT_TRUE(Infer(v2.model, 5).cache_hit);
  EXPECT_EQ(v1.backend.calls.load(), 1);
  EXPECT_EQ(v2.backend.calls.load(), 1);
  EXPECT_EQ(shared->stats().entries, 2u);
}

TEST(ModelCacheTest, HitNeedsNoLoadedInstance) {
  auto shared = std::make_shared<ResponseCache>(ResponseCache::Options{});
  {
    Fixture loaded(/*cache=*/true, 1, shared);
    ASSERT_FALSE(Infer(loaded.model, 7).cache_hit);
  }  // unloaded; the entry stays, keyed by version and digest
  Model reloading(Servable(true), Fixture::Options(shared));  // not loaded yet
  InferOutcome outcome = Infer(reloading, 7);
  ASSERT_TRUE(outcome.status.ok());
  EXPECT_TRUE(outcome.cache_hit);
  EXPECT_EQ(reloading.state(), ModelState::kLoading);
}

}  // namespace
}  // namespace orrery
