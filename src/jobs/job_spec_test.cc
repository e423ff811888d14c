// The job spec parser: a full spec in YAML and JSON, the defaults, the
// canonical form round trip, and every refusal naming its field.
#include "jobs/job_spec.h"

#include <gtest/gtest.h>

namespace orrery {
namespace {

constexpr const char* kFull = R"(
name: train-digits
code: ./train
command: [python3, train.py, --epochs, 3]
inputs:
  digits: {dataset: lab/digits:2}
  base: {servable: lab/mlp}
resources: {cpus: 2, memory: 512MiB, gpus: 0, wall_time: 10m}
env: {SEED: 7, MODE: fast}
max_restarts: 1
executor: local
network: false
halt_grace: 5s
publish:
  servable: digits-trained
  manifest: {title: Trained digits}
)";

TEST(JobSpecTest, ReadsEveryField) {
  Result<JobSpec> spec = ParseJobSpec(kFull);
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->name, "train-digits");
  EXPECT_EQ(spec->code_dir, "./train");
  EXPECT_FALSE(spec->code_servable);
  EXPECT_EQ(spec->command, (std::vector<std::string>{"python3", "train.py", "--epochs", "3"}));
  ASSERT_EQ(spec->inputs.size(), 2u);
  EXPECT_EQ(spec->inputs[0].name, "base");  // sorted by name
  EXPECT_EQ(spec->inputs[0].kind, PackageKind::kServable);
  EXPECT_EQ(spec->inputs[0].Ref(), "lab/mlp:latest");
  EXPECT_EQ(spec->inputs[1].Ref(), "lab/digits:2");
  EXPECT_EQ(spec->resources.cpus, 2);
  EXPECT_EQ(spec->resources.memory_bytes, 512 << 20);
  EXPECT_EQ(spec->resources.wall_time_s, 600);
  EXPECT_EQ(spec->env, (std::map<std::string, std::string>{{"MODE", "fast"}, {"SEED", "7"}}));
  EXPECT_EQ(spec->max_restarts, 1);
  EXPECT_EQ(spec->halt_grace_s, 5);
  ASSERT_TRUE(spec->publish);
  EXPECT_EQ(spec->publish->servable, "digits-trained");
  EXPECT_EQ(spec->publish->manifest["title"], "Trained digits");
}

TEST(JobSpecTest, DefaultsAndTheCanonicalFormRoundTrip) {
  Result<JobSpec> spec =
      ParseJobSpec(R"({"name": "n", "code": {"servable": "lab/m:3"}, "command": ["/bin/true"]})");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  ASSERT_TRUE(spec->code_servable);
  EXPECT_EQ(spec->code_servable->Ref(), "lab/m:3");
  EXPECT_EQ(spec->resources.cpus, 1);
  EXPECT_EQ(spec->resources.memory_bytes, int64_t{2} << 30);
  EXPECT_EQ(spec->max_restarts, 2);
  EXPECT_EQ(spec->executor, JobExecutor::kLocal);
  EXPECT_FALSE(spec->network);
  EXPECT_FALSE(spec->publish);
  for (const char* text : {kFull, R"({"name": "n", "code": {"servable": "lab/m:3"},
                                     "command": ["/bin/true"]})",
                           R"({"name": "n", "command": ["/bin/true"], "code": {"upload":
                               "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}})"}) {
    Result<JobSpec> first = ParseJobSpec(text);
    ASSERT_TRUE(first.ok());
    Result<JobSpec> again = JobSpecFromJson(first->ToJson());
    ASSERT_TRUE(again.ok()) << again.status().message();
    EXPECT_EQ(again->ToJson(), first->ToJson());
  }
}

void ExpectRefused(const std::string& text, const std::string& message) {
  Result<JobSpec> spec = ParseJobSpec(text);
  ASSERT_FALSE(spec.ok()) << "accepted: " << text;
  EXPECT_EQ(spec.status().code(), Code::kUnprocessable) << spec.status().message();
  EXPECT_NE(spec.status().message().find(message), std::string::npos)
      << spec.status().message() << " lacks " << message;
}

TEST(JobSpecTest, RefusesWhatIsWrongNamingTheField) {
  const std::string base = "name: n\ncode: ./c\n";
  ExpectRefused("{{{", "job spec: not YAML or JSON");
  ExpectRefused("- a\n- b\n", "job spec: document: must be a mapping");
  ExpectRefused("name: n\n---\nname: m\n", "must be one YAML or JSON document");
  ExpectRefused(base, "job spec: command: required");
  ExpectRefused(base + "command: python3 train.py\n", "not a shell string");
  ExpectRefused(base + "command: []\n", "command: must be a list");
  ExpectRefused(base + "command: [../x]\n", "may not contain '..'");
  ExpectRefused(base + "command: [a]\ncomand: [b]\n", "job spec: comand: unknown key");
  ExpectRefused("code: ./c\ncommand: [a]\n", "job spec: name: required");
  ExpectRefused("name: a/b\ncode: ./c\ncommand: [a]\n", "job spec: name:");
  ExpectRefused("name: n\ncommand: [a]\n", "job spec: code: required");
  ExpectRefused("name: n\ncode: {servable: nope}\ncommand: [a]\n", "code.servable: 'nope'");
  ExpectRefused("name: n\ncode: {upload: abc}\ncommand: [a]\n", "code.upload: must be the 64 hex");
  ExpectRefused("name: n\ncode: {}\ncommand: [a]\n", "code: give exactly one");
  ExpectRefused(base + "command: [a]\ninputs: {d: {dataset: lab/d, servable: lab/s}}\n",
                "inputs.d: give exactly one");
  ExpectRefused(base + "command: [a]\ninputs: {'..': {dataset: lab/d}}\n", "inputs...: the input's name");
  ExpectRefused(base + "command: [a]\ninputs: {d: {dataset: lab/d:0}}\n", "inputs.d.dataset");
  ExpectRefused(base + "command: [a]\nresources: {cpus: 0}\n", "resources.cpus: must be an integer in 1..1024");
  ExpectRefused(base + "command: [a]\nresources: {memory: 2 GB}\n", "resources.memory: bad size");
  ExpectRefused(base + "command: [a]\nresources: {wall_time: forever}\n", "resources.wall_time: bad duration");
  ExpectRefused(base + "command: [a]\nresources: {disk: 1}\n", "resources.disk: unknown key");
  ExpectRefused(base + "command: [a]\nenv: {ORRERY_OUTPUT: x}\n", "env.ORRERY_OUTPUT: ORRERY_ names");
  ExpectRefused(base + "command: [a]\nenv: {1X: x}\n", "env.1X: a name is");
  ExpectRefused(base + "command: [a]\nenv: {X: [1]}\n", "env.X: must be a string");
  ExpectRefused(base + "command: [a]\nexecutor: k8s\n", "executor: 'k8s' is not one of local, slurm");
  ExpectRefused(base + "command: [a]\nnetwork: yes please\n", "network: must be true or false");
  ExpectRefused(base + "command: [a]\nmax_restarts: -1\n", "max_restarts: must be an integer");
  ExpectRefused(base + "command: [a]\npublish: {manifest: {}}\n", "publish.servable: required");
  ExpectRefused(base + "command: [a]\npublish: {servable: x, manifest: [1]}\n", "publish.manifest: must be a mapping");
  ExpectRefused(base + "command: [a]\nname: m\n", "duplicate key");
}

TEST(JobSpecTest, RefusesAnOversizedSpec) {
  Result<JobSpec> spec = ParseJobSpec("name: n\n#" + std::string(kMaxJobSpecBytes, 'x'));
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), Code::kTooLarge);
}

}  // namespace
}  // namespace orrery
