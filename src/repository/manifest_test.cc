#include "repository/manifest.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "repository/testing/manifest_testing.h"

namespace orrery {
namespace {

using nlohmann::json;

// A manifest as an ordered list of top-level keys and their YAML text, so
// that each test can drop or replace exactly one field.
class Doc {
 public:
  explicit Doc(std::vector<std::pair<std::string, std::string>> fields)
      : fields_(std::move(fields)) {}

  Doc& Set(const std::string& key, const std::string& value) {
    for (auto& field : fields_) {
      if (field.first == key) {
        field.second = value;
        return *this;
      }
    }
    fields_.emplace_back(key, value);
    return *this;
  }

  Doc& Drop(const std::string& key) {
    std::erase_if(fields_, [&](const auto& field) { return field.first == key; });
    return *this;
  }

  std::string Text() const {
    std::string text;
    for (const auto& [key, value] : fields_) text.append(key).append(":").append(value) += "\n";
    return text;
  }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

// The lowercase form of the digest Servable() gives in upper case.
std::string Digest() {
  return std::string(64, 'a');
}

Doc Servable() {
  return Doc({
      {"name", " digits-mlp"},
      {"kind", " servable"},
      {"title", " Digits MLP"},
      {"creators",
       "\n  - {name: \"Lovelace, Ada\", affiliation: Analytical Engines, orcid: "
       "0000-0002-1825-0097}"
       "\n  - Babbage, Charles"},
      {"description", " A small MLP on 8x8 digits."},
      {"year", " 2026"},
      {"license", " CC-BY-4.0"},
      {"identifiers", " [{type: DOI, value: 10.1234/x}]"},
      {"related_identifiers", " [{type: DOI, value: 10.1/y, relation: IsDerivedFrom}]"},
      {"domain", " vision"},
      {"tags", " [digits, mlp]"},
      {"backend", " torchscript"},
      {"files",
       "\n  - model.pt\n  - {path: extra/labels.txt, sha256: " + std::string(64, 'A') + "}"},
      {"signature",
       "\n  inputs:  [{name: x, datatype: FP32, shape: [-1, 4]}]"
       "\n  outputs: [{name: y, datatype: INT64, shape: [-1]}]"},
      {"task", " digits-classification"},
      {"metrics", " {accuracy: 0.97, n: 5}"},
      {"config", " {threads: 2, scale: 0.5, fast: true, label: '2', nested: {list: [1, x]}}"},
      {"examples",
       "\n  - inputs:  {x: {datatype: FP32, shape: [2, 4], data: [[1, 2, 3, 4], [5, 6, 7, 8.5]]}}"
       "\n    outputs: {y: {shape: [2], data: [3, 7]}}"
       "\n    tolerance: 1.0e-4"},
  });
}

Doc Dataset() {
  return Doc({
      {"name", " digits"},
      {"kind", " dataset"},
      {"title", " Digits"},
      {"creators", " [UCI]"},
      {"year", " 1998"},
      {"files", " [data/train.csv, data/test.csv]"},
  });
}

using testing::ExpectManifestRefused;

TEST(Manifest, FullServableParses) {
  auto parsed = ParseManifest(Servable().Text());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const Manifest& m = *parsed;
  EXPECT_EQ(m.name, "digits-mlp");
  EXPECT_EQ(m.kind, PackageKind::kServable);
  ASSERT_EQ(m.creators.size(), 2u);
  EXPECT_EQ(m.creators[0].name, "Lovelace, Ada");
  EXPECT_EQ(m.creators[0].orcid, "0000-0002-1825-0097");
  EXPECT_EQ(m.creators[1].name, "Babbage, Charles");
  EXPECT_EQ(m.year, 2026);
  ASSERT_EQ(m.files.size(), 2u);
  EXPECT_EQ(m.files[1].sha256, Digest());  // normalised to lowercase
  ASSERT_EQ(m.inputs.size(), 1u);
  EXPECT_EQ(m.inputs[0].shape, (std::vector<int64_t>{-1, 4}));
  EXPECT_DOUBLE_EQ(m.metrics.at("accuracy"), 0.97);
  EXPECT_EQ(m.related_identifiers.at(0).relation, "IsDerivedFrom");
}

TEST(Manifest, ToJsonIsCanonicalAndTyped) {
  auto parsed = ParseManifest(Servable().Text());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  json expected = json::parse(R"({
    "name": "digits-mlp", "kind": "servable", "title": "Digits MLP",
    "creators": [{"name": "Lovelace, Ada", "affiliation": "Analytical Engines",
                  "orcid": "0000-0002-1825-0097"}, {"name": "Babbage, Charles"}],
    "description": "A small MLP on 8x8 digits.", "year": 2026, "license": "CC-BY-4.0",
    "identifiers": [{"type": "DOI", "value": "10.1234/x"}],
    "related_identifiers": [{"type": "DOI", "value": "10.1/y", "relation": "IsDerivedFrom"}],
    "domain": "vision", "tags": ["digits", "mlp"], "backend": "torchscript",
    "files": [{"path": "model.pt"}, {"path": "extra/labels.txt", "sha256": ")" +
                              Digest() + R"("}],
    "signature": {"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
                  "outputs": [{"name": "y", "datatype": "INT64", "shape": [-1]}]},
    "task": "digits-classification", "metrics": {"accuracy": 0.97, "n": 5.0},
    "config": {"threads": 2, "scale": 0.5, "fast": true, "label": "2",
               "nested": {"list": [1, "x"]}},
    "examples": [{"inputs": {"x": {"datatype": "FP32", "shape": [2, 4],
                                   "data": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.5]}},
                  "outputs": {"y": {"datatype": "INT64", "shape": [2], "data": [3, 7]}},
                  "tolerance": 0.0001}]
  })");
  json actual = parsed->ToJson();
  EXPECT_EQ(actual, expected) << actual.dump(2);
  // JSON types survive, not just values.
  EXPECT_TRUE(actual["config"]["threads"].is_number_integer());
  EXPECT_TRUE(actual["config"]["scale"].is_number_float());
  EXPECT_TRUE(actual["config"]["label"].is_string());
  EXPECT_TRUE(actual["examples"][0]["outputs"]["y"]["data"][0].is_number_integer());
}

TEST(Manifest, CanonicalJsonParsesBackToItself) {
  auto first = ParseManifest(Servable().Text());
  ASSERT_TRUE(first.ok());
  auto second = ParseManifest(first->ToJson().dump());  // JSON is YAML
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->ToJson(), first->ToJson());
}

TEST(Manifest, OptionalFieldsAreOmittedFromJson) {
  Doc doc = Servable();
  for (const char* key : {"kind", "description", "license", "identifiers", "related_identifiers",
                          "domain", "tags", "task", "metrics", "config", "examples"}) {
    doc.Drop(key);
  }
  auto parsed = ParseManifest(doc.Text());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  json out = parsed->ToJson();
  for (const char* key : {"description", "license", "identifiers", "tags", "metrics", "config",
                          "examples", "task", "domain"}) {
    EXPECT_FALSE(out.contains(key)) << key;
  }
  EXPECT_EQ(out["kind"], "servable");  // the default
}

TEST(Manifest, RefusesInvalidYaml) {
  ExpectManifestRefused("name: [unclosed\n", "manifest is not valid YAML");
  ExpectManifestRefused("a: b: c\n", "manifest is not valid YAML");
}

TEST(Manifest, RefusesDocumentsThatAreNotOneMapping) {
  ExpectManifestRefused("", "empty");
  ExpectManifestRefused("- a\n- b\n", "must be a mapping");
  ExpectManifestRefused("just text\n", "must be a mapping");
  ExpectManifestRefused(Servable().Text() + "---\n" + Servable().Text(), "single YAML document");
}

TEST(Manifest, EachRequiredFieldIsRequired) {
  for (const char* key : {"name", "title", "creators", "year", "backend", "signature", "files"}) {
    SCOPED_TRACE(key);
    ExpectManifestRefused(Servable().Drop(key).Text(), std::string("manifest: ") + key + ": required");
  }
  ExpectManifestRefused(Servable().Set("title", "").Text(), "title: required");  // null counts as absent
  ExpectManifestRefused(Servable().Set("title", " ''").Text(), "title: must not be empty");
  ExpectManifestRefused(Servable().Set("creators", " []").Text(), "creators: must not be empty");
  ExpectManifestRefused(Servable().Set("creators", " [{affiliation: X}]").Text(),
                "creators[0].name: required");
  ExpectManifestRefused(Servable().Set("signature", " {inputs: []}").Text(),
                "signature.inputs: must not be empty");
  ExpectManifestRefused(
      Servable().Set("signature", " {inputs: [{name: x, datatype: FP32, shape: [1]}]}").Text(),
      "signature.outputs: required");
  ExpectManifestRefused(Servable().Set("files", " []").Text(), "files: must not be empty");
}

TEST(Manifest, RefusesWrongTypesNamingTheField) {
  ExpectManifestRefused(Servable().Set("year", " abc").Text(), "manifest: year: must be an integer");
  ExpectManifestRefused(Servable().Set("year", " 99").Text(), "year: must be 1000..9999");
  ExpectManifestRefused(Servable().Set("year", " 2026.5").Text(), "year: must be an integer");
  ExpectManifestRefused(Servable().Set("tags", " 5").Text(), "manifest: tags: must be a list");
  ExpectManifestRefused(Servable().Set("tags", " [[a]]").Text(), "tags[0]: must be a string");
  ExpectManifestRefused(Servable().Set("title", " [a, b]").Text(), "title: must be a string");
  ExpectManifestRefused(Servable().Set("metrics", " {accuracy: high}").Text(),
                "metrics.accuracy: must be a number");
  ExpectManifestRefused(Servable().Set("metrics", " [1]").Text(), "metrics: must be a mapping");
  ExpectManifestRefused(Servable().Set("config", " 3").Text(), "config: must be a mapping");
  ExpectManifestRefused(Servable().Set("kind", " model").Text(), "kind: must be");
}

TEST(Manifest, RefusesBadName) {
  ExpectManifestRefused(Servable().Set("name", " acme/mlp").Text(), "manifest: name:");
  ExpectManifestRefused(Servable().Set("name", " ..").Text(), "manifest: name:");
}

TEST(Manifest, RefusesUnknownBackend) {
  ExpectManifestRefused(Servable().Set("backend", " tensorflow").Text(),
                "backend: unknown backend 'tensorflow'");
}

TEST(Manifest, RefusesBadSignature) {
  auto with_input = [](const std::string& spec) {
    return Servable()
        .Set("signature", "\n  inputs: [" + spec +
                              "]\n  outputs: [{name: y, datatype: FP32, "
                              "shape: [1]}]")
        .Drop("examples")
        .Text();
  };
  ExpectManifestRefused(with_input("{name: x, datatype: FP8, shape: [1]}"),
                "manifest: signature.inputs[0].datatype: unknown datatype 'FP8'");
  ExpectManifestRefused(with_input("{name: x, datatype: fp32, shape: [1]}"), "unknown datatype");
  ExpectManifestRefused(with_input("{name: 'x y', datatype: FP32, shape: [1]}"),
                "signature.inputs[0].name");
  ExpectManifestRefused(with_input("{name: x, datatype: FP32, shape: [-2]}"),
                "signature.inputs[0].shape[0]: must be >= -1");
  ExpectManifestRefused(with_input("{name: x, datatype: FP32, shape: [a]}"),
                "signature.inputs[0].shape[0]: must be an integer");
  ExpectManifestRefused(with_input("{name: x, datatype: FP32}"), "signature.inputs[0].shape: required");
  ExpectManifestRefused(with_input("{name: x, datatype: FP32, shape: [1]}, {name: x, datatype: FP32, "
                           "shape: [1]}"),
                "duplicate tensor 'x'");
  ExpectManifestRefused(with_input("{name: x, datatype: FP32, shape: [1], dims: [1]}"),
                "signature.inputs[0].dims: unknown key");
  // Scalars and zero-sized dimensions are legal shapes.
  EXPECT_TRUE(ParseManifest(with_input("{name: x, datatype: FP32, shape: []}")).ok());
  EXPECT_TRUE(ParseManifest(with_input("{name: x, datatype: BYTES, shape: [0, -1]}")).ok());
}

TEST(Manifest, RefusesBadFiles) {
  for (const char* path : {"../x", "/abs", "a//b", "a/./b", "a\\\\b", "dir/"}) {
    SCOPED_TRACE(path);
    ExpectManifestRefused(Servable().Set("files", std::string(" [\"") + path + "\"]").Text(),
                  "manifest: files[0]: invalid path");
  }
  ExpectManifestRefused(Servable().Set("files", " [{path: ../x}]").Text(), "files[0].path: invalid path");
  ExpectManifestRefused(Servable().Set("files", " [a.pt, b.pt, a.pt]").Text(),
                "files[2]: duplicate file 'a.pt'");
  ExpectManifestRefused(Servable().Set("files", " [{path: a.pt, sha256: abc}]").Text(),
                "files[0].sha256: not a SHA-256 digest");
  ExpectManifestRefused(Servable().Set("files", " [{path: a.pt, size: 3}]").Text(),
                "files[0].size: unknown key");
}

TEST(Manifest, RefusesUnknownKeys) {
  ExpectManifestRefused(Servable().Set("licence", " MIT").Text(), "manifest: licence: unknown key");
  ExpectManifestRefused(Servable().Set("creators", " [{name: A, email: a@b.c}]").Text(),
                "creators[0].email: unknown key");
  ExpectManifestRefused(Servable().Set("identifiers", " [{type: DOI, value: x, relation: Cites}]").Text(),
                "identifiers[0].relation: unknown key");
}

TEST(Manifest, DatasetRules) {
  auto parsed = ParseManifest(Dataset().Text());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->kind, PackageKind::kDataset);
  EXPECT_EQ(parsed->ToJson()["kind"], "dataset");
  EXPECT_FALSE(parsed->ToJson().contains("backend"));
  EXPECT_FALSE(parsed->ToJson().contains("signature"));
  ExpectManifestRefused(Dataset().Drop("files").Text(), "files: required");
  ExpectManifestRefused(Dataset().Set("backend", " onnx").Text(), "backend: not allowed for a dataset");
  ExpectManifestRefused(Dataset().Set("signature", " {inputs: [], outputs: []}").Text(),
                "signature: not allowed for a dataset");
}

TEST(Manifest, PipelineNeedsNoFilesButASignature) {
  Doc pipeline = Servable().Set("backend", " pipeline").Drop("files").Set(
      "pipeline",
      " {steps: [{name: a, servable: s, version: 1, inputs: {x: $inputs.x}}], outputs: {y: a.y}}");
  auto parsed = ParseManifest(pipeline.Text());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(parsed->files.empty());
  ExpectManifestRefused(pipeline.Drop("signature").Drop("examples").Text(), "signature: required");
}

TEST(Manifest, ExamplesAreCheckedAgainstTheSignature) {
  auto with_example = [](const std::string& example) {
    return Servable().Set("examples", "\n  - " + example).Text();
  };
  const std::string y = "outputs: {y: {shape: [1], data: [0]}}";
  ExpectManifestRefused(with_example("{inputs: {x: {shape: [1, 4], data: [1, 2, 3]}}, " + y + "}"),
                "examples[0].inputs.x.data: has 3 values but the shape needs 4");
  ExpectManifestRefused(with_example("{inputs: {x: {shape: [2, 4], data: [1, 2, 3, 4]}}, " + y + "}"),
                "has 4 values but the shape needs 8");
  ExpectManifestRefused(with_example("{inputs: {x: {shape: [1, 5], data: [1, 2, 3, 4, 5]}}, " + y + "}"),
                "examples[0].inputs.x.shape[1]: must be 4");
  ExpectManifestRefused(with_example("{inputs: {x: {shape: [4], data: [1, 2, 3, 4]}}, " + y + "}"),
                "examples[0].inputs.x.shape: must have 2 dimensions");
  ExpectManifestRefused(
      with_example("{inputs: {x: {datatype: FP64, shape: [1, 4], data: [1, 2, 3, 4]}}, " + y + "}"),
      "examples[0].inputs.x.datatype: is FP64 but the signature says FP32");
  ExpectManifestRefused(with_example("{inputs: {z: {shape: [1], data: [1]}}, " + y + "}"),
                "examples[0].inputs.z: not in the signature");
  ExpectManifestRefused(with_example("{inputs: {}, " + y + "}"), "examples[0].inputs.x: required");
  ExpectManifestRefused(with_example("{inputs: {x: {shape: [1, 4], data: [1, 2, a, 4]}}, " + y + "}"),
                "examples[0].inputs.x.data[2]: must be a number (FP32)");
  ExpectManifestRefused(with_example("{inputs: {x: {shape: [1, 4], data: [1, 2, 3, 4]}}, "
                             "outputs: {y: {shape: [1], data: [1.5]}}}"),
                "examples[0].outputs.y.data[0]: must be an integer in the range of INT64");
  ExpectManifestRefused(with_example("{inputs: {x: {shape: [1, 4], data: [1, 2, 3, 4]}}}"),
                "examples[0].outputs: required");
  ExpectManifestRefused(
      with_example("{inputs: {x: {shape: [1, 4], data: [1, 2, 3, 4]}}, " + y + ", tolerance: -1}"),
      "examples[0].tolerance: must be >= 0");
}

TEST(Manifest, ExampleElementTypesFollowTheDatatype) {
  auto manifest = [](const std::string& datatype, const std::string& data) {
    return Servable()
        .Set("signature", "\n  inputs: [{name: x, datatype: " + datatype +
                              ", shape: [-1]}]\n  outputs: [{name: y, datatype: BOOL, shape: []}]")
        .Set("examples", "\n  - {inputs: {x: {shape: [2], data: " + data +
                             "}}, outputs: {y: {shape: [], data: true}}}")
        .Text();
  };
  ExpectManifestRefused(manifest("INT8", "[1, 128]"), "data[1]: must be an integer in the range of INT8");
  ExpectManifestRefused(manifest("UINT8", "[-1, 0]"), "data[0]: must be an integer in the range of UINT8");
  ExpectManifestRefused(manifest("BOOL", "[true, 1]"), "data[1]: must be true or false");
  auto bytes = ParseManifest(manifest("BYTES", "[abc, 12]"));
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(bytes->examples[0]["inputs"]["x"]["data"], json::parse(R"(["abc", "12"])"));
  EXPECT_EQ(bytes->examples[0]["outputs"]["y"]["data"], json::parse("[true]"));
  auto uint64 = ParseManifest(manifest("UINT64", "[0, 18446744073709551615]"));
  ASSERT_TRUE(uint64.ok()) << uint64.status().ToString();
}

// ---- batching ---------------------------------------------------------------

Doc Batched(const std::string& batching) {
  return Servable().Set("batching", batching);
}

TEST(Manifest, BatchingParsesAndRoundTrips) {
  auto parsed = ParseManifest(
      Batched("\n  max_batch_size: 32\n  max_queue_delay_us: 500\n  preferred_batch_sizes: [8, 16]")
          .Text());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(parsed->batching.enabled());
  EXPECT_EQ(parsed->batching.max_batch_size, 32u);
  EXPECT_EQ(parsed->batching.max_queue_delay_us, 500u);
  EXPECT_EQ(parsed->batching.preferred_batch_sizes, (std::vector<uint32_t>{8, 16}));
  json out = parsed->ToJson();
  EXPECT_EQ(out["batching"], json::parse(R"({"max_batch_size": 32, "max_queue_delay_us": 500,
                                             "preferred_batch_sizes": [8, 16]})"))
      << out.dump(2);
  // The catalog stores ToJson(); serving parses it back.
  auto again = ParseManifest(out.dump());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->batching.max_batch_size, 32u);
  EXPECT_EQ(again->batching.max_queue_delay_us, 500u);
  EXPECT_EQ(again->batching.preferred_batch_sizes, (std::vector<uint32_t>{8, 16}));
  EXPECT_EQ(again->ToJson(), out);
  // The bounds themselves are accepted; preferred sizes are optional.
  auto bounds = ParseManifest(Batched(" {max_batch_size: 4096, max_queue_delay_us: 1000000, "
                                      "preferred_batch_sizes: [1, 4096]}")
                                  .Text());
  ASSERT_TRUE(bounds.ok()) << bounds.status().ToString();
  auto plain = ParseManifest(Batched(" {max_batch_size: 1}").Text());
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->batching.max_queue_delay_us, 0u);
  EXPECT_EQ(plain->ToJson()["batching"],
            json::parse(R"({"max_batch_size": 1, "max_queue_delay_us": 0,
                            "preferred_batch_sizes": []})"));
}

TEST(Manifest, BatchingAbsentOrZeroIsDisabled) {
  auto absent = ParseManifest(Servable().Text());
  ASSERT_TRUE(absent.ok()) << absent.status().ToString();
  EXPECT_FALSE(absent->batching.enabled());
  EXPECT_EQ(absent->batching.max_queue_delay_us, 0u);
  EXPECT_TRUE(absent->batching.preferred_batch_sizes.empty());
  EXPECT_FALSE(absent->ToJson().contains("batching"));
  for (const char* section : {"", " {}", " {max_batch_size: 0, max_queue_delay_us: 500}"}) {
    SCOPED_TRACE(section);
    auto zero = ParseManifest(Batched(section).Text());
    ASSERT_TRUE(zero.ok()) << zero.status().ToString();
    EXPECT_FALSE(zero->batching.enabled());
    EXPECT_FALSE(zero->ToJson().contains("batching"));
  }
  // Without batching, a fixed first dimension stays legal.
  auto fixed = Servable()
                   .Set("signature",
                        "\n  inputs: [{name: x, datatype: FP32, shape: [1, 4]}]"
                        "\n  outputs: [{name: y, datatype: FP32, shape: []}]")
                   .Drop("examples");
  EXPECT_TRUE(ParseManifest(fixed.Text()).ok());
  EXPECT_TRUE(ParseManifest(fixed.Set("batching", " {max_batch_size: 0}").Text()).ok());
}

// ---- cache ------------------------------------------------------------------

TEST(Manifest, CacheIsABooleanOnlyServablesCarry) {
  auto absent = ParseManifest(Servable().Text());
  ASSERT_TRUE(absent.ok()) << absent.status().ToString();
  EXPECT_FALSE(absent->cache);
  EXPECT_FALSE(absent->ToJson().contains("cache"));
  auto on = ParseManifest(Servable().Set("cache", " true").Text());
  ASSERT_TRUE(on.ok()) << on.status().ToString();
  EXPECT_TRUE(on->cache);
  EXPECT_EQ(on->ToJson()["cache"], true);
  auto again = ParseManifest(on->ToJson().dump());  // JSON is YAML
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->cache);
  auto off = ParseManifest(Servable().Set("cache", " false").Text());
  ASSERT_TRUE(off.ok()) << off.status().ToString();
  EXPECT_FALSE(off->cache);
  for (const char* bad : {" yes", " 1", " [true]", " {on: true}", " \"true\""}) {
    SCOPED_TRACE(bad);
    ExpectManifestRefused(Servable().Set("cache", bad).Text(), "cache: must be true or false");
  }
  ExpectManifestRefused(Dataset().Set("cache", " true").Text(), "cache: not allowed for a dataset");
}

TEST(Manifest, BatchingRefusesUnknownKeysAndNonMappings) {
  ExpectManifestRefused(Batched(" {max_batch_size: 8, timeout_us: 5}").Text(),
                "manifest: batching.timeout_us: unknown key");
  ExpectManifestRefused(Batched(" 8").Text(), "manifest: batching: must be a mapping");
}

TEST(Manifest, BatchingMaxBatchSizeIsAnIntegerIn0To4096) {
  for (const char* value : {"abc", "'8'", "8.0", "8.5", "true", "[8]"}) {
    SCOPED_TRACE(value);
    ExpectManifestRefused(Batched(std::string(" {max_batch_size: ") + value + "}").Text(),
                  "manifest: batching.max_batch_size: must be an integer");
  }
  for (const char* value : {"-1", "4097", "99999999999"}) {
    SCOPED_TRACE(value);
    ExpectManifestRefused(Batched(std::string(" {max_batch_size: ") + value + "}").Text(),
                  "manifest: batching.max_batch_size: must be 0..4096");
  }
}

TEST(Manifest, BatchingMaxQueueDelayIsAnIntegerIn0To1000000) {
  for (const char* value : {"abc", "'500'", "0.5", "1e3"}) {
    SCOPED_TRACE(value);
    ExpectManifestRefused(
        Batched(std::string(" {max_batch_size: 8, max_queue_delay_us: ") + value + "}").Text(),
        "manifest: batching.max_queue_delay_us: must be an integer");
  }
  for (const char* value : {"-1", "1000001"}) {
    SCOPED_TRACE(value);
    ExpectManifestRefused(
        Batched(std::string(" {max_batch_size: 8, max_queue_delay_us: ") + value + "}").Text(),
        "manifest: batching.max_queue_delay_us: must be 0..1000000");
  }
}

TEST(Manifest, BatchingPreferredSizesAreIn1ToMaxBatchSize) {
  ExpectManifestRefused(Batched(" {max_batch_size: 16, preferred_batch_sizes: [8, 32]}").Text(),
                "manifest: batching.preferred_batch_sizes[1]: must be 1..max_batch_size (16)");
  ExpectManifestRefused(Batched(" {max_batch_size: 16, preferred_batch_sizes: [0, 8]}").Text(),
                "manifest: batching.preferred_batch_sizes[0]: must be 1..max_batch_size (16)");
  ExpectManifestRefused(Batched(" {max_batch_size: 16, preferred_batch_sizes: [-4]}").Text(),
                "manifest: batching.preferred_batch_sizes[0]: must be 1..max_batch_size (16)");
  ExpectManifestRefused(Batched(" {max_batch_size: 16, preferred_batch_sizes: [4, 8.0]}").Text(),
                "manifest: batching.preferred_batch_sizes[1]: must be an integer");
  ExpectManifestRefused(Batched(" {max_batch_size: 16, preferred_batch_sizes: 8}").Text(),
                "manifest: batching.preferred_batch_sizes: must be a list");
}

TEST(Manifest, BatchingPreferredSizesStrictlyIncrease) {
  ExpectManifestRefused(Batched(" {max_batch_size: 16, preferred_batch_sizes: [8, 8]}").Text(),
                "manifest: batching.preferred_batch_sizes[1]: must be greater than the size "
                "before it (strictly increasing)");
  ExpectManifestRefused(Batched(" {max_batch_size: 16, preferred_batch_sizes: [2, 8, 4]}").Text(),
                "manifest: batching.preferred_batch_sizes[2]: must be greater than the size "
                "before it");
}

TEST(Manifest, BatchingPreferredSizesNeedBatching) {
  ExpectManifestRefused(Batched(" {preferred_batch_sizes: [8]}").Text(),
                "manifest: batching.preferred_batch_sizes: only allowed when max_batch_size > 0");
  ExpectManifestRefused(Batched(" {max_batch_size: 0, preferred_batch_sizes: [8]}").Text(),
                "manifest: batching.preferred_batch_sizes: only allowed when max_batch_size > 0");
  EXPECT_TRUE(
      ParseManifest(Batched(" {max_batch_size: 0, preferred_batch_sizes: []}").Text()).ok());
}

TEST(Manifest, BatchingNeedsABatchDimensionOnEveryTensor) {
  auto with_signature = [](const std::string& inputs, const std::string& outputs) {
    return Batched(" {max_batch_size: 8}")
        .Set("signature", "\n  inputs: [" + inputs + "]\n  outputs: [" + outputs + "]")
        .Drop("examples")
        .Text();
  };
  const std::string x = "{name: x, datatype: FP32, shape: [-1, 4]}";
  const std::string y = "{name: y, datatype: FP32, shape: [-1]}";
  EXPECT_TRUE(
      ParseManifest(with_signature(x + ", {name: z, datatype: BYTES, shape: [-1, -1]}", y)).ok());
  ExpectManifestRefused(with_signature(x + ", {name: z, datatype: FP32, shape: [1, 4]}", y),
                "manifest: batching: signature.inputs[1] 'z' must have -1 as its first dimension "
                "(the batch dimension) to be batched");
  ExpectManifestRefused(with_signature("{name: x, datatype: FP32, shape: []}", y),
                "manifest: batching: signature.inputs[0] 'x' must have -1 as its first dimension "
                "(the batch dimension) to be batched");
  ExpectManifestRefused(with_signature(x, "{name: y, datatype: FP32, shape: [4, -1]}"),
                "manifest: batching: signature.outputs[0] 'y' must have -1 as its first dimension "
                "(the batch dimension) to be batched");
  ExpectManifestRefused(with_signature(x, "{name: y, datatype: FP32, shape: []}"),
                "manifest: batching: signature.outputs[0] 'y' must have -1");
}

TEST(Manifest, BatchingKeepsCheckingExamples) {
  ExpectManifestRefused(Batched(" {max_batch_size: 8}")
                    .Set("examples",
                         "\n  - {inputs: {x: {shape: [1, 5], data: [1, 2, 3, 4, 5]}}, "
                         "outputs: {y: {shape: [1], data: [0]}}}")
                    .Text(),
                "examples[0].inputs.x.shape[1]: must be 4");
}

TEST(Manifest, DatasetRefusesBatching) {
  ExpectManifestRefused(Dataset().Set("batching", " {max_batch_size: 8}").Text(),
                "manifest: batching: not allowed for a dataset");
  ExpectManifestRefused(Dataset().Set("batching", " {max_batch_size: 0}").Text(),
                "manifest: batching: not allowed for a dataset");
}

TEST(Manifest, RefusesInvalidUtf8) {
  ExpectManifestRefused(Servable().Set("title", " \xff\xfe").Text(), "UTF-8");
}

TEST(Manifest, RefusesAliasBombs) {
  // 8^9 values once expanded, from a few hundred bytes of YAML: aliases are
  // refused before anything is expanded.
  std::string text = Servable().Drop("config").Text();
  text += "config:\n  a0: &a0 [x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i) {
    std::string previous = "*a" + std::to_string(i - 1);
    text.append("  a").append(std::to_string(i)).append(": &a").append(std::to_string(i));
    text += " [";
    for (int j = 0; j < 8; ++j) text.append(j ? ", " : "").append(previous);
    text += "]\n";
  }
  ExpectManifestRefused(text, "manifest is not valid YAML: aliases (*name) are not allowed");
}

TEST(Manifest, KnownBackendsAndDatatypes) {
  for (const char* backend : {"torchscript", "xgboost", "onnx", "python", "native", "pipeline"}) {
    EXPECT_TRUE(IsKnownBackend(backend)) << backend;
  }
  EXPECT_EQ(KnownBackends().size(), 6u);
  EXPECT_FALSE(IsKnownBackend("tensorflow"));
  for (const char* type : {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32",
                           "INT64", "FP16", "FP32", "FP64", "BF16", "BYTES"}) {
    EXPECT_TRUE(IsKnownDatatype(type)) << type;
  }
  EXPECT_FALSE(IsKnownDatatype("FP8"));
  EXPECT_FALSE(IsKnownDatatype("fp32"));
  EXPECT_STREQ(PackageKindName(PackageKind::kServable), "servable");
  EXPECT_STREQ(PackageKindName(PackageKind::kDataset), "dataset");
}

TEST(PackagePath, AcceptsRelativePaths) {
  for (const char* path : {"a", "model.pt", "dir/sub/file-1.bin", ".hidden", "a..b", "ünï"}) {
    EXPECT_TRUE(ValidatePackagePath(path).ok()) << path;
  }
  std::string longest = std::string(204, 'a');
  for (int i = 0; i < 4; ++i) longest += "/" + std::string(204, 'b');
  ASSERT_EQ(longest.size(), 1024u);
  EXPECT_TRUE(ValidatePackagePath(longest).ok());
  EXPECT_TRUE(ValidatePackagePath(std::string(255, 'c')).ok());
}

TEST(PackagePath, RefusesEscapesAndOddNames) {
  for (std::string path : {"", "/a", "a/", "a//b", ".", "./a", "a/./b", "..", "../a", "a/../b",
                           "a/..", "a\\b", "a\nb"}) {
    EXPECT_EQ(ValidatePackagePath(path).code(), Code::kInvalidArgument) << path;
  }
  EXPECT_EQ(ValidatePackagePath(std::string("a\0b", 3)).code(), Code::kInvalidArgument);
  EXPECT_EQ(ValidatePackagePath(std::string(1025, 'a')).code(), Code::kInvalidArgument);
  EXPECT_EQ(ValidatePackagePath(std::string(256, 'c')).code(), Code::kInvalidArgument);
  EXPECT_NE(ValidatePackagePath("../x").message().find("'../x'"), std::string::npos);
  // Paths end up in JSON: they must be well-formed UTF-8.
  for (const char* bad : {"a\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc3"}) {
    EXPECT_EQ(ValidatePackagePath(bad).code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(ValidatePackagePath("\xf0\x9f\x98\x80/\xc3\xbc").ok());
  EXPECT_NE(ValidatePackagePath("a\xff/..").message().find("'a\\xff/..'"), std::string::npos)
      << ValidatePackagePath("a\xff/..").message();
  // Control characters are escaped in the message.
  EXPECT_NE(ValidatePackagePath("a\nb").message().find("a\\x0ab"), std::string::npos);
}

TEST(CheckManifestFiles, NamesTheFirstMissingFile) {
  auto parsed = ParseManifest(Servable().Text());
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(CheckManifestFiles(*parsed, {"model.pt", "extra/labels.txt", "orrery.yaml"}).ok());
  Status missing = CheckManifestFiles(*parsed, {"model.pt", "orrery.yaml"});
  EXPECT_EQ(missing.code(), Code::kUnprocessable);
  EXPECT_NE(missing.message().find("extra/labels.txt"), std::string::npos) << missing.message();
}

}  // namespace
}  // namespace orrery
