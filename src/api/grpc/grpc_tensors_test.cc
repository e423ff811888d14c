// The gRPC inference messages to and from the codec's requests and answers:
// typed and raw contents of every kind, the checks and their messages, the
// request parameters as REST reads them, and raw answers.
#include "api/grpc/grpc_tensors.h"

#include <gtest/gtest.h>

#include <cstring>

namespace orrery {
namespace {

using inference::ModelInferRequest;

ModelInferRequest::InferInputTensor* AddInput(ModelInferRequest& request, const std::string& name,
                                              const std::string& datatype,
                                              std::vector<int64_t> shape) {
  auto* input = request.add_inputs();
  input->set_name(name);
  input->set_datatype(datatype);
  for (int64_t dim : shape) input->add_shape(dim);
  return input;
}

template <typename T>
std::string Bytes(std::vector<T> values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

TEST(GrpcTensorsTest, TypedContentsOfEveryKind) {
  ModelInferRequest request;
  auto* fp32 = AddInput(request, "a", "FP32", {2});
  fp32->mutable_contents()->add_fp32_contents(1.5f);
  fp32->mutable_contents()->add_fp32_contents(-2.0f);
  auto* int8 = AddInput(request, "b", "INT8", {1, 2});
  int8->mutable_contents()->add_int_contents(-128);
  int8->mutable_contents()->add_int_contents(127);
  auto* u16 = AddInput(request, "c", "UINT16", {1});
  u16->mutable_contents()->add_uint_contents(65535);
  auto* flag = AddInput(request, "d", "BOOL", {2});
  flag->mutable_contents()->add_bool_contents(true);
  flag->mutable_contents()->add_bool_contents(false);
  auto* text = AddInput(request, "e", "BYTES", {2});
  text->mutable_contents()->add_bytes_contents("hi");
  text->mutable_contents()->add_bytes_contents(std::string("\0\xff", 2));
  auto* wide = AddInput(request, "f", "INT64", {1});
  wide->mutable_contents()->add_int64_contents(-(1ll << 40));
  Result<InferRequest> decoded = DecodeGrpcRequest(request);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  const auto& inputs = decoded->inputs;
  ASSERT_EQ(inputs.size(), 6u);
  EXPECT_EQ(inputs[0].data, Bytes<float>({1.5f, -2.0f}));
  EXPECT_EQ(inputs[1].shape, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(inputs[1].data, Bytes<int8_t>({-128, 127}));
  EXPECT_EQ(inputs[2].data, Bytes<uint16_t>({65535}));
  EXPECT_EQ(inputs[3].data, Bytes<uint8_t>({1, 0}));
  EXPECT_EQ(inputs[4].data, BytesElements({"hi", std::string("\0\xff", 2)}));
  EXPECT_EQ(inputs[5].data, Bytes<int64_t>({-(1ll << 40)}));
  EXPECT_FALSE(decoded->has_id);
}

TEST(GrpcTensorsTest, TypedContentsAreChecked) {
  auto message = [](ModelInferRequest request) {
    return DecodeGrpcRequest(request).status().message();
  };
  ModelInferRequest few;
  AddInput(few, "x", "FP32", {2, 3})->mutable_contents()->add_fp32_contents(1);
  EXPECT_EQ(message(few), "input 'x': shape [2,3] holds 6 elements, fp32_contents has 1");
  ModelInferRequest wide;
  AddInput(wide, "x", "INT8", {1})->mutable_contents()->add_int_contents(300);
  EXPECT_EQ(message(wide), "input 'x': 300 is out of range for its datatype");
  ModelInferRequest half;
  AddInput(half, "x", "FP16", {1});
  EXPECT_EQ(message(half), "input 'x': FP16 travels only as raw_input_contents");
  ModelInferRequest unknown;
  AddInput(unknown, "x", "FLOAT", {1});
  EXPECT_EQ(message(unknown), "input 'x': unknown datatype 'FLOAT'");
  ModelInferRequest negative;
  AddInput(negative, "x", "FP32", {-1});
  EXPECT_EQ(message(negative), "input 'x': shape [-1] has a negative dimension");
  ModelInferRequest shared;
  auto* input = AddInput(shared, "x", "FP32", {1});
  input->mutable_contents()->add_fp32_contents(1);
  (*input->mutable_parameters())["shared_memory_region"].set_string_param("r");
  EXPECT_EQ(message(shared), "input 'x': shared memory ('shared_memory_region') is not supported");
}

TEST(GrpcTensorsTest, RawContentsOnePerInputAndNotMixed) {
  ModelInferRequest request;
  AddInput(request, "x", "FP16", {2});
  AddInput(request, "y", "BYTES", {1});
  request.add_raw_input_contents(Bytes<uint16_t>({0x3c00, 0xc000}));
  request.add_raw_input_contents(BytesElements({"abc"}));
  Result<InferRequest> decoded = DecodeGrpcRequest(request);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->inputs[0].data, Bytes<uint16_t>({0x3c00, 0xc000}));
  EXPECT_EQ(decoded->inputs[1].data, BytesElements({"abc"}));

  ModelInferRequest short_raw;
  AddInput(short_raw, "x", "FP32", {2});
  short_raw.add_raw_input_contents(Bytes<float>({1}));
  EXPECT_EQ(DecodeGrpcRequest(short_raw).status().code(), Code::kInvalidArgument);
  ModelInferRequest missing;
  AddInput(missing, "x", "FP32", {1});
  AddInput(missing, "y", "FP32", {1});
  missing.add_raw_input_contents(Bytes<float>({1}));
  EXPECT_EQ(DecodeGrpcRequest(missing).status().message(),
            "raw_input_contents must have one entry per input: 1 for 2 inputs");
  ModelInferRequest mixed;
  AddInput(mixed, "x", "FP32", {1})->mutable_contents()->add_fp32_contents(1);
  mixed.add_raw_input_contents(Bytes<float>({1}));
  EXPECT_EQ(DecodeGrpcRequest(mixed).status().message(),
            "input 'x': contents and raw_input_contents cannot be mixed");
}

TEST(GrpcTensorsTest, ParametersMeanWhatTheyMeanOverRest) {
  ModelInferRequest request;
  request.set_id("r7");
  auto& parameters = *request.mutable_parameters();
  parameters["priority"].set_int64_param(2);
  parameters["timeout"].set_uint64_param(5000);
  parameters["pipeline_timings"].set_bool_param(true);
  auto* output = request.add_outputs();
  output->set_name("y");
  (*output->mutable_parameters())["binary_data"].set_bool_param(true);
  (*output->mutable_parameters())["classification"].set_int64_param(3);
  Result<InferRequest> decoded = DecodeGrpcRequest(request);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->id, "r7");
  EXPECT_TRUE(decoded->has_id);
  EXPECT_EQ(decoded->priority, 2);
  EXPECT_EQ(decoded->timeout_us, 5000);
  EXPECT_EQ(decoded->parameters["pipeline_timings"], true);
  ASSERT_EQ(decoded->outputs.size(), 1u);
  EXPECT_EQ(decoded->outputs[0].parameters, (nlohmann::json{{"classification", 3}}));

  ModelInferRequest negative;
  (*negative.mutable_parameters())["priority"].set_int64_param(-1);
  EXPECT_EQ(DecodeGrpcRequest(negative).status().message(),
            "parameter 'priority' must be a non-negative integer");
  ModelInferRequest text;
  (*text.mutable_parameters())["binary_data_output"].set_string_param("yes");
  EXPECT_EQ(DecodeGrpcRequest(text).status().message(),
            "parameter 'binary_data_output' must be a boolean");
  ModelInferRequest empty;
  (*empty.mutable_parameters())["x"];
  EXPECT_EQ(DecodeGrpcRequest(empty).status().message(), "parameter 'x' holds no value");
}

TEST(GrpcTensorsTest, AnswersAreRawWithTypedParameters) {
  InferResponse response;
  response.model_name = "lab/m";
  response.model_version = "3";
  response.id = "r1";
  response.has_id = true;
  response.parameters = {{"cache_hit", false}, {"count", 4}, {"timings", {{"a", 1}}}};
  Tensor y;
  y.name = "y";
  y.datatype = DataType::kFp32;
  y.shape = {1, 2};
  y.data = Bytes<float>({1, 2});
  response.outputs.push_back(y);
  inference::ModelInferResponse out;
  EncodeGrpcResponse(response, &out);
  EXPECT_EQ(out.model_name(), "lab/m");
  EXPECT_EQ(out.model_version(), "3");
  EXPECT_EQ(out.id(), "r1");
  ASSERT_EQ(out.outputs_size(), 1);
  EXPECT_EQ(out.outputs(0).datatype(), "FP32");
  EXPECT_EQ(out.outputs(0).shape_size(), 2);
  ASSERT_EQ(out.raw_output_contents_size(), 1);
  EXPECT_EQ(out.raw_output_contents(0), Bytes<float>({1, 2}));
  EXPECT_FALSE(out.parameters().at("cache_hit").bool_param());
  EXPECT_TRUE(out.parameters().at("cache_hit").has_bool_param());
  EXPECT_EQ(out.parameters().at("count").int64_param(), 4);
  EXPECT_EQ(out.parameters().at("timings").string_param(), R"({"a":1})");
}

}  // namespace
}  // namespace orrery
