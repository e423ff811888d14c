// Publishing pipelines against a real catalog: steps pinned to numbers,
// and every catalog-level refusal (missing, invisible, deleted, nested,
// mismatched tensors) names the step and stores nothing.
#include "repository/pipeline_publish.h"

#include <gtest/gtest.h>

#include "core/files.h"
#include "repository/testing/test_repository.h"

namespace orrery {
namespace {

std::string Signature(const std::string& inputs, const std::string& outputs) {
  return "signature:\n  inputs: " + inputs + "\n  outputs: " + outputs + "\n";
}

std::string Header(const std::string& name, const std::string& backend) {
  return "name: " + name + "\ntitle: " + name +
         "\ncreators: [Tester]\nyear: 2026\nbackend: " + backend + "\n";
}

// A python servable: x FP32 [-1, n] -> y FP32 [-1, n].
std::string Step(const std::string& name, int n = 4, const std::string& datatype = "FP32") {
  std::string spec = "datatype: " + datatype + ", shape: [-1, " + std::to_string(n) + "]}]";
  return Header(name, "python") + "files: [model.py]\n" +
         Signature("[{name: x, " + spec, "[{name: y, " + spec);
}

// in -> first -> second -> out, both steps `servable` at `version`.
std::string Chain(const std::string& servable, const std::string& version) {
  return Header("chain", "pipeline") +
         Signature("[{name: in, datatype: FP32, shape: [-1, 4]}]",
                   "[{name: out, datatype: FP32, shape: [-1, 4]}]") +
         "pipeline:\n  steps:\n"
         "    - {name: first, servable: " +
         servable + ", version: " + version +
         ", inputs: {x: $inputs.in}}\n"
         "    - {name: second, servable: " +
         servable + ", version: " + version +
         ", inputs: {x: first.y}}\n"
         "  outputs: {out: second.y}\n";
}

class PipelinePublishTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = testing::OpenTestRepository("pipeline-publish-test-");
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    dir_ = opened->dir;
    repo_ = std::move(opened->repository);
    admin_ = opened->hub;
    lab_ = MakeTenant("lab");
    other_ = MakeTenant("other");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Caller MakeTenant(const std::string& tenant) {
    EXPECT_TRUE(repo_->CreateTenant(admin_, tenant).ok());
    return testing::MakeCaller(*repo_, admin_, tenant, Role::kPublisher).value();
  }

  Result<PublishResult> Publish(const Caller& caller, const std::string& name,
                                const std::string& manifest, const std::string& visibility) {
    auto path = dir_ / ("pkg-" + std::to_string(counter_++) + ".tar");
    std::map<std::string, std::string> files = {{"orrery.yaml", manifest}};
    if (manifest.find("model.py") != std::string::npos) files["model.py"] = "code";
    EXPECT_TRUE(testing::WritePackage(path, files).ok());
    PublishOptions options;
    options.visibility = visibility;
    return repo_->Publish(caller, PackageKind::kServable, {caller.tenant, name}, path, options);
  }

  void PublishOk(const Caller& caller, const std::string& name, const std::string& manifest,
                 const std::string& visibility = "private") {
    auto published = Publish(caller, name, manifest, visibility);
    ASSERT_TRUE(published.ok()) << published.status().ToString();
  }

  // The refusal of publishing `manifest` as lab/chain; checks nothing was stored.
  std::string Refusal(const std::string& manifest) {
    auto published = Publish(lab_, "chain", manifest, "private");
    EXPECT_FALSE(published.ok());
    if (published.ok()) return "";
    EXPECT_EQ(published.status().code(), Code::kUnprocessable) << published.status().ToString();
    EXPECT_EQ(repo_->Describe(lab_, PackageKind::kServable, {"lab", "chain"}).status().code(),
              Code::kNotFound);
    return published.status().message();
  }

  std::filesystem::path dir_;
  std::unique_ptr<Repository> repo_;
  Caller admin_, lab_, other_;
  int counter_ = 0;
};

TEST_F(PipelinePublishTest, AliasesArePinnedToNumbersInTheStoredManifest) {
  PublishOk(lab_, "double", Step("double"));
  PublishOk(lab_, "double", Step("double"));
  ASSERT_TRUE(
      repo_->SetAlias(lab_, PackageKind::kServable, {"lab", "double"}, "production", 1).ok());
  auto published = Publish(lab_, "chain", Chain("double", "production"), "private");
  ASSERT_TRUE(published.ok()) << published.status().ToString();
  const nlohmann::json& steps = published->version["manifest"]["pipeline"]["steps"];
  EXPECT_EQ(steps[0]["servable"], "lab/double");
  EXPECT_EQ(steps[0]["version"], 1);
  EXPECT_EQ(steps[1]["version"], 1);
  // Moving the alias later changes nothing about the published pipeline.
  ASSERT_TRUE(
      repo_->SetAlias(lab_, PackageKind::kServable, {"lab", "double"}, "production", 2).ok());
  auto stored = repo_->ResolveServable(lab_, {"lab", "chain"}, VersionRef{1, ""});
  ASSERT_TRUE(stored.ok());
  auto manifest = ParseManifest(stored->manifest);
  ASSERT_TRUE(manifest.ok());
  EXPECT_EQ(manifest->pipeline.steps[0].version.number, 1);
  EXPECT_EQ(stored->tenant_id, lab_.tenant_id);
}

TEST_F(PipelinePublishTest, AnotherTenantsPublicServableIsAStep) {
  PublishOk(other_, "double", Step("double"), "public");
  auto published = Publish(lab_, "chain", Chain("other/double", "latest"), "private");
  ASSERT_TRUE(published.ok()) << published.status().ToString();
  EXPECT_EQ(published->version["manifest"]["pipeline"]["steps"][0]["servable"], "other/double");
}

TEST_F(PipelinePublishTest, MissingAndInvisibleStepsReadAlike) {
  std::string missing = Refusal(Chain("other/nothing", "1"));
  EXPECT_NE(missing.find("pipeline step 'first': servable other/nothing version 1: "),
            std::string::npos)
      << missing;
  PublishOk(other_, "secret", Step("secret"), "private");
  std::string invisible = Refusal(Chain("other/secret", "1"));
  EXPECT_NE(invisible.find("pipeline step 'first': servable other/secret version 1: "),
            std::string::npos)
      << invisible;
  EXPECT_EQ(invisible.find("private"), std::string::npos) << invisible;
  EXPECT_NE(Refusal(Chain("double", "1")).find("pipeline step 'first'"), std::string::npos);
}

TEST_F(PipelinePublishTest, ADeletedVersionIsRefused) {
  PublishOk(lab_, "double", Step("double"));
  PublishOk(lab_, "double", Step("double"));
  ASSERT_TRUE(
      repo_->DeleteVersion(lab_, PackageKind::kServable, {"lab", "double"}, VersionRef{1, ""})
          .ok());
  std::string message = Refusal(Chain("double", "1"));
  EXPECT_NE(message.find("pipeline step 'first': servable lab/double version 1: "),
            std::string::npos)
      << message;
  PublishOk(lab_, "chain", Chain("double", "2"));
}

TEST_F(PipelinePublishTest, PipelinesDoNotNest) {
  PublishOk(lab_, "double", Step("double"));
  PublishOk(lab_, "inner", [] {
    std::string text = Chain("double", "1");
    text.replace(text.find("name: chain"), 11, "name: inner");
    return text;
  }());
  std::string message = Refusal(Chain("inner", "1"));
  EXPECT_NE(message.find("pipeline step 'first': lab/inner:1 is itself a pipeline"),
            std::string::npos)
      << message;
}

TEST_F(PipelinePublishTest, ConnectedTensorsMustAgree) {
  PublishOk(lab_, "wide", Step("wide", 8));
  PublishOk(lab_, "ints", Step("ints", 4, "INT64"));
  PublishOk(lab_, "any", Step("any", -1));
  std::string message = Refusal(Chain("wide", "1"));
  EXPECT_NE(message.find("pipeline step 'first': input 'x' <- $inputs.in: shapes differ "
                         "(FP32 [-1,4] into FP32 [-1,8])"),
            std::string::npos)
      << message;
  message = Refusal(Chain("ints", "1"));
  EXPECT_NE(message.find("pipeline step 'first': input 'x' <- $inputs.in: datatypes differ "
                         "(FP32 [-1,4] into INT64 [-1,4])"),
            std::string::npos)
      << message;
  // -1 matches any size: [-1, -1] feeds and takes [-1, 4].
  PublishOk(lab_, "chain", Chain("any", "1"));
}

TEST_F(PipelinePublishTest, StepsInputsAndOutputsMustExist) {
  PublishOk(lab_, "double", Step("double"));
  std::string base = Chain("double", "1");
  std::string wrong_input = base;
  wrong_input.replace(wrong_input.find("inputs: {x: first.y}"), 20, "inputs: {z: first.y}");
  std::string message = Refusal(wrong_input);
  EXPECT_NE(message.find("pipeline step 'second': input 'x' of lab/double:1 is not mapped"),
            std::string::npos)
      << message;
  std::string extra_input = base;
  extra_input.replace(extra_input.find("inputs: {x: first.y}"), 20,
                      "inputs: {x: first.y, z: first.y}");
  message = Refusal(extra_input);
  EXPECT_NE(message.find("pipeline step 'second': servable lab/double:1 has no input 'z'"),
            std::string::npos)
      << message;
  std::string wrong_output = base;
  wrong_output.replace(wrong_output.find("{x: first.y}"), 12, "{x: first.logits}");
  message = Refusal(wrong_output);
  EXPECT_NE(message.find("pipeline step 'second': input 'x' <- first.logits: servable "
                         "lab/double:1 has no output 'logits'"),
            std::string::npos)
      << message;
  std::string pipeline_output = base;
  pipeline_output.replace(pipeline_output.find("{name: out, datatype: FP32"), 26,
                          "{name: out, datatype: FP64");
  message = Refusal(pipeline_output);
  EXPECT_NE(message.find("pipeline step 'second': pipeline output 'out' <- second.y: datatypes "
                         "differ"),
            std::string::npos)
      << message;
}

}  // namespace
}  // namespace orrery
