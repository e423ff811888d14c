// The `pipeline` section of the manifest: structure, references, cycles.
// Checks against the catalog are in pipeline_publish_test.cc.
#include <gtest/gtest.h>

#include <string>

#include "repository/manifest.h"

namespace orrery {
namespace {

// A pipeline manifest: pixels -> scale -> classify -> lookup, plus `steps`
// and `outputs` given as YAML flow text.
std::string Pipeline(const std::string& steps, const std::string& outputs,
                     const std::string& extra = "") {
  return "name: digits-pipeline\ntitle: Digits pipeline\ncreators: [Tester]\nyear: 2026\n"
         "backend: pipeline\n"
         "signature:\n"
         "  inputs: [{name: pixels, datatype: FP32, shape: [-1, 64]}]\n"
         "  outputs: [{name: label, datatype: INT64, shape: [-1]},"
         " {name: logits, datatype: FP32, shape: [-1, 10]}]\n" +
         extra + "pipeline:\n  steps: " + steps + "\n  outputs: " + outputs + "\n";
}

const char* kSteps =
    "[{name: scale, servable: demo/digits-standardise, version: 1, inputs: {x: $inputs.pixels}},"
    " {name: classify, servable: digits-mlp, version: production, inputs: {x: scale.y}},"
    " {name: lookup, servable: demo/labels, version: 3, inputs: {logits: classify.y}}]";
const char* kOutputs = "{label: lookup.label, logits: classify.y}";

std::string Error(const std::string& text) {
  Result<Manifest> manifest = ParseManifest(text);
  EXPECT_FALSE(manifest.ok()) << text;
  if (manifest.ok()) return "";
  EXPECT_EQ(manifest.status().code(), Code::kUnprocessable);
  return manifest.status().message();
}

TEST(ManifestPipelineTest, ParsesStepsReferencesAndVersions) {
  Result<Manifest> manifest = ParseManifest(Pipeline(kSteps, kOutputs));
  ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
  const PipelineSpec& pipeline = manifest->pipeline;
  ASSERT_EQ(pipeline.steps.size(), 3u);
  EXPECT_TRUE(manifest->files.empty());
  const PipelineStep& scale = pipeline.steps[0];
  EXPECT_EQ(scale.name, "scale");
  EXPECT_EQ(scale.servable, "demo/digits-standardise");
  EXPECT_EQ(scale.version.number, 1);
  ASSERT_EQ(scale.inputs.size(), 1u);
  EXPECT_EQ(scale.inputs.at("x").step, "");
  EXPECT_EQ(scale.inputs.at("x").tensor, "pixels");
  const PipelineStep& classify = pipeline.steps[1];
  EXPECT_EQ(classify.servable, "digits-mlp");  // bare: the publisher's tenant
  EXPECT_EQ(classify.version.alias, "production");
  EXPECT_EQ(classify.inputs.at("x").step, "scale");
  EXPECT_EQ(classify.inputs.at("x").tensor, "y");
  EXPECT_EQ(pipeline.outputs.at("label").ToString(), "lookup.label");
  EXPECT_EQ(pipeline.outputs.at("logits").ToString(), "classify.y");
}

TEST(ManifestPipelineTest, CanonicalJsonRoundTrips) {
  Result<Manifest> manifest = ParseManifest(Pipeline(kSteps, kOutputs));
  ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
  nlohmann::json json = manifest->ToJson();
  EXPECT_EQ(json["pipeline"]["steps"][0]["version"], 1);
  EXPECT_EQ(json["pipeline"]["steps"][1]["version"], "production");
  EXPECT_EQ(json["pipeline"]["steps"][0]["inputs"]["x"], "$inputs.pixels");
  EXPECT_EQ(json["pipeline"]["outputs"]["label"], "lookup.label");
  Result<Manifest> again = ParseManifest(json.dump());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->ToJson(), json);
}

TEST(ManifestPipelineTest, ATensorNameMayContainDots) {
  Result<Manifest> manifest =
      ParseManifest(Pipeline("[{name: a, servable: s, version: 1, inputs: {x.in: $inputs.pixels}}]",
                             "{label: a.out.label, logits: a.logits}"));
  ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
  EXPECT_EQ(manifest->pipeline.outputs.at("label").step, "a");
  EXPECT_EQ(manifest->pipeline.outputs.at("label").tensor, "out.label");
}

TEST(ManifestPipelineTest, SectionOnlyAndAlwaysWithBackendPipeline) {
  std::string text = Pipeline(kSteps, kOutputs);
  EXPECT_NE(Error(text.substr(0, text.find("pipeline:\n"))).find("pipeline: required"),
            std::string::npos);
  std::string torch = text;
  torch.replace(torch.find("backend: pipeline"), 17, "backend: torchscript\nfiles: [m.pt]");
  EXPECT_NE(Error(torch).find("pipeline: only allowed with backend: pipeline"), std::string::npos);
  std::string dataset =
      "name: d\nkind: dataset\ntitle: D\ncreators: [T]\nyear: 2026\n"
      "files: [a.csv]\npipeline: {steps: [], outputs: {}}\n";
  EXPECT_NE(Error(dataset).find("pipeline: not allowed for a dataset"), std::string::npos);
  EXPECT_NE(Error(Pipeline(kSteps, kOutputs, "batching: {max_batch_size: 8}\n"))
                .find("batching: not allowed for a pipeline"),
            std::string::npos);
  EXPECT_NE(Error(Pipeline("[]", kOutputs)).find("pipeline.steps"), std::string::npos);
}

TEST(ManifestPipelineTest, ACycleIsRefusedNamingItsSteps) {
  std::string cycle =
      "[{name: a, servable: s, version: 1, inputs: {x: c.y, p: $inputs.pixels}},"
      " {name: b, servable: s, version: 1, inputs: {x: a.y}},"
      " {name: c, servable: s, version: 1, inputs: {x: b.y}}]";
  std::string message = Error(Pipeline(cycle, "{label: c.y, logits: b.y}"));
  EXPECT_NE(message.find("the steps form a cycle: a -> c -> b -> a"), std::string::npos) << message;
  std::string self = "[{name: a, servable: s, version: 1, inputs: {x: a.y}}]";
  message = Error(Pipeline(self, "{label: a.y, logits: a.z}"));
  EXPECT_NE(message.find("cycle: a -> a"), std::string::npos) << message;
}

TEST(ManifestPipelineTest, ReferencesMustNameKnownStepsAndInputs) {
  std::string unknown_step =
      "[{name: a, servable: s, version: 1, inputs: {x: $inputs.pixels}},"
      " {name: b, servable: s, version: 1, inputs: {x: nope.y}}]";
  std::string message = Error(Pipeline(unknown_step, "{label: b.y, logits: a.y}"));
  EXPECT_NE(message.find("pipeline.steps[1].inputs.x: unknown step 'nope' in 'nope.y'"),
            std::string::npos)
      << message;
  std::string unknown_input = "[{name: a, servable: s, version: 1, inputs: {x: $inputs.image}}]";
  message = Error(Pipeline(unknown_input, "{label: a.y, logits: a.z}"));
  EXPECT_NE(message.find("the pipeline signature has no input 'image'"), std::string::npos)
      << message;
  message = Error(Pipeline(kSteps, "{label: missing.label, logits: classify.y}"));
  EXPECT_NE(message.find("pipeline.outputs.label: unknown step 'missing'"), std::string::npos)
      << message;
}

TEST(ManifestPipelineTest, ReferenceSyntax) {
  for (const char* bad : {"classify", ".y", "classify.", "$outputs.y"}) {
    std::string steps =
        std::string("[{name: a, servable: s, version: 1, inputs: {x: '") + bad + "'}}]";
    std::string message = Error(Pipeline(steps, "{label: a.y, logits: a.z}"));
    EXPECT_NE(message.find("pipeline.steps[0].inputs.x"), std::string::npos) << bad << message;
  }
  std::string message =
      Error(Pipeline("[{name: a, servable: s, version: 1, inputs: {x: [a, b]}}]", kOutputs));
  EXPECT_NE(message.find("must be a reference string"), std::string::npos) << message;
  message = Error(Pipeline("[{name: a, servable: s, version: 1, inputs: {}}]", kOutputs));
  EXPECT_NE(message.find("pipeline.steps[0].inputs: must be a non-empty mapping"),
            std::string::npos)
      << message;
}

TEST(ManifestPipelineTest, StepFieldsAreChecked) {
  struct Case {
    std::string step, expected;
  };
  const Case cases[] = {
      {"{name: a.b, servable: s, version: 1, inputs: {x: $inputs.pixels}}",
       "pipeline.steps[0].name: step name 'a.b' may only contain"},
      {"{name: a, servable: 'x/y/z', version: 1, inputs: {x: $inputs.pixels}}",
       "pipeline.steps[0].servable"},
      {"{name: a, servable: s, version: 01, inputs: {x: $inputs.pixels}}",
       "pipeline.steps[0].version"},
      {"{name: a, servable: s, inputs: {x: $inputs.pixels}}",
       "pipeline.steps[0].version: required"},
      {"{name: a, servable: s, version: 1}", "pipeline.steps[0].inputs: required"},
      {"{name: a, servable: s, version: 1, inputs: {x: $inputs.pixels}, retries: 3}",
       "pipeline.steps[0].retries: unknown key"},
  };
  for (const Case& c : cases) {
    std::string message = Error(Pipeline("[" + c.step + "]", "{label: a.y, logits: a.z}"));
    EXPECT_NE(message.find(c.expected), std::string::npos) << message;
  }
  std::string twice =
      "[{name: a, servable: s, version: 1, inputs: {x: $inputs.pixels}},"
      " {name: a, servable: t, version: 1, inputs: {x: $inputs.pixels}}]";
  EXPECT_NE(Error(Pipeline(twice, "{label: a.y, logits: a.z}"))
                .find("pipeline.steps[1].name: duplicate step name 'a'"),
            std::string::npos);
  std::string many = "[";
  for (int i = 0; i < 65; ++i) {
    many += std::string(i ? ", " : "") + "{name: s" + std::to_string(i) +
            ", servable: s, version: 1, inputs: {x: $inputs.pixels}}";
  }
  EXPECT_NE(Error(Pipeline(many + "]", kOutputs)).find("at most 64 steps"), std::string::npos);
}

TEST(ManifestPipelineTest, OutputsMatchTheSignatureAndEveryStepIsUsed) {
  std::string message = Error(Pipeline(kSteps, "{label: lookup.label}"));
  EXPECT_NE(message.find("signature output 'logits' is not mapped"), std::string::npos) << message;
  message = Error(Pipeline(kSteps, "{label: lookup.label, logits: classify.y, extra: scale.y}"));
  EXPECT_NE(message.find("pipeline.outputs.extra: not an output of the signature"),
            std::string::npos)
      << message;
  std::string unused =
      "[{name: a, servable: s, version: 1, inputs: {x: $inputs.pixels}},"
      " {name: b, servable: s, version: 1, inputs: {x: $inputs.pixels}}]";
  message = Error(Pipeline(unused, "{label: a.y, logits: a.z}"));
  EXPECT_NE(message.find("pipeline.steps[1]: step 'b' feeds no other step and no output"),
            std::string::npos)
      << message;
}

}  // namespace
}  // namespace orrery
