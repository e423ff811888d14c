// Happy paths of the inference codec, and a timing figure for the hot path.
// Error cases are in infer_codec_errors_test.cc.
#include "tensor/infer_codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

namespace orrery {
namespace {

template <typename T>
std::string Raw(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

InferRequest MustDecode(std::string_view body, std::optional<uint64_t> header_length = {}) {
  Result<InferRequest> request = DecodeInferRequest(body, header_length);
  EXPECT_TRUE(request.ok()) << request.status().ToString() << "\nbody: " << body;
  return request.ok() ? std::move(request).value() : InferRequest{};
}

// The JSON part of an encoded body, with the response's "outputs" array
// recast as a request's "inputs": the two share their element layout, so
// this feeds the encoder's output back into the decoder.
std::string OutputsAsRequest(const std::string& response_json) {
  size_t at = response_json.find("\"outputs\":[");
  return "{\"inputs\":" + response_json.substr(at + 10);
}

struct Sample {
  DataType type;
  std::vector<int64_t> shape;
  std::string json;  // the "data" array
  std::string raw;   // what it decodes to
};

std::vector<Sample> JsonSamples() {
  const double kNan = std::numeric_limits<double>::quiet_NaN();
  const double kInf = std::numeric_limits<double>::infinity();
  return {
      {DataType::kBool, {3}, "[true,false,true]", std::string("\1\0\1", 3)},
      {DataType::kUint8, {3}, "[0,7,255]", Raw<uint8_t>({0, 7, 255})},
      {DataType::kUint16, {2}, "[0,65535]", Raw<uint16_t>({0, 65535})},
      {DataType::kUint32, {2}, "[-0,4294967295]", Raw<uint32_t>({0, 4294967295u})},
      {DataType::kUint64,
       {2},
       "[1,18446744073709551615]",
       Raw<uint64_t>({1, std::numeric_limits<uint64_t>::max()})},
      {DataType::kInt8, {2}, "[-128,127]", Raw<int8_t>({-128, 127})},
      {DataType::kInt16, {2}, "[-32768,32767]", Raw<int16_t>({-32768, 32767})},
      {DataType::kInt32,
       {2},
       "[-2147483648,2147483647]",
       Raw<int32_t>({std::numeric_limits<int32_t>::min(), 2147483647})},
      {DataType::kInt64,
       {2},
       "[-9223372036854775808,9223372036854775807]",
       Raw<int64_t>({std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()})},
      {DataType::kFp32,
       {6},
       "[0.1,-2,3.4028235e38,1e-45,1e-50,-0.0]",
       Raw<float>({0.1f, -2.0f, 3.4028235e38f, 1e-45f, 0.0f, -0.0f})},
      {DataType::kFp32,
       {3},
       "[NaN,Infinity,-Infinity]",
       Raw<float>({std::nanf(""), std::numeric_limits<float>::infinity(),
                   -std::numeric_limits<float>::infinity()})},
      {DataType::kFp64,
       {6},
       "[0.1,1e308,5e-324,7,NaN,-Infinity]",
       Raw<double>({0.1, 1e308, 5e-324, 7.0, kNan, -kInf})},
      {DataType::kBytes,
       {3},
       R"(["abc","","\u00e9\u0000\"x"])",
       BytesElements({"abc", "", std::string("\xc3\xa9\0\"x", 5)})},
  };
}

std::string InputJson(const std::string& name, const Sample& s) {
  std::string shape;
  for (int64_t dim : s.shape) shape += (shape.empty() ? "" : ",") + std::to_string(dim);
  return R"({"name":")" + name + R"(","datatype":")" + std::string(DataTypeName(s.type)) +
         R"(","shape":[)" + shape + R"(],"data":)" + s.json + "}";
}

TEST(DecodeInferRequest, JsonDataForEveryDatatypeButHalfFloats) {
  for (const Sample& sample : JsonSamples()) {
    InferRequest request = MustDecode("{\"inputs\":[" + InputJson("x", sample) + "]}");
    ASSERT_EQ(request.inputs.size(), 1u);
    const Tensor& tensor = request.inputs[0];
    EXPECT_EQ(tensor.name, "x");
    EXPECT_EQ(tensor.datatype, sample.type);
    EXPECT_EQ(tensor.shape, sample.shape);
    EXPECT_EQ(tensor.data, sample.raw) << DataTypeName(sample.type) << " " << sample.json;
  }
}

TEST(DecodeInferRequest, NestedDataIsFlattened) {
  InferRequest request = MustDecode(
      R"({"inputs":[{"name":"a","datatype":"INT32","shape":[2,3],"data":[[1,2,3],[4,5,6]]},
                    {"name":"b","datatype":"INT32","shape":[2,2,1],"data":[[[1],[2]],[[3],[4]]]},
                    {"name":"c","datatype":"BYTES","shape":[2,1],"data":[["x"],["y"]]}]})");
  ASSERT_EQ(request.inputs.size(), 3u);
  EXPECT_EQ(request.inputs[0].data, Raw<int32_t>({1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(request.inputs[1].data, Raw<int32_t>({1, 2, 3, 4}));
  EXPECT_EQ(request.inputs[2].data, BytesElements({"x", "y"}));
}

TEST(DecodeInferRequest, FieldsInAnyOrderAndUnknownFieldsIgnored) {
  InferRequest request = MustDecode(R"({"model_name":"m","extra":{"deep":[[1],{"x":null}]},
      "inputs":[{"data":[1.5,2],"parameters":{"content_type":"np"},"shape":[2],
                 "datatype":"FP64","name":"late","note":[1,2]}]})");
  ASSERT_EQ(request.inputs.size(), 1u);
  EXPECT_EQ(request.inputs[0].data, Raw<double>({1.5, 2.0}));
  EXPECT_FALSE(request.has_id);
  EXPECT_TRUE(request.outputs.empty());
}

TEST(DecodeInferRequest, ScalarAndEmptyTensors) {
  InferRequest request = MustDecode(R"({"inputs":[
      {"name":"s","datatype":"INT64","shape":[],"data":[5]},
      {"name":"e","datatype":"FP32","shape":[0,4],"data":[]}]})");
  ASSERT_EQ(request.inputs.size(), 2u);
  EXPECT_EQ(request.inputs[0].data, Raw<int64_t>({5}));
  EXPECT_TRUE(request.inputs[1].data.empty());
}

TEST(DecodeInferRequest, IdOutputsAndParameters) {
  InferRequest request = MustDecode(R"({"id":"req-7","parameters":{"priority":2,"timeout":1500,
      "binary_data_output":true,"tag":"a","ratio":0.5,"big":18446744073709551615},
      "inputs":[{"name":"x","datatype":"BOOL","shape":[1],"data":[false]}],
      "outputs":[{"name":"a"},{"name":"b","parameters":{"binary_data":false,"classification":2}}]})");
  EXPECT_TRUE(request.has_id);
  EXPECT_EQ(request.id, "req-7");
  EXPECT_EQ(request.priority, 2);
  EXPECT_EQ(request.timeout_us, 1500);
  EXPECT_TRUE(request.binary_data_output);
  EXPECT_EQ(request.parameters["tag"], "a");
  EXPECT_EQ(request.parameters["ratio"], 0.5);
  EXPECT_EQ(request.parameters["big"], std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(request.parameters.size(), 6u);
  ASSERT_EQ(request.outputs.size(), 2u);
  EXPECT_EQ(request.outputs[0].name, "a");
  EXPECT_FALSE(request.outputs[0].binary.has_value());
  EXPECT_TRUE(request.outputs[0].parameters.is_null());
  EXPECT_EQ(request.outputs[1].binary, false);
  EXPECT_EQ(request.outputs[1].parameters, nlohmann::json({{"classification", 2}}));
}

TEST(DecodeInferRequest, EmptyIdIsStillAnId) {
  InferRequest request =
      MustDecode(R"({"id":"","inputs":[{"name":"x","datatype":"UINT8","shape":[1],"data":[1]}]})");
  EXPECT_TRUE(request.has_id);
  EXPECT_EQ(request.id, "");
}

Tensor SampleTensor(DataType type) {
  Tensor tensor{"t_" + std::string(DataTypeName(type)), type, {2, 2}, {}};
  if (type == DataType::kBytes) {
    tensor.data = BytesElements({"a", std::string("\xff\0", 2), "", "xyz"});
  } else {
    for (size_t i = 0; i < 4 * DataTypeSize(type); ++i)
      tensor.data += static_cast<char>(i * 37 + 1);
  }
  if (type == DataType::kBool) tensor.data = std::string("\1\0\0\1", 4);
  return tensor;
}

std::vector<DataType> AllTypes() {
  std::vector<DataType> types;
  for (int i = 0; i <= static_cast<int>(DataType::kBytes); ++i) types.push_back(DataType(i));
  return types;
}

TEST(DecodeInferRequest, BinaryDataForEveryDatatype) {
  for (DataType type : AllTypes()) {
    Tensor tensor = SampleTensor(type);
    std::string json = R"({"inputs":[{"name":"in","datatype":")" + std::string(DataTypeName(type)) +
                       R"(","shape":[2,2],"parameters":{"binary_data_size":)" +
                       std::to_string(tensor.data.size()) + "}}]}";
    InferRequest request = MustDecode(json + tensor.data, json.size());
    ASSERT_EQ(request.inputs.size(), 1u);
    EXPECT_EQ(request.inputs[0].datatype, type);
    EXPECT_EQ(request.inputs[0].shape, (std::vector<int64_t>{2, 2}));
    EXPECT_EQ(request.inputs[0].data, tensor.data) << DataTypeName(type);
  }
}

TEST(DecodeInferRequest, MixedJsonAndBinaryInputsTakeBinaryInOrder) {
  std::string first = Raw<int32_t>({1, 2}), third = BytesElements({"hello", "x"});
  std::string json = R"({"inputs":[
      {"name":"a","datatype":"INT32","shape":[2],"parameters":{"binary_data_size":8}},
      {"name":"b","datatype":"FP32","shape":[1],"data":[2.5]},
      {"name":"c","datatype":"BYTES","shape":[2],"parameters":{"binary_data_size":14}}]})";
  InferRequest request = MustDecode(json + first + third, json.size());
  ASSERT_EQ(request.inputs.size(), 3u);
  EXPECT_EQ(request.inputs[0].data, first);
  EXPECT_EQ(request.inputs[1].data, Raw<float>({2.5f}));
  EXPECT_EQ(request.inputs[2].data, third);
}

TEST(DecodeInferRequest, HeaderLengthCoveringTheWholeBodyIsPlainJson) {
  std::string json = R"({"inputs":[{"name":"a","datatype":"INT8","shape":[1],"data":[-3]}]} )";
  EXPECT_EQ(MustDecode(json, json.size()).inputs[0].data, Raw<int8_t>({-3}));
}

TEST(DecodeRawBinaryInput, DeducesTheVariableDimension) {
  std::string body = Raw<float>({1, 2, 3, 4, 5, 6, 7, 8});
  Result<Tensor> tensor = DecodeRawBinaryInput(body, "x", DataType::kFp32, {-1, 4});
  ASSERT_TRUE(tensor.ok()) << tensor.status().ToString();
  EXPECT_EQ(tensor->name, "x");
  EXPECT_EQ(tensor->shape, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(tensor->data, body);

  Result<Tensor> fixed = DecodeRawBinaryInput(body, "x", DataType::kFp64, {2, 2});
  ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
  EXPECT_EQ(fixed->shape, (std::vector<int64_t>{2, 2}));

  Result<Tensor> empty = DecodeRawBinaryInput("", "x", DataType::kInt16, {-1, 3});
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->shape, (std::vector<int64_t>{0, 3}));
}

TEST(DecodeRawBinaryInput, BytesBodyIsOneElement) {
  std::string body("\x89PNG\0\1", 6);
  Result<Tensor> tensor = DecodeRawBinaryInput(body, "image", DataType::kBytes, {1});
  ASSERT_TRUE(tensor.ok()) << tensor.status().ToString();
  EXPECT_EQ(tensor->shape, (std::vector<int64_t>{1}));
  EXPECT_EQ(tensor->data, BytesElements({body}));
}

InferResponse ResponseWith(std::vector<Tensor> outputs) {
  InferResponse response;
  response.model_name = "m";
  response.model_version = "3";
  response.outputs = std::move(outputs);
  return response;
}

TEST(EncodeInferResponse, JsonBodyLayout) {
  InferResponse response =
      ResponseWith({Tensor{"out", DataType::kFp32, {1, 3}, Raw<float>({0.1f, -2.0f, 1e20f})}});
  EncodedBody encoded = EncodeInferResponse(response, InferRequest{});
  EXPECT_FALSE(encoded.json_length.has_value());
  EXPECT_EQ(encoded.body,
            R"({"model_name":"m","model_version":"3","outputs":[{"name":"out","datatype":"FP32",)"
            R"("shape":[1,3],"data":[0.1,-2,1e+20]}]})");
  nlohmann::json parsed = nlohmann::json::parse(encoded.body);
  EXPECT_FALSE(parsed.contains("id"));
  EXPECT_FALSE(parsed.contains("parameters"));
}

TEST(EncodeInferResponse, IdParametersAndEscapes) {
  InferResponse response =
      ResponseWith({Tensor{"o\"\n", DataType::kBytes, {2}, BytesElements({"h\xc3\xa9", "\t\x01"})}});
  response.id = "req-\"7\"";
  response.has_id = true;
  response.parameters["note"] = "x";
  EncodedBody encoded = EncodeInferResponse(response, InferRequest{});
  nlohmann::json parsed = nlohmann::json::parse(encoded.body);
  EXPECT_EQ(parsed["id"], "req-\"7\"");
  EXPECT_EQ(parsed["parameters"]["note"], "x");
  EXPECT_EQ(parsed["outputs"][0]["name"], "o\"\n");
  EXPECT_EQ(parsed["outputs"][0]["data"], nlohmann::json({"h\xc3\xa9", "\t\x01"}));
  EXPECT_NE(encoded.body.find(R"("\t\u0001")"), std::string::npos) << encoded.body;
}

TEST(EncodeInferResponse, EchoesTheDecodedId) {
  InferRequest request = MustDecode(
      R"({"id":"abc","inputs":[{"name":"x","datatype":"UINT8","shape":[1],"data":[1]}]})");
  InferResponse response = ResponseWith({});
  response.id = request.id;
  response.has_id = request.has_id;
  EXPECT_EQ(nlohmann::json::parse(EncodeInferResponse(response, request).body)["id"], "abc");
}

TEST(EncodeInferResponse, InvalidUtf8NamesGetReplacementCharacters) {
  InferResponse response = ResponseWith({});
  response.model_name = "m\xff";
  nlohmann::json parsed = nlohmann::json::parse(EncodeInferResponse(response, {}).body);
  EXPECT_EQ(parsed["model_name"], "m\xef\xbf\xbd");
}

// Every datatype JSON can carry survives encode -> decode bit for bit,
// including NaN, infinities, signed zero, denormals and integer extremes.
TEST(EncodeInferResponse, JsonRoundTripsThroughTheDecoder) {
  std::vector<Tensor> outputs;
  for (const Sample& sample : JsonSamples()) {
    outputs.push_back(
        {"o" + std::to_string(outputs.size()), sample.type, sample.shape, sample.raw});
  }
  Tensor pi{"pi", DataType::kFp32, {3}, Raw<float>({3.14159274f, 1.17549435e-38f, 16777217.0f})};
  outputs.push_back(pi);
  EncodedBody encoded = EncodeInferResponse(ResponseWith(outputs), InferRequest{});
  ASSERT_FALSE(encoded.json_length.has_value());
  EXPECT_NE(encoded.body.find("[3.1415927,1.1754944e-38,16777216]"), std::string::npos);
  InferRequest request = MustDecode(OutputsAsRequest(encoded.body));
  ASSERT_EQ(request.inputs.size(), outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    EXPECT_EQ(request.inputs[i].datatype, outputs[i].datatype);
    EXPECT_EQ(request.inputs[i].shape, outputs[i].shape);
    EXPECT_EQ(request.inputs[i].data, outputs[i].data) << DataTypeName(outputs[i].datatype);
  }
}

TEST(EncodeInferResponse, BinaryRoundTripsForEveryDatatype) {
  std::vector<Tensor> outputs;
  for (DataType type : AllTypes()) outputs.push_back(SampleTensor(type));
  InferRequest request;
  request.binary_data_output = true;
  EncodedBody encoded = EncodeInferResponse(ResponseWith(outputs), request);
  ASSERT_TRUE(encoded.json_length.has_value());
  std::string json = encoded.body.substr(0, *encoded.json_length);
  nlohmann::json parsed = nlohmann::json::parse(json);
  for (size_t i = 0; i < outputs.size(); ++i) {
    EXPECT_FALSE(parsed["outputs"][i].contains("data"));
    EXPECT_EQ(parsed["outputs"][i]["parameters"]["binary_data_size"], outputs[i].data.size());
  }
  // The response's outputs decode as a request's inputs, binary part and all.
  std::string as_request = OutputsAsRequest(json);
  InferRequest decoded =
      MustDecode(as_request + encoded.body.substr(json.size()), as_request.size());
  ASSERT_EQ(decoded.inputs.size(), outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    EXPECT_EQ(decoded.inputs[i].data, outputs[i].data) << DataTypeName(outputs[i].datatype);
  }
}

TEST(EncodeInferResponse, PerOutputBinaryOverridesTheRequestDefault) {
  Tensor a{"a", DataType::kInt32, {1}, Raw<int32_t>({7})};
  Tensor b{"b", DataType::kInt32, {1}, Raw<int32_t>({8})};
  InferRequest request = MustDecode(R"({"parameters":{"binary_data_output":true},
      "inputs":[{"name":"x","datatype":"UINT8","shape":[1],"data":[1]}],
      "outputs":[{"name":"a","parameters":{"binary_data":false}},{"name":"b"}]})");
  EncodedBody encoded = EncodeInferResponse(ResponseWith({a, b}), request);
  ASSERT_TRUE(encoded.json_length.has_value());
  nlohmann::json parsed = nlohmann::json::parse(encoded.body.substr(0, *encoded.json_length));
  EXPECT_EQ(parsed["outputs"][0]["data"], nlohmann::json({7}));
  EXPECT_EQ(parsed["outputs"][1]["parameters"]["binary_data_size"], 4);
  EXPECT_EQ(encoded.body.substr(*encoded.json_length), b.data);

  request.binary_data_output = false;
  request.outputs[0].binary = true;
  encoded = EncodeInferResponse(ResponseWith({a, b}), request);
  ASSERT_TRUE(encoded.json_length.has_value());
  parsed = nlohmann::json::parse(encoded.body.substr(0, *encoded.json_length));
  EXPECT_EQ(parsed["outputs"][0]["parameters"]["binary_data_size"], 4);
  EXPECT_EQ(parsed["outputs"][1]["data"], nlohmann::json({8}));
  EXPECT_EQ(encoded.body.substr(*encoded.json_length), a.data);
}

TEST(EncodeInferResponse, HalfFloatsAndNonUtf8BytesAlwaysGoBinary) {
  Tensor half = SampleTensor(DataType::kFp16), bf16 = SampleTensor(DataType::kBf16);
  Tensor text{"text", DataType::kBytes, {1}, BytesElements({"ok"})};
  Tensor blob{"blob", DataType::kBytes, {2}, BytesElements({"ok", "\xc3"})};
  EncodedBody encoded = EncodeInferResponse(ResponseWith({half, text, bf16, blob}), InferRequest{});
  ASSERT_TRUE(encoded.json_length.has_value());
  nlohmann::json parsed = nlohmann::json::parse(encoded.body.substr(0, *encoded.json_length));
  EXPECT_EQ(parsed["outputs"][0]["parameters"]["binary_data_size"], 8);
  EXPECT_EQ(parsed["outputs"][1]["data"], nlohmann::json({"ok"}));
  EXPECT_EQ(parsed["outputs"][2]["parameters"]["binary_data_size"], 8);
  EXPECT_EQ(parsed["outputs"][3]["parameters"]["binary_data_size"], blob.data.size());
  EXPECT_EQ(encoded.body.substr(*encoded.json_length), half.data + bf16.data + blob.data);
}

TEST(EncodeInferResponse, RawBinaryRequestSendsEverythingBinary) {
  Tensor a{"a", DataType::kBool, {2}, std::string("\1\0", 2)};
  InferRequest request;
  request.outputs.push_back({"a", false, {}});
  EncodedBody encoded =
      EncodeInferResponse(ResponseWith({a}), request, /*raw_binary_request=*/true);
  ASSERT_TRUE(encoded.json_length.has_value());
  EXPECT_EQ(encoded.body.substr(*encoded.json_length), a.data);
}

TEST(EncodeInferResponse, MalformedOutputDataIsNotOverread) {
  Tensor short_fp32{"f", DataType::kFp32, {4}, Raw<float>({1.0f})};
  Tensor bad_bytes{"b", DataType::kBytes, {2}, std::string("\x05\0\0\0ab", 6)};
  std::string body = EncodeInferResponse(ResponseWith({short_fp32, bad_bytes}), {}).body;
  nlohmann::json parsed = nlohmann::json::parse(body);
  EXPECT_EQ(parsed["outputs"][0]["data"], nlohmann::json({1.0}));
  EXPECT_EQ(parsed["outputs"][1]["data"], nlohmann::json::array());
}

// A 1x16 FP32 request whose numbers are written as Python's json writes a
// float32 widened to double (17 digits), or with the 9 that float32 needs.
// (Its decode + encode time is measured by bench/, not here.)
std::string Fp32Body(bool python_digits) {
  std::string data;
  for (int i = 0; i < 16; ++i) {
    float value = std::sin(static_cast<float>(i + 1)) * 3.0f;
    char text[32];
    // Python's json writes a float32 widened to double: up to 17 digits.
    int n = python_digits ? std::snprintf(text, sizeof(text), "%.17g", static_cast<double>(value))
                          : std::snprintf(text, sizeof(text), "%.9g", value);
    data += (i ? "," : "") + std::string(text, n);
  }
  return R"({"id":"42","inputs":[{"name":"INPUT0","shape":[1,16],"datatype":"FP32","data":[)" +
         data + R"(]}],"outputs":[{"name":"OUTPUT0","parameters":{"binary_data":false}}]})";
}

TEST(InferCodecTest, Fp32ValuesReadBackExactlyFrom9Or17Digits) {
  for (bool python_digits : {true, false}) {
    Result<InferRequest> request = DecodeInferRequest(Fp32Body(python_digits), std::nullopt);
    ASSERT_TRUE(request.ok()) << request.status().ToString();
    const Tensor& input = request->inputs[0];
    ASSERT_EQ(input.data.size(), 64u);
    for (int i = 0; i < 16; ++i) {
      float got;
      std::memcpy(&got, input.data.data() + 4 * i, 4);
      EXPECT_EQ(got, std::sin(static_cast<float>(i + 1)) * 3.0f) << i;
    }
  }
}

}  // namespace
}  // namespace orrery
