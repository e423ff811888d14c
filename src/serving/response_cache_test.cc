// ResponseCache: keys, hits and misses, LRU eviction by bytes, the 1/8
// rule, collisions, and concurrent use.
#include "serving/response_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>

namespace orrery {
namespace {

Tensor Floats(const std::string& name, std::vector<int64_t> shape, std::vector<float> values) {
  Tensor tensor{name, DataType::kFp32, std::move(shape), std::string(values.size() * 4, '\0')};
  std::memcpy(tensor.data.data(), values.data(), tensor.data.size());
  return tensor;
}

std::string Key(float x, const std::string& version = "lab/m:1") {
  return ResponseCache::MakeKey(version, "digest1", {Floats("x", {1}, {x})});
}

// One output whose value is `x`: what the fake servable answers for Key(x).
std::vector<Tensor> Answer(float x) {
  return {Floats("y", {1}, {x})};
}

// What Insert counts for Key(x) -> Answer(x) (every such entry is this size).
uint64_t EntryBytes() {
  return ResponseCache::kEntryOverhead + Key(0).size() + ResponseCache::kTensorOverhead +
         1 /* "y" */ + 8 /* shape */ + 4 /* data */;
}

float Value(const std::vector<Tensor>& outputs) {
  float value = 0;
  std::memcpy(&value, outputs.at(0).data.data(), 4);
  return value;
}

ResponseCache::Options Capacity(uint64_t bytes) {
  ResponseCache::Options options;
  options.capacity_bytes = bytes;
  return options;
}

TEST(ResponseCacheTest, MissThenHitWithEqualOutputs) {
  ResponseCache cache(Capacity(1 << 20));
  EXPECT_FALSE(cache.Lookup(Key(1)).has_value());
  EXPECT_TRUE(cache.Insert(Key(1), Answer(1)));
  std::optional<std::vector<Tensor>> hit = cache.Lookup(Key(1));
  ASSERT_TRUE(hit.has_value());
  ASSERT_EQ(hit->size(), 1u);
  EXPECT_EQ((*hit)[0].name, "y");
  EXPECT_EQ((*hit)[0].shape, std::vector<int64_t>{1});
  EXPECT_EQ(Value(*hit), 1.0f);
  EXPECT_FALSE(cache.Lookup(Key(2)).has_value());
  ResponseCache::Stats stats = cache.stats();
  EXPECT_EQ(stats.entries, 1u);
  EXPECT_EQ(stats.bytes, EntryBytes());
  EXPECT_EQ(stats.capacity_bytes, 1u << 20);
}

TEST(ResponseCacheTest, KeyHoldsVersionDigestNameDatatypeShapeAndBytes) {
  Tensor x = Floats("x", {2, 2}, {1, 2, 3, 4});
  std::string base = ResponseCache::MakeKey("lab/m:1", "d1", {x});
  EXPECT_EQ(base, ResponseCache::MakeKey("lab/m:1", "d1", {x}));  // deterministic
  EXPECT_NE(base, ResponseCache::MakeKey("lab/m:2", "d1", {x}));
  EXPECT_NE(base, ResponseCache::MakeKey("lab/m:1", "d2", {x}));
  // Length prefixes: moving a character across a field boundary changes the key.
  EXPECT_NE(ResponseCache::MakeKey("lab/m:1", "d1", {x}),
            ResponseCache::MakeKey("lab/m:1d", "1", {x}));
  Tensor renamed = x;
  renamed.name = "z";
  EXPECT_NE(base, ResponseCache::MakeKey("lab/m:1", "d1", {renamed}));
  Tensor changed = Floats("x", {2, 2}, {1, 2, 3, 5});
  EXPECT_NE(base, ResponseCache::MakeKey("lab/m:1", "d1", {changed}));
  Tensor a{"s", DataType::kBytes, {2}, BytesElements({"ab", "c"})};
  Tensor b{"s", DataType::kBytes, {2}, BytesElements({"a", "bc"})};
  EXPECT_NE(ResponseCache::MakeKey("v", "d", {a}), ResponseCache::MakeKey("v", "d", {b}));
}

TEST(ResponseCacheTest, SameBytesWithAnotherShapeMisses) {
  ResponseCache cache(Capacity(1 << 20));
  Tensor square = Floats("x", {2, 2}, {1, 2, 3, 4});
  Tensor flat = Floats("x", {4}, {1, 2, 3, 4});
  ASSERT_EQ(square.data, flat.data);
  ASSERT_TRUE(cache.Insert(ResponseCache::MakeKey("lab/m:1", "d", {square}), Answer(1)));
  EXPECT_FALSE(cache.Lookup(ResponseCache::MakeKey("lab/m:1", "d", {flat})).has_value());
  EXPECT_TRUE(cache.Lookup(ResponseCache::MakeKey("lab/m:1", "d", {square})).has_value());
}

TEST(ResponseCacheTest, SameBytesWithAnotherDatatypeMisses) {
  ResponseCache cache(Capacity(1 << 20));
  Tensor floats = Floats("x", {1}, {1.5f});
  Tensor ints = floats;
  ints.datatype = DataType::kInt32;
  ASSERT_TRUE(cache.Insert(ResponseCache::MakeKey("lab/m:1", "d", {floats}), Answer(1)));
  EXPECT_FALSE(cache.Lookup(ResponseCache::MakeKey("lab/m:1", "d", {ints})).has_value());
}

TEST(ResponseCacheTest, AnotherVersionOrDigestMisses) {
  ResponseCache cache(Capacity(1 << 20));
  std::vector<Tensor> inputs = {Floats("x", {1}, {7})};
  ASSERT_TRUE(cache.Insert(ResponseCache::MakeKey("lab/m:1", "d1", inputs), Answer(1)));
  EXPECT_FALSE(cache.Lookup(ResponseCache::MakeKey("lab/m:2", "d1", inputs)).has_value());
  EXPECT_FALSE(cache.Lookup(ResponseCache::MakeKey("lab/m:1", "d2", inputs)).has_value());
  EXPECT_FALSE(cache.Lookup(ResponseCache::MakeKey("other/m:1", "d1", inputs)).has_value());
}

TEST(ResponseCacheTest, ErasesTheEntriesOfChosenVersionsOnly) {
  ResponseCache cache({});
  ASSERT_TRUE(cache.Insert(Key(1, "lab/m:1"), Answer(1)));
  ASSERT_TRUE(cache.Insert(Key(2, "lab/m:2"), Answer(2)));
  ASSERT_TRUE(cache.Insert(Key(3, "lab/mm:1"), Answer(3)));
  EXPECT_EQ(ResponseCache::VersionKeyOf(Key(1, "lab/m:1")), "lab/m:1");
  size_t erased = cache.EraseVersions(
      [](std::string_view version) { return version.rfind("lab/m:", 0) == 0; });
  EXPECT_EQ(erased, 2u);
  EXPECT_FALSE(cache.Lookup(Key(1, "lab/m:1")));
  EXPECT_FALSE(cache.Lookup(Key(2, "lab/m:2")));
  ASSERT_TRUE(cache.Lookup(Key(3, "lab/mm:1")));
  EXPECT_EQ(cache.stats().entries, 1u);
  EXPECT_EQ(cache.stats().bytes, EntryBytes() + 1);  // "lab/mm:1" is one byte longer
}

TEST(ResponseCacheTest, EvictsLeastRecentlyUsedByBytes) {
  const uint64_t entry = EntryBytes();
  ResponseCache cache(Capacity(16 * entry));  // exactly 16 entries
  for (int i = 0; i < 16; ++i) ASSERT_TRUE(cache.Insert(Key(i), Answer(i)));
  EXPECT_EQ(cache.stats().bytes, 16 * entry);
  EXPECT_EQ(cache.stats().evictions, 0u);
  ASSERT_TRUE(cache.Lookup(Key(0)).has_value());  // 0 is now the most recent; 1 the oldest
  ASSERT_TRUE(cache.Insert(Key(16), Answer(16)));
  EXPECT_FALSE(cache.Lookup(Key(1)).has_value());
  for (int i = 0; i <= 16; ++i) {
    if (i != 1) {
      EXPECT_TRUE(cache.Lookup(Key(i)).has_value()) << i;
    }
  }
  ResponseCache::Stats stats = cache.stats();
  EXPECT_EQ(stats.entries, 16u);
  EXPECT_EQ(stats.bytes, 16 * entry);
  EXPECT_EQ(stats.evictions, 1u);
  // Recency now (oldest first): 0 2 3 .. 16. An entry of three outputs is
  // more than one entry's bytes and less than two: it evicts 0 and 2.
  std::vector<Tensor> big = {Floats("y", {1}, {1}), Floats("y", {1}, {2}), Floats("y", {1}, {3})};
  ResponseCache alone(Capacity(16 * entry));
  ASSERT_TRUE(alone.Insert(Key(17), big));
  const uint64_t big_bytes = alone.stats().bytes;
  ASSERT_TRUE(cache.Insert(Key(17), big));
  EXPECT_FALSE(cache.Lookup(Key(0)).has_value());
  EXPECT_FALSE(cache.Lookup(Key(2)).has_value());
  EXPECT_TRUE(cache.Lookup(Key(3)).has_value());
  EXPECT_EQ(cache.Lookup(Key(17))->size(), 3u);
  EXPECT_EQ(cache.stats().evictions, 3u);
  EXPECT_EQ(cache.stats().entries, 15u);
  EXPECT_EQ(cache.stats().bytes, 14 * entry + big_bytes);
}

TEST(ResponseCacheTest, RefusesAnEntryOverAnEighthOfTheCapacity) {
  const uint64_t entry = EntryBytes();
  ResponseCache exact(Capacity(8 * entry));
  EXPECT_TRUE(exact.Insert(Key(1), Answer(1)));  // exactly 1/8: stored
  ResponseCache small(Capacity(8 * entry - 1));
  EXPECT_FALSE(small.Insert(Key(1), Answer(1)));
  EXPECT_FALSE(small.Lookup(Key(1)).has_value());
  EXPECT_EQ(small.stats().entries, 0u);
  EXPECT_EQ(small.stats().bytes, 0u);
}

TEST(ResponseCacheTest, DisabledAtCapacityZero) {
  ResponseCache cache(Capacity(0));
  EXPECT_FALSE(cache.enabled());
  EXPECT_FALSE(cache.Insert(Key(1), Answer(1)));
  EXPECT_FALSE(cache.Lookup(Key(1)).has_value());
}

TEST(ResponseCacheTest, HashCollisionIsAMissNeverAnotherAnswer) {
  ResponseCache::Options options = Capacity(1 << 20);
  options.hash = [](std::string_view) { return Hash128{42, 42}; };  // every key collides
  ResponseCache cache(options);
  ASSERT_TRUE(cache.Insert(Key(1), Answer(1)));
  EXPECT_FALSE(cache.Lookup(Key(2)).has_value());
  EXPECT_FALSE(cache.Lookup(Key(1, "lab/m:2")).has_value());
  EXPECT_EQ(Value(*cache.Lookup(Key(1))), 1.0f);
  // The newer of two colliding entries replaces the older one.
  ASSERT_TRUE(cache.Insert(Key(2), Answer(2)));
  EXPECT_FALSE(cache.Lookup(Key(1)).has_value());
  EXPECT_EQ(Value(*cache.Lookup(Key(2))), 2.0f);
  EXPECT_EQ(cache.stats().entries, 1u);
  EXPECT_EQ(cache.stats().bytes, EntryBytes());
  EXPECT_EQ(cache.stats().evictions, 0u);
}

TEST(ResponseCacheTest, ConcurrentUseKeepsAnswersAndAccounts) {
  const uint64_t entry = EntryBytes();
  ResponseCache cache(Capacity(16 * entry));  // room for 16 of the 64 keys: evictions happen
  std::atomic<int> wrong{0}, hits{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 4000; ++i) {
        // Every other lookup is one of four hot keys, which stay recent and so
        // hit; the rest sweep all 64 keys, which LRU cannot hold, and evict.
        float x = static_cast<float>(i % 2 == 0 ? (i / 2 + t) % 4 : (i * 7 + t * 13) % 64);
        std::optional<std::vector<Tensor>> hit = cache.Lookup(Key(x));
        if (!hit) {
          cache.Insert(Key(x), Answer(x));
        } else {
          ++hits;
          if (Value(*hit) != x) ++wrong;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(hits.load(), 0);
  ResponseCache::Stats stats = cache.stats();
  EXPECT_GT(stats.evictions, 0u);
  EXPECT_LE(stats.bytes, stats.capacity_bytes);
  EXPECT_EQ(stats.bytes, stats.entries * entry);
}

}  // namespace
}  // namespace orrery
