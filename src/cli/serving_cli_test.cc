// Unit tests of `orrery infer`, `verify` and the serve flags without a
// server: input specs, request bodies, answers taken apart, the verify report.
#include <stdlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "api/server.h"
#include "cli/commands.h"
#include "cli/infer_io.h"
#include "cli/serving_output.h"
#include "core/files.h"
#include "tensor/npy.h"

namespace orrery::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

Tensor Fp32(std::string name, std::vector<int64_t> shape, std::vector<float> values) {
  Tensor tensor{std::move(name), DataType::kFp32, std::move(shape), {}};
  tensor.data.resize(values.size() * 4);
  std::memcpy(tensor.data.data(), values.data(), tensor.data.size());
  return tensor;
}

class ScratchDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "serving-cli-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path Write(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
    return dir_ / name;
  }
  fs::path dir_;
};

// ---- input specs ----

TEST(ParseInputSpec, TheThreeForms) {
  Result<InputSpec> spec = ParseInputSpec("req.json");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->kind, InputSpec::Kind::kRequestJson);
  EXPECT_EQ(spec->file, "req.json");
  spec = ParseInputSpec("data/x.npy");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->kind, InputSpec::Kind::kNpy);
  EXPECT_EQ(spec->name, "");
  spec = ParseInputSpec("input_1=data/x.npy");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->name, "input_1");
  EXPECT_EQ(spec->file, "data/x.npy");
}

TEST(ParseInputSpec, BadSpecsAreUsageErrors) {
  for (const char* text : {"", "x.txt", "x", ".npy", "=x.npy", "a=b.json", "a=", "x.npy.gz"}) {
    Result<InputSpec> spec = ParseInputSpec(text);
    ASSERT_FALSE(spec.ok()) << text;
    EXPECT_EQ(spec.status().code(), Code::kInvalidArgument) << text;
    EXPECT_NE(spec.status().message().find(text), std::string::npos) << text;
  }
}

TEST_F(ScratchDirTest, CheckInputSpecs) {
  Write("a.npy", "x");
  Write("req.json", "{}");
  auto spec = [this](const std::string& text) {
    std::string path = text;
    size_t equals = path.find('=');
    path.insert(equals == std::string::npos ? 0 : equals + 1, dir_.string() + "/");
    return *ParseInputSpec(path);
  };
  EXPECT_TRUE(CheckInputSpecs({spec("a.npy")}).ok());
  EXPECT_TRUE(CheckInputSpecs({spec("req.json")}).ok());
  EXPECT_TRUE(CheckInputSpecs({spec("x=a.npy"), spec("y=a.npy")}).ok());

  Status status = CheckInputSpecs({spec("x=a.npy"), spec("x=a.npy")});
  EXPECT_EQ(status.code(), Code::kInvalidArgument);
  EXPECT_NE(status.message().find("input x"), std::string::npos);
  status = CheckInputSpecs({spec("x=missing.npy")});
  EXPECT_EQ(status.code(), Code::kInvalidArgument);
  EXPECT_NE(status.message().find("missing.npy: no such file"), std::string::npos);
  EXPECT_EQ(CheckInputSpecs({spec("req.json"), spec("x=a.npy")}).code(), Code::kInvalidArgument);
  EXPECT_EQ(CheckInputSpecs({spec("a.npy"), spec("x=a.npy")}).code(), Code::kInvalidArgument);
  EXPECT_EQ(CheckInputSpecs({}).code(), Code::kInvalidArgument);
}

TEST_F(ScratchDirTest, LoadNpy) {
  Tensor x = Fp32("ignored", {2, 2}, {1, 2, 3, 4});
  fs::path file = Write("x.npy", *EncodeNpy(x));
  Result<Tensor> loaded = LoadNpy(file, "input");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->name, "input");
  EXPECT_EQ(loaded->shape, x.shape);
  EXPECT_EQ(loaded->data, x.data);

  Result<Tensor> bad = LoadNpy(Write("bad.npy", "not numpy"), "input");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("bad.npy"), std::string::npos);
}

// ---- request bodies ----

TEST(BinaryRequestBody, HeaderThenBytesInOrder) {
  Tensor a = Fp32("a", {1, 2}, {1.5f, -2});
  Tensor b{"b", DataType::kInt64, {1}, std::string("\x07\0\0\0\0\0\0\0", 8)};
  RequestOptions options;
  options.outputs = {"y"};
  options.binary_outputs = true;
  options.timeout_us = 250000;
  Result<InferBody> body = BinaryRequestBody({a, b}, options);
  ASSERT_TRUE(body.ok());
  ASSERT_TRUE(body->json_length.has_value());
  json header = json::parse(body->body.substr(0, *body->json_length));
  EXPECT_EQ(body->body.substr(*body->json_length), a.data + b.data);
  EXPECT_EQ(header["inputs"][0], json::parse(R"({"name":"a","datatype":"FP32","shape":[1,2],
                           "parameters":{"binary_data_size":8}})"));
  EXPECT_EQ(header["inputs"][1]["datatype"], "INT64");
  EXPECT_EQ(header["outputs"], json::parse(R"([{"name":"y","parameters":{"binary_data":true}}])"));
  EXPECT_EQ(header["parameters"], json::parse(R"({"binary_data_output":true,"timeout":250000})"));
}

TEST(BinaryRequestBody, NoOptionsNoExtraFields) {
  Result<InferBody> body = BinaryRequestBody({Fp32("a", {1}, {1})}, {});
  ASSERT_TRUE(body.ok());
  json header = json::parse(body->body.substr(0, *body->json_length));
  EXPECT_FALSE(header.contains("outputs"));
  EXPECT_FALSE(header.contains("parameters"));
}

TEST(JsonRequestBody, SentAsIsOrWithOptions) {
  std::string text = R"({"id":"7","inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}],
                         "outputs":[{"name":"y"}],"parameters":{"custom":1}})";
  Result<InferBody> body = JsonRequestBody(text, "req.json", {});
  ASSERT_TRUE(body.ok());
  EXPECT_FALSE(body->json_length.has_value());
  EXPECT_EQ(json::parse(body->body), json::parse(text));

  RequestOptions options;
  options.binary_outputs = true;
  options.timeout_us = 1000;
  body = JsonRequestBody(text, "req.json", options);
  ASSERT_TRUE(body.ok());
  json sent = json::parse(body->body);
  EXPECT_EQ(sent["outputs"][0]["parameters"]["binary_data"], true);
  EXPECT_EQ(sent["parameters"],
            json::parse(R"({"custom":1,"binary_data_output":true,"timeout":1000})"));

  options = {};
  options.outputs = {"p", "q"};
  sent = json::parse(JsonRequestBody(text, "req.json", options)->body);
  EXPECT_EQ(sent["outputs"], json::parse(R"([{"name":"p"},{"name":"q"}])"));
}

TEST(JsonRequestBody, RefusesWhatIsNotARequest) {
  RequestOptions timeout;
  timeout.timeout_us = 5;
  for (auto [text, options] : std::vector<std::pair<std::string, RequestOptions>>{
           {"nope", {}},
           {"[]", {}},
           {R"({"outputs":[]})", {}},
           {R"({"inputs":{}})", {}},
           {R"({"inputs":[],"parameters":3})", timeout}}) {
    Result<InferBody> body = JsonRequestBody(text, "req.json", options);
    ASSERT_FALSE(body.ok()) << text;
    EXPECT_EQ(body.status().code(), Code::kInvalidArgument) << text;
    EXPECT_NE(body.status().message().find("req.json"), std::string::npos) << text;
  }
}

// ---- answers ----

// A canned binary answer: y (FP32, binary), label (JSON data), s (BYTES, binary).
std::string CannedAnswer(size_t* json_length) {
  json header = json::parse(R"({"model_name":"acme/m","model_version":"3","outputs":[
      {"name":"y","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}},
      {"name":"label","datatype":"INT64","shape":[1],"data":[4]},
      {"name":"s","datatype":"BYTES","shape":[2],"parameters":{"binary_data_size":13}}]})");
  std::string text = header.dump();
  *json_length = text.size();
  return text + Fp32("y", {2}, {0.5f, 2}).data + std::string("\x02\0\0\0hi\x03\0\0\0abc", 13);
}

TEST(SplitInferAnswer, JsonThenEachBinaryOutputInOrder) {
  size_t length = 0;
  std::string body = CannedAnswer(&length);
  Result<InferAnswer> answer = SplitInferAnswer(body, std::to_string(length));
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->header["model_name"], "acme/m");
  ASSERT_EQ(answer->outputs.size(), 3u);
  ASSERT_TRUE(answer->outputs[0].tensor.has_value());
  EXPECT_EQ(answer->outputs[0].tensor->data, Fp32("y", {2}, {0.5f, 2}).data);
  EXPECT_EQ(answer->outputs[0].tensor->shape, std::vector<int64_t>{2});
  EXPECT_FALSE(answer->outputs[1].tensor.has_value());
  EXPECT_EQ(answer->outputs[1].json["data"][0], 4);
  ASSERT_TRUE(answer->outputs[2].tensor.has_value());
  EXPECT_EQ(answer->outputs[2].tensor->datatype, DataType::kBytes);
  EXPECT_EQ(answer->outputs[2].tensor->data.size(), 13u);
}

TEST(SplitInferAnswer, PlainJsonAndBadAnswers) {
  Result<InferAnswer> answer = SplitInferAnswer(R"({"outputs":[{"name":"y","data":[1]}]})", "");
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->outputs.size(), 1u);

  size_t length = 0;
  std::string body = CannedAnswer(&length);
  for (auto [text, header] : std::vector<std::pair<std::string, std::string>>{
           {body, ""},                               // binary bytes parsed as JSON
           {body, std::to_string(body.size() + 1)},  // header past the end
           {body, "x"},                              // not a number
           {body + "z", std::to_string(length)},     // bytes left over
           {body.substr(0, body.size() - 1), std::to_string(length)}}) {  // bytes missing
    Result<InferAnswer> bad = SplitInferAnswer(text, header);
    EXPECT_FALSE(bad.ok()) << header;
    if (!bad.ok()) {
      EXPECT_EQ(bad.status().code(), Code::kInternal);
    }
  }
}

TEST_F(ScratchDirTest, SaveOutputsWritesNpyAndJson) {
  size_t length = 0;
  std::string body = CannedAnswer(&length);
  InferAnswer answer = *SplitInferAnswer(body, std::to_string(length));
  Result<std::vector<fs::path>> files = SaveOutputs(answer, dir_ / "out");
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  ASSERT_EQ(files->size(), 3u);
  EXPECT_EQ((*files)[0], dir_ / "out" / "y.npy");
  EXPECT_EQ((*files)[1], dir_ / "out" / "label.json");
  EXPECT_EQ((*files)[2], dir_ / "out" / "s.json");
  Result<Tensor> y = DecodeNpy(*ReadFile((*files)[0]), "y");
  ASSERT_TRUE(y.ok());
  EXPECT_EQ(y->data, Fp32("y", {2}, {0.5f, 2}).data);
  EXPECT_EQ(json::parse(*ReadFile((*files)[1]))["data"], json::array({4}));
  json s = json::parse(*ReadFile((*files)[2]));
  EXPECT_EQ(s["data"], json::array({"hi", "abc"}));
  EXPECT_EQ(s["shape"], json::array({2}));
}

TEST_F(ScratchDirTest, SaveOutputsWidensBf16AndRefusesPathNames) {
  InferAnswer answer;
  Tensor bf16{"h", DataType::kBf16, {1}, std::string("\x80\x3f", 2)};  // 1.0
  answer.outputs.push_back({json{{"name", "h"}}, bf16});
  Result<std::vector<fs::path>> files = SaveOutputs(answer, dir_);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  Result<Tensor> h = DecodeNpy(*ReadFile((*files)[0]), "h");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->datatype, DataType::kFp32);
  EXPECT_EQ(h->data, Fp32("h", {1}, {1.0f}).data);

  for (const char* name : {"../evil", "..", ""}) {
    answer.outputs = {{json{{"name", name}}, std::nullopt}};
    EXPECT_FALSE(SaveOutputs(answer, dir_).ok()) << name;
  }
}

TEST(PrintInferAnswer, PrettyOrCompactWithNotesForBinary) {
  size_t length = 0;
  std::string body = CannedAnswer(&length);
  InferAnswer answer = *SplitInferAnswer(body, std::to_string(length));
  std::ostringstream out, notes;
  PrintInferAnswer(answer, /*compact=*/true, out, notes);
  EXPECT_EQ(out.str(), answer.header.dump() + "\n");
  EXPECT_NE(notes.str().find("output y: 8 bytes"), std::string::npos);
  EXPECT_NE(notes.str().find("output s: 13 bytes"), std::string::npos);
}

// ---- verify ----

json VerifyAnswer(bool ok) {
  json answer = json::parse(R"({"servable":"acme/m:3","ok":true,"examples":[
      {"index":0,"ok":true,"outputs":[{"name":"y","ok":true,"max_abs_error":1.5e-7}]},
      {"index":1,"ok":true,"outputs":[{"name":"y","ok":true,"max_abs_error":0}]}]})");
  if (!ok) {
    answer["ok"] = false;
    answer["examples"][1] = json::parse(R"({"index":1,"ok":false,"outputs":[
        {"name":"y","ok":false,"max_abs_error":0.25,"message":"differs at [3]"}]})");
    answer["examples"].push_back(
        json::parse(R"({"index":2,"ok":false,"message":"input x: bad shape","outputs":[]})"));
  }
  return answer;
}

TEST(PrintVerifyReport, AllReproduce) {
  std::ostringstream out;
  Status status = PrintVerifyReport(VerifyAnswer(true), false, out);
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(ExitCodeFor(status), 0);
  EXPECT_EQ(out.str(),
            "EXAMPLE  OUTPUT  OK   MAX ABS ERROR  MESSAGE\n"
            "0        y       yes  1.5e-07        \n"
            "1        y       yes  0              \n"
            "verified acme/m:3: all 2 examples reproduce\n");
}

TEST(PrintVerifyReport, SomeDoNotReproduce) {
  std::ostringstream out;
  Status status = PrintVerifyReport(VerifyAnswer(false), false, out);
  EXPECT_EQ(ExitCodeFor(status), 1);
  EXPECT_EQ(status.message(), "acme/m:3: 2 of 3 examples do not reproduce");
  EXPECT_NE(out.str().find("1        y       no   0.25           differs at [3]\n"),
            std::string::npos)
      << out.str();
  EXPECT_NE(out.str().find("2        -       no                  input x: bad shape\n"),
            std::string::npos)
      << out.str();
  EXPECT_EQ(out.str().find("verified"), std::string::npos);
}

TEST(PrintVerifyReport, JsonPrintsTheAnswer) {
  std::ostringstream out;
  Status status = PrintVerifyReport(VerifyAnswer(false), true, out);
  EXPECT_EQ(ExitCodeFor(status), 1);
  EXPECT_EQ(json::parse(out.str()), VerifyAnswer(false));
}

// ---- command lines ----

// CLI11 takes the arguments as a reversed vector.
std::vector<std::string> Reversed(std::vector<std::string> argv) {
  std::reverse(argv.begin(), argv.end());
  return argv;
}

// Parses `argv` against the client commands; true when CLI11 accepts it.
bool Parses(std::vector<std::string> argv) {
  CLI::App app("test", "orrery");
  app.require_subcommand(1);
  CommandSet set;
  AddServingCommands(app, set);
  try {
    app.parse(Reversed(std::move(argv)));
  } catch (const CLI::ParseError&) {
    return false;
  }
  return true;
}

// Parses `argv` as the flags of `serve` into `options`; true when accepted.
bool ParsesServe(std::vector<std::string> argv, ServerOptions& options) {
  CLI::App serve("test", "serve");
  std::string data_dir;
  AddServeFlags(serve, options, data_dir);
  try {
    serve.parse(Reversed(std::move(argv)));
  } catch (const CLI::ParseError&) {
    return false;
  }
  return true;
}

TEST(CommandLines, ServeFlagsFillServerOptions) {
  ServerOptions options;
  ASSERT_TRUE(ParsesServe(
      {"--instances",           "8",           "--max-queue",           "4",
       "--timeout-ms",          "100",         "--no-warmup",           "--no-bubblewrap",
       "--trusted-native",      "acme/fast",   "--trusted-native",      "acme/other",
       "--allow-network",       "hub/fetcher", "--max-infer-bytes",     "1024",
       "--memory-budget-bytes", "2048",        "--worker-memory-bytes", "4096"},
      options));
  EXPECT_EQ(options.instances, 8);
  EXPECT_EQ(options.max_queue, 4u);
  EXPECT_EQ(options.timeout_ms, 100);
  EXPECT_FALSE(options.warmup);
  EXPECT_FALSE(options.bubblewrap);
  EXPECT_EQ(options.trusted_native, (std::set<std::string>{"acme/fast", "acme/other"}));
  EXPECT_EQ(options.network_allowed, std::set<std::string>{"hub/fetcher"});
  EXPECT_EQ(options.max_infer_bytes, 1024u);
  EXPECT_EQ(options.memory_budget_bytes, 2048u);
  EXPECT_EQ(options.worker_memory_bytes, 4096u);

  ServerOptions defaults;
  ASSERT_TRUE(ParsesServe({}, defaults));
  EXPECT_TRUE(defaults.warmup);
  EXPECT_TRUE(defaults.bubblewrap);
  EXPECT_TRUE(defaults.trusted_native.empty());
}

TEST(CommandLines, ServeFlagsRefuseBadValues) {
  for (std::vector<std::string> argv :
       std::vector<std::vector<std::string>>{{"--instances", "9"},
                                             {"--instances", "0"},
                                             {"--timeout-ms", "0"},
                                             {"--allow-network", "fetcher"},
                                             {"--trusted-native", "Acme/x"},
                                             {"--trusted-native", "a/b/c"}}) {
    ServerOptions options;
    EXPECT_FALSE(ParsesServe(argv, options)) << argv[0] << " " << argv[1];
  }
}

TEST(CommandLines, ServeCacheBytes) {
  ServerOptions defaults;
  ASSERT_TRUE(ParsesServe({}, defaults));
  EXPECT_EQ(defaults.cache_bytes, 256ull << 20);
  ServerOptions options;
  ASSERT_TRUE(ParsesServe({"--cache-bytes", "4096"}, options));
  EXPECT_EQ(options.cache_bytes, 4096u);
  ASSERT_TRUE(ParsesServe({"--cache-bytes", "0"}, options));  // disables caching
  EXPECT_EQ(options.cache_bytes, 0u);
  EXPECT_FALSE(ParsesServe({"--cache-bytes", "-1"}, options));
  EXPECT_FALSE(ParsesServe({"--cache-bytes", "lots"}, options));
}

TEST(CommandLines, InferAndVerify) {
  EXPECT_TRUE(Parses({"infer", "acme/m:3", "--input", "x=a.npy", "-i", "y=b.npy", "--output", "z",
                      "--save", "out", "--timeout-ms", "50"}));
  EXPECT_FALSE(Parses({"infer", "acme/m"}));  // --input is required
  EXPECT_FALSE(Parses({"infer", "acme/m", "-i", "a.npy", "--timeout-ms", "0"}));
  EXPECT_TRUE(Parses({"verify", "acme/m", "--json"}));
  EXPECT_FALSE(Parses({"verify"}));
}

}  // namespace
}  // namespace orrery::cli
