// The manifest's `queue` section (scheduling): parsing, bounds, canonical JSON.
#include <gtest/gtest.h>

#include <string>

#include "repository/manifest.h"
#include "repository/testing/manifest_testing.h"

namespace orrery {
namespace {

using nlohmann::json;

// A minimal valid servable, with `queue:` followed by `section` when given.
std::string Servable(const std::string& section) {
  std::string text =
      "name: digits-mlp\ntitle: Digits MLP\ncreators: [Lovelace, Ada]\nyear: 2026\n"
      "backend: python\nfiles: [model.py]\n"
      "signature:\n  inputs: [{name: x, datatype: FP32, shape: [-1, 4]}]\n"
      "  outputs: [{name: y, datatype: FP32, shape: [-1]}]\n";
  if (!section.empty()) text += "queue:" + section + "\n";
  return text;
}

using testing::ExpectManifestRefused;

TEST(ManifestQueue, ParsesAndRoundTrips) {
  auto parsed =
      ParseManifest(Servable("\n  max_size: 64\n  priority_levels: 3\n  default_priority_level: 2\n"
                             "  default_timeout_us: 500000"));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->queue.max_size, 64u);
  EXPECT_EQ(parsed->queue.priority_levels, 3u);
  EXPECT_EQ(parsed->queue.default_priority_level, 2u);
  EXPECT_EQ(parsed->queue.DefaultLevel(), 2u);
  EXPECT_EQ(parsed->queue.default_timeout_us, 500000u);
  json out = parsed->ToJson();
  EXPECT_EQ(out["queue"], json::parse(R"({"max_size": 64, "priority_levels": 3,
                                          "default_priority_level": 2,
                                          "default_timeout_us": 500000})"))
      << out.dump(2);
  // The catalog stores ToJson(); serving parses it back.
  auto again = ParseManifest(out.dump());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->ToJson(), out);
  EXPECT_EQ(again->queue.default_timeout_us, 500000u);
}

TEST(ManifestQueue, AbsentFieldsStayUnsetAndOutOfTheJson) {
  auto absent = ParseManifest(Servable(""));
  ASSERT_TRUE(absent.ok()) << absent.status().ToString();
  EXPECT_TRUE(absent->queue.empty());
  EXPECT_EQ(absent->queue.DefaultLevel(), 1u);
  EXPECT_FALSE(absent->ToJson().contains("queue"));
  for (const char* section : {" {}", " ~"}) {
    auto empty = ParseManifest(Servable(section));
    ASSERT_TRUE(empty.ok()) << section << ": " << empty.status().ToString();
    EXPECT_TRUE(empty->queue.empty());
    EXPECT_FALSE(empty->ToJson().contains("queue"));
  }
  auto levels = ParseManifest(Servable(" {priority_levels: 4}"));
  ASSERT_TRUE(levels.ok()) << levels.status().ToString();
  EXPECT_EQ(levels->queue.default_priority_level, 0u);
  EXPECT_EQ(levels->queue.DefaultLevel(), 4u);  // the lowest priority
  EXPECT_EQ(levels->queue.max_size, 0u);        // the server's --max-queue
  EXPECT_EQ(levels->ToJson()["queue"], json::parse(R"({"priority_levels": 4})"));
  auto zero = ParseManifest(Servable(" {priority_levels: 0, max_size: 1}"));
  ASSERT_TRUE(zero.ok()) << zero.status().ToString();
  EXPECT_EQ(zero->ToJson()["queue"], json::parse(R"({"max_size": 1})"));
}

TEST(ManifestQueue, BoundsAreAcceptedAndOneBeyondIsRefused) {
  auto bounds =
      ParseManifest(Servable(" {max_size: 65536, priority_levels: 16, default_priority_level: 16, "
                             "default_timeout_us: 3600000000}"));
  ASSERT_TRUE(bounds.ok()) << bounds.status().ToString();
  EXPECT_EQ(bounds->queue.default_timeout_us, 3'600'000'000u);
  auto low =
      ParseManifest(Servable(" {max_size: 1, priority_levels: 1, default_priority_level: 1, "
                             "default_timeout_us: 1}"));
  ASSERT_TRUE(low.ok()) << low.status().ToString();
  ExpectManifestRefused(Servable(" {max_size: 0}"), "manifest: queue.max_size: must be 1..65536");
  ExpectManifestRefused(Servable(" {max_size: 65537}"), "manifest: queue.max_size: must be 1..65536");
  ExpectManifestRefused(Servable(" {priority_levels: 17}"),
                "manifest: queue.priority_levels: must be 0..16");
  ExpectManifestRefused(Servable(" {priority_levels: -1}"),
                "manifest: queue.priority_levels: must be 0..16");
  ExpectManifestRefused(Servable(" {default_timeout_us: 0}"),
                "manifest: queue.default_timeout_us: must be 1..3600000000");
  ExpectManifestRefused(Servable(" {default_timeout_us: 3600000001}"),
                "manifest: queue.default_timeout_us: must be 1..3600000000");
  ExpectManifestRefused(Servable(" {default_timeout_us: -5}"),
                "manifest: queue.default_timeout_us: must be 1..3600000000");
}

TEST(ManifestQueue, DefaultLevelMustBeOneOfTheLevels) {
  ExpectManifestRefused(Servable(" {priority_levels: 3, default_priority_level: 4}"),
                "manifest: queue.default_priority_level: must be 1..3");
  ExpectManifestRefused(Servable(" {priority_levels: 3, default_priority_level: 0}"),
                "manifest: queue.default_priority_level: must be 1..3");
  ExpectManifestRefused(Servable(" {default_priority_level: 1}"),
                "manifest: queue.default_priority_level: only allowed when priority_levels > 0");
  ExpectManifestRefused(Servable(" {priority_levels: 0, default_priority_level: 1}"),
                "manifest: queue.default_priority_level: only allowed when priority_levels > 0");
}

TEST(ManifestQueue, RefusesWrongTypesAndUnknownKeys) {
  ExpectManifestRefused(Servable(" {max_size: many}"), "manifest: queue.max_size: must be an integer");
  ExpectManifestRefused(Servable(" {max_size: 1.5}"), "manifest: queue.max_size: must be an integer");
  ExpectManifestRefused(Servable(" {priority_levels: '2'}"),
                "manifest: queue.priority_levels: must be an integer");
  ExpectManifestRefused(Servable(" {default_timeout_us: [1]}"),
                "manifest: queue.default_timeout_us: must be an integer");
  ExpectManifestRefused(Servable(" {timeout_us: 5}"), "manifest: queue.timeout_us: unknown key");
  ExpectManifestRefused(Servable(" 8"), "manifest: queue: must be a mapping");
  ExpectManifestRefused(Servable(" [max_size]"), "manifest: queue: must be a mapping");
}

TEST(ManifestQueue, PipelinesTakeOnlyATimeout) {
  std::string pipeline =
      "name: chain\ntitle: Chain\ncreators: [Lovelace, Ada]\nyear: 2026\nbackend: pipeline\n"
      "signature:\n  inputs: [{name: x, datatype: FP32, shape: [-1, 4]}]\n"
      "  outputs: [{name: y, datatype: FP32, shape: [-1]}]\n"
      "pipeline:\n  steps: [{name: a, servable: lab/m, version: 1, inputs: {x: $inputs.x}}]\n"
      "  outputs: {y: a.y}\n";
  auto timed = ParseManifest(pipeline + "queue: {default_timeout_us: 250000}\n");
  ASSERT_TRUE(timed.ok()) << timed.status().ToString();
  EXPECT_EQ(timed->queue.default_timeout_us, 250000u);
  for (const char* key : {"max_size", "priority_levels"}) {
    ExpectManifestRefused(pipeline + "queue: {" + key + ": 2}\n",
                  std::string("manifest: queue.") + key + ": a pipeline has no queue of its own");
  }
}

TEST(ManifestQueue, DatasetsCarryNoQueue) {
  ExpectManifestRefused(
      "name: digits\nkind: dataset\ntitle: Digits\ncreators: [UCI]\nyear: 1998\n"
      "files: [data.csv]\nqueue: {max_size: 4}\n",
      "manifest: queue: not allowed for a dataset");
}

}  // namespace
}  // namespace orrery
