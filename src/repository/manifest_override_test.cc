// The admin override of serving settings (manifest.h): applied on top of a
// manifest, validated by the manifest's own section rules, with errors that
// name the override's field.
#include <gtest/gtest.h>

#include <string>

#include "repository/manifest.h"

namespace orrery {
namespace {

using nlohmann::json;

// A servable whose tensors have the batch dimension first (batchable) or a
// fixed first dimension (`fixed`), optionally with its own `batching`.
Manifest Servable(bool fixed = false, const std::string& extra = "") {
  std::string shape = fixed ? "[4]" : "[-1, 4]";
  std::string text =
      "name: m\ntitle: T\ncreators: [{name: Tester}]\nyear: 2026\nbackend: python\n"
      "files: [model.py]\nsignature:\n  inputs: [{name: x, datatype: FP32, shape: " +
      shape + "}]\n  outputs: [{name: y, datatype: FP32, shape: " + shape + "}]\n" + extra;
  Result<Manifest> manifest = ParseManifest(text);
  EXPECT_TRUE(manifest.ok()) << manifest.status().ToString();
  return manifest.ok() ? *manifest : Manifest{};
}

void ExpectRefused(const Manifest& manifest, const std::string& override_text,
                   const std::string& message) {
  SCOPED_TRACE(override_text);
  Result<Manifest> applied = ApplyServingOverride(manifest, json::parse(override_text));
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.status().code(), Code::kUnprocessable);
  EXPECT_EQ(applied.status().message(), message);
}

TEST(ServingOverride, ReplacesOnlyTheSectionsItNames) {
  Manifest manifest = Servable();
  auto batched = ApplyServingOverride(
      manifest, json::parse(R"({"batching": {"max_batch_size": 16, "max_queue_delay_us": 250,
                                             "preferred_batch_sizes": [4, 8]}})"));
  ASSERT_TRUE(batched.ok()) << batched.status().ToString();
  EXPECT_EQ(batched->batching.max_batch_size, 16u);
  EXPECT_EQ(batched->batching.max_queue_delay_us, 250u);
  EXPECT_EQ(batched->batching.preferred_batch_sizes, (std::vector<uint32_t>{4, 8}));
  EXPECT_FALSE(batched->cache);  // not named: the manifest's
  EXPECT_EQ(batched->inputs[0].shape, manifest.inputs[0].shape);

  auto cached = ApplyServingOverride(manifest, json::parse(R"({"cache": true, "batching": null})"));
  ASSERT_TRUE(cached.ok()) << cached.status().ToString();
  EXPECT_TRUE(cached->cache);
  EXPECT_FALSE(cached->batching.enabled());

  auto none = ApplyServingOverride(manifest, json::object());
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(ServingSettingsJson(*none), ServingSettingsJson(manifest));
}

TEST(ServingOverride, QueueSectionIsReplacedWholeAndChecked) {
  Manifest manifest = Servable(false, "queue: {max_size: 9, default_timeout_us: 5000}\n");
  auto levels = ApplyServingOverride(
      manifest, json::parse(R"({"queue": {"priority_levels": 3, "default_priority_level": 1}})"));
  ASSERT_TRUE(levels.ok()) << levels.status().ToString();
  EXPECT_EQ(levels->queue.priority_levels, 3u);
  EXPECT_EQ(levels->queue.default_priority_level, 1u);
  EXPECT_EQ(levels->queue.max_size, 0u);            // left out: the default, not the manifest's 9
  EXPECT_EQ(levels->queue.default_timeout_us, 0u);
  EXPECT_EQ(ServingSettingsJson(*levels)["queue"],
            json::parse(R"({"max_size": 0, "priority_levels": 3, "default_priority_level": 1,
                            "default_timeout_us": 0})"));
  auto kept = ApplyServingOverride(manifest, json::parse(R"({"cache": true})"));
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_EQ(kept->queue.max_size, 9u);  // not named: the manifest's
  ExpectRefused(manifest, R"({"queue": {"priority_levels": 17}})",
                "serving override: queue.priority_levels: must be 0..16");
  ExpectRefused(manifest, R"({"queue": {"default_priority_level": 1}})",
                "serving override: queue.default_priority_level: only allowed when "
                "priority_levels > 0");
  ExpectRefused(manifest, R"({"queue": {"size": 1}})", "serving override: queue.size: unknown key");
}

TEST(ServingOverride, ReplacesTheManifestsSectionWhole) {
  Manifest manifest = Servable(false,
                               "batching: {max_batch_size: 32, max_queue_delay_us: 900, "
                               "preferred_batch_sizes: [8, 32]}\ncache: true\n");
  ASSERT_EQ(manifest.batching.max_batch_size, 32u);
  // Keys the override leaves out take their defaults, not the manifest's.
  auto smaller =
      ApplyServingOverride(manifest, json::parse(R"({"batching": {"max_batch_size": 4}})"));
  ASSERT_TRUE(smaller.ok()) << smaller.status().ToString();
  EXPECT_EQ(smaller->batching.max_batch_size, 4u);
  EXPECT_EQ(smaller->batching.max_queue_delay_us, 0u);
  EXPECT_TRUE(smaller->batching.preferred_batch_sizes.empty());
  // An admin may switch batching and the cache off.
  auto off = ApplyServingOverride(
      manifest, json::parse(R"({"batching": {"max_batch_size": 0}, "cache": false})"));
  ASSERT_TRUE(off.ok()) << off.status().ToString();
  EXPECT_FALSE(off->batching.enabled());
  EXPECT_FALSE(off->cache);
}

TEST(ServingOverride, BatchingNeedsTheBatchDimensionFirst) {
  Manifest fixed = Servable(/*fixed=*/true);
  ExpectRefused(fixed, R"({"batching": {"max_batch_size": 4}})",
                "serving override: batching: signature.inputs[0] 'x' must have -1 as its first "
                "dimension (the batch dimension) to be batched");
  // Not batching stays legal for such a servable.
  EXPECT_TRUE(
      ApplyServingOverride(fixed, json::parse(R"({"batching": {"max_batch_size": 0}})")).ok());
  EXPECT_TRUE(ApplyServingOverride(fixed, json::parse(R"({"cache": true})")).ok());
}

TEST(ServingOverride, PipelinesDoNotBatch) {
  Manifest pipeline = Servable();
  pipeline.backend = "pipeline";  // the override's rules only look at the backend
  ExpectRefused(pipeline, R"({"batching": {"max_batch_size": 4}})",
                "serving override: batching: not allowed for a pipeline (its steps batch by "
                "their own manifests)");
  EXPECT_TRUE(ApplyServingOverride(pipeline, json::parse(R"({"cache": true})")).ok());
}

TEST(ServingOverride, RefusesUnknownKeys) {
  Manifest manifest = Servable();
  ExpectRefused(manifest, R"({"queue_size": 3})", "serving override: queue_size: unknown key");
  ExpectRefused(manifest, R"({"signature": {}})", "serving override: signature: unknown key");
  ExpectRefused(manifest, R"({"batching": {"max_batch_size": 4, "timeout_us": 1}})",
                "serving override: batching.timeout_us: unknown key");
}

TEST(ServingOverride, AppliesTheManifestsBoundsAndTypes) {
  Manifest manifest = Servable();
  ExpectRefused(manifest, R"({"batching": {"max_batch_size": 4097}})",
                "serving override: batching.max_batch_size: must be 0..4096");
  ExpectRefused(manifest, R"({"batching": {"max_batch_size": -1}})",
                "serving override: batching.max_batch_size: must be 0..4096");
  ExpectRefused(manifest, R"({"batching": {"max_batch_size": 4, "max_queue_delay_us": 1000001}})",
                "serving override: batching.max_queue_delay_us: must be 0..1000000");
  ExpectRefused(manifest, R"({"batching": {"max_batch_size": 4, "preferred_batch_sizes": [8]}})",
                "serving override: batching.preferred_batch_sizes[0]: must be 1..max_batch_size "
                "(4)");
  ExpectRefused(manifest, R"({"batching": {"max_batch_size": 8, "preferred_batch_sizes": [4, 2]}})",
                "serving override: batching.preferred_batch_sizes[1]: must be greater than the "
                "size before it (strictly increasing)");
  // A number in a string, a float or a boolean is not an integer (as in the manifest).
  for (const char* value : {R"("8")", "8.0", "true", "[8]"}) {
    ExpectRefused(manifest, std::string(R"({"batching": {"max_batch_size": )") + value + "}}",
                  "serving override: batching.max_batch_size: must be an integer");
  }
  ExpectRefused(manifest, R"({"batching": 8})", "serving override: batching: must be a mapping");
  for (const char* value : {R"("true")", "1", "{}"}) {
    ExpectRefused(manifest, std::string(R"({"cache": )") + value + "}",
                  "serving override: cache: must be true or false");
  }
}

TEST(ServingOverride, RefusesWhatIsNotAnOverride) {
  Manifest manifest = Servable();
  ExpectRefused(manifest, "[]", "serving override must be a JSON object");
  ExpectRefused(manifest, "null", "serving override must be a JSON object");
  std::string deep = std::string(100, '[') + std::string(100, ']');
  Result<Manifest> nested =
      ApplyServingOverride(manifest, json::parse(R"({"batching": )" + deep + "}"));
  ASSERT_FALSE(nested.ok());
  EXPECT_NE(nested.status().message().find("nested too deeply"), std::string::npos)
      << nested.status().ToString();
  Result<Manifest> dataset = ParseManifest(
      "name: d\nkind: dataset\ntitle: T\ncreators: [x]\nyear: 2026\nfiles: [a.csv]\n");
  ASSERT_TRUE(dataset.ok()) << dataset.status().ToString();
  ExpectRefused(*dataset, R"({"cache": true})",
                "serving override: only servables have serving settings");
}

TEST(ServingOverride, CanonicalFormDropsNullSections) {
  EXPECT_EQ(CanonicalServingOverride(json::parse(R"({"batching": null, "cache": true})")),
            json::parse(R"({"cache": true})"));
  EXPECT_EQ(CanonicalServingOverride(json::parse(R"({"batching": null, "cache": null})")),
            json::object());
  EXPECT_EQ(ServingSettingsJson(Servable()),
            json::parse(R"({"batching": {"max_batch_size": 0, "max_queue_delay_us": 0,
                                         "preferred_batch_sizes": []}, "cache": false,
                         "queue": {"max_size": 0, "priority_levels": 0,
                                   "default_priority_level": 0, "default_timeout_us": 0}})"));
}

}  // namespace
}  // namespace orrery
