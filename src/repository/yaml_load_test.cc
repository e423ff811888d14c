#include "repository/yaml_load.h"

#include <gtest/gtest.h>

#include <string>

#include "repository/manifest.h"

namespace orrery {
namespace {

TEST(YamlLoadTest, BuildsTheNodesYamlCppWould) {
  auto docs = LoadYamlDocuments(
      "name: x\nyear: 2026\nquoted: '2'\nempty:\ntilde: ~\nlist: [1, b, 'c']\n"
      "map: {k: v}\nblock:\n  - one\n  - two: 2\n");
  ASSERT_TRUE(docs.ok()) << docs.status().ToString();
  ASSERT_EQ(docs->size(), 1u);
  const YAML::Node& root = docs->front();
  ASSERT_TRUE(root.IsMap());
  EXPECT_EQ(root["name"].as<std::string>(), "x");
  EXPECT_EQ(root["year"].as<int>(), 2026);
  EXPECT_EQ(root["quoted"].Tag(), "!");  // quoted: a string, whatever it looks like
  EXPECT_NE(root["year"].Tag(), "!");
  EXPECT_TRUE(root["empty"].IsNull());
  EXPECT_TRUE(root["tilde"].IsNull());
  ASSERT_TRUE(root["list"].IsSequence());
  EXPECT_EQ(root["list"].size(), 3u);
  EXPECT_EQ(root["list"][1].as<std::string>(), "b");
  EXPECT_EQ(root["map"]["k"].as<std::string>(), "v");
  EXPECT_EQ(root["block"][1]["two"].as<int>(), 2);
  std::vector<std::string> keys;
  for (const auto& item : root) keys.push_back(item.first.as<std::string>());
  EXPECT_EQ(keys, (std::vector<std::string>{"name", "year", "quoted", "empty", "tilde", "list",
                                            "map", "block"}));  // document order
}

TEST(YamlLoadTest, KeepsDuplicateKeysForTheCallerToRefuse) {
  auto docs = LoadYamlDocuments("a: 1\na: 2\n");
  ASSERT_TRUE(docs.ok());
  EXPECT_EQ(docs->front().size(), 2u);
  EXPECT_EQ(ParseManifest("name: x\nname: y\n").status().message(),
            "manifest: name: duplicate key");
}

TEST(YamlLoadTest, CollectionsUsedAsKeysAndNestedAreComplete) {
  auto docs = LoadYamlDocuments("? [a, b]\n: {c: [1, [2, 3]]}\n");
  ASSERT_TRUE(docs.ok()) << docs.status().ToString();
  const YAML::Node& root = docs->front();
  ASSERT_EQ(root.size(), 1u);
  for (const auto& item : root) {
    EXPECT_EQ(item.first.size(), 2u);
    EXPECT_EQ(item.second["c"][1][1].as<int>(), 3);
  }
}

TEST(YamlLoadTest, CountsDocuments) {
  EXPECT_EQ(LoadYamlDocuments("").value().size(), 0u);
  EXPECT_EQ(LoadYamlDocuments("a: 1\n---\nb: 2\n").value().size(), 2u);
}

// fuzz/manifest_fuzzer found that yaml-cpp's own parser never returns on
// these (the first is the whole input): now they are refused at once.
TEST(YamlLoadTest, TextThatHungYamlCppIsRefused) {
  for (const char* text : {",}", " ,}", " ,a: b}\n", " ,a: b}\ntitle: t\n"}) {
    auto docs = LoadYamlDocuments(text);
    EXPECT_FALSE(docs.ok()) << text;
    Result<Manifest> manifest = ParseManifest(text);
    EXPECT_EQ(manifest.status().code(), Code::kUnprocessable) << text;
    EXPECT_EQ(manifest.status().message().rfind("manifest is not valid YAML: ", 0), 0u)
        << manifest.status().message();
  }
}

TEST(YamlLoadTest, RefusesAliasesDeepNestingAndMalformedText) {
  auto alias = LoadYamlDocuments("a: &x [1, 2]\nb: *x\n");
  EXPECT_EQ(alias.status().message(), "aliases (*name) are not allowed (line 2, column 4)");
  std::string deep(kMaxYamlDepth + 1, '[');
  EXPECT_EQ(LoadYamlDocuments(deep).status().message(),
            "nested deeper than 64 levels (line 1, column 65)");
  auto bad = LoadYamlDocuments("a: [1, 2\n");
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("(line "), std::string::npos) << bad.status().message();
}

}  // namespace
}  // namespace orrery
