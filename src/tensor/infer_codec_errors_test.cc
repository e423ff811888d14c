// Every request the codec must refuse: kInvalidArgument with a message that
// names the field or tensor, never a crash.
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <new>
#include <string>
#include <vector>

#include "tensor/infer_codec.h"

// g++ cannot see that these replacements match each other.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

// The largest single allocation made through operator new while
// g_track_allocations is set: a decoder that sizes a buffer from a declared
// shape before checking the body shows up here.
std::atomic<bool> g_track_allocations{false};
std::atomic<size_t> g_largest_allocation{0};

void* operator new(size_t size) {
  if (g_track_allocations.load(std::memory_order_relaxed)) {
    size_t seen = g_largest_allocation.load();
    while (size > seen && !g_largest_allocation.compare_exchange_weak(seen, size)) {
    }
  }
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace orrery {
namespace {

// Runs `work` on a thread with a stack of `bytes`: code that recursed once
// per nesting level would overflow it.
void RunOnSmallStack(size_t bytes, std::function<void()> work) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  ASSERT_EQ(pthread_attr_setstacksize(&attr, bytes), 0);
  pthread_t thread;
  auto run = [](void* arg) -> void* {
    (*static_cast<std::function<void()>*>(arg))();
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&thread, &attr, run, &work), 0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
}

// Decodes `body` and checks that it fails with a message containing `needle`.
void ExpectRefused(std::string_view body, std::string_view needle,
                   std::optional<uint64_t> header_length = {}, const DecodeLimits& limits = {}) {
  Result<InferRequest> request = DecodeInferRequest(body, header_length, limits);
  ASSERT_FALSE(request.ok()) << "accepted: " << body;
  EXPECT_EQ(request.status().code(), Code::kInvalidArgument);
  EXPECT_NE(request.status().message().find(needle), std::string::npos)
      << "message: " << request.status().message() << "\nwanted: " << needle << "\nbody: " << body;
}

// A request whose only input is `input` (a JSON object's text).
std::string WithInput(const std::string& input) {
  return R"({"inputs":[)" + input + "]}";
}

std::string Fp32Input(const std::string& shape, const std::string& data) {
  return WithInput(R"({"name":"x","datatype":"FP32","shape":)" + shape + R"(,"data":)" + data +
                   "}");
}

std::string TypedInput(const std::string& type, const std::string& data) {
  return WithInput(R"({"name":"x","datatype":")" + type + R"(","shape":[1],"data":)" + data + "}");
}

TEST(DecodeInferRequestErrors, NotJsonOrNotAnObject) {
  ExpectRefused("", "not valid JSON");
  ExpectRefused("{", "not valid JSON");
  ExpectRefused("nope", "not valid JSON");
  std::string valid = R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]})";
  ExpectRefused(valid + " x", "unexpected data after the JSON value (at byte " +
                                  std::to_string(valid.size() + 1) + ")");
  ExpectRefused(valid + '\0', "unexpected data after the JSON value");
  ExpectRefused(valid + valid, "unexpected data after the JSON value");
  ExpectRefused("{\"id\":\"\xff\"}", "not valid JSON");  // invalid UTF-8
  ExpectRefused("[]", "must be a JSON object");
  ExpectRefused("1", "must be a JSON object");
  ExpectRefused(R"("x")", "must be a JSON object");
}

TEST(DecodeInferRequestErrors, DeepNestingIsRefusedWithoutRecursion) {
  // 100,000 levels on a 256 KiB stack: one frame per level would overflow it.
  std::string deep(100000, '[');
  RunOnSmallStack(256 << 10, [&] {
    ExpectRefused(deep, "JSON object");
    ExpectRefused(R"({"x":)" + deep, "nested deeper than 64");
    ExpectRefused(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":)" + deep,
                  "nested deeper than 64");
  });

  std::string at_limit = R"({"x":)" + std::string(63, '[') + std::string(63, ']') +
                         R"(,"inputs":[)"
                         R"({"name":"x","datatype":"FP32","shape":[1],"data":[1]}]})";
  EXPECT_TRUE(DecodeInferRequest(at_limit, std::nullopt).ok());
  DecodeLimits shallow;
  shallow.max_depth = 4;
  ExpectRefused(Fp32Input("[1]", "[[[1]]]"), "nested deeper than 4", std::nullopt, shallow);
}

TEST(DecodeInferRequestErrors, Inputs) {
  ExpectRefused("{}", "'inputs' is required");
  ExpectRefused(R"({"inputs":{}})", "'inputs' must be an array");
  ExpectRefused(R"({"inputs":[]})", "'inputs' must not be empty");
  ExpectRefused(R"({"inputs":[1]})", "inputs[0] must be an object");
  ExpectRefused(R"({"inputs":[],"inputs":[]})", "duplicate key 'inputs'");
}

TEST(DecodeInferRequestErrors, InputNameDatatypeShape) {
  ExpectRefused(WithInput(R"({"datatype":"FP32","shape":[1],"data":[1]})"),
                "inputs[0]: 'name' is required");
  ExpectRefused(WithInput(R"({"name":7,"datatype":"FP32","shape":[1],"data":[1]})"),
                "inputs[0]: 'name' must be a string");
  ExpectRefused(WithInput(R"({"name":"x","name":"y","datatype":"FP32","shape":[1],"data":[1]})"),
                "input 'x': duplicate key 'name'");
  ExpectRefused(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]},
                              {"name":"x","datatype":"FP32","shape":[1],"data":[1]}]})",
                "input name 'x' appears more than once");
  ExpectRefused(WithInput(R"({"name":"x","shape":[1],"data":[1]})"),
                "input 'x': 'datatype' is required");
  for (const char* bad : {"FLOAT32", "fp32", "TYPE_FP32", "STRING", ""}) {
    ExpectRefused(TypedInput(bad, "[1]"), "input 'x': unknown datatype '" + std::string(bad) + "'");
  }
  ExpectRefused(WithInput(R"({"name":"x","datatype":"FP32","data":[1]})"),
                "input 'x': 'shape' is required");
  ExpectRefused(Fp32Input("3", "[1]"), "input 'x': 'shape' must be an array");
  for (const char* bad :
       {"[-1]", "[1.5]", "[\"2\"]", "[[1]]", "[9223372036854775808]", "[1e3]", "[null]"}) {
    ExpectRefused(Fp32Input(bad, "[1]"),
                  "input 'x': 'shape' must be an array of non-negative integers");
  }
}

TEST(DecodeInferRequestErrors, ElementCountOverflowAndLimit) {
  ExpectRefused(Fp32Input("[4294967296,4294967296,4294967296]", "[1]"), "overflows int64");
  ExpectRefused(Fp32Input("[1000000000,1000000000]", "[1]"),
                "has 1000000000000000000 elements, over the limit of 268435456");
  DecodeLimits small;
  small.max_elements = 4;
  ExpectRefused(Fp32Input("[5]", "[1,2,3,4,5]"), "'data' has more than 4 elements", std::nullopt,
                small);
  std::string json = WithInput(
      R"({"name":"x","datatype":"FP32","shape":[5],"parameters":{"binary_data_size":20}})");
  ExpectRefused(json + std::string(20, 'z'), "over the limit of 4", json.size(), small);
}

TEST(DecodeInferRequestErrors, HugeDeclaredShapeWithTinyBodyAllocatesNothingOfItsSize) {
  std::string json = WithInput(
      R"({"name":"x","datatype":"FP32","shape":[1000000000,1000000000],"parameters":{"binary_data_size":4}})");
  g_largest_allocation = 0;
  g_track_allocations = true;
  ExpectRefused(Fp32Input("[1000000000,1000000000]", "[1,2]"), "over the limit");
  ExpectRefused(Fp32Input("[16000000]", "[1,2]"), "needs 16000000 elements, data has 2");
  ExpectRefused(json + "abcd", "over the limit", json.size());
  g_track_allocations = false;
  EXPECT_LT(g_largest_allocation.load(), 64u << 10);  // 16,000,000 floats would be 64 MB
}

TEST(DecodeInferRequestErrors, DataAndBinaryDataSize) {
  ExpectRefused(WithInput(R"({"name":"x","datatype":"FP32","shape":[1]})"),
                "input 'x': needs 'data' or parameters.binary_data_size");
  std::string both = WithInput(
      R"({"name":"x","datatype":"FP32","shape":[1],"data":[1],"parameters":{"binary_data_size":4}})");
  ExpectRefused(both + "abcd", "input 'x': has both 'data' and parameters.binary_data_size",
                both.size());
  ExpectRefused(Fp32Input("[1]", "1"), "input 'x': 'data' must be an array");
  ExpectRefused(Fp32Input("[2,3]", "[1,2,3,4,5]"),
                "input 'x': shape [2,3] needs 6 elements, data has 5");
  ExpectRefused(Fp32Input("[2,3]", "[[1,2,3],[4,5,6],[7]]"),
                "shape [2,3] needs 6 elements, data has 7");
  ExpectRefused(Fp32Input("[1]", "[null]"),
                "'data' elements must be numbers, booleans or strings, got null");
  ExpectRefused(Fp32Input("[1]", "[{}]"), "got an object");
}

TEST(DecodeInferRequestErrors, ElementTypes) {
  ExpectRefused(TypedInput("BOOL", "[1]"), "element 0 is a number, BOOL needs true or false");
  ExpectRefused(TypedInput("BOOL", "[\"true\"]"), "BOOL needs true or false");
  ExpectRefused(TypedInput("INT32", "[1.5]"), "element 0 (1.5) is not an integer, as INT32 needs");
  ExpectRefused(TypedInput("INT32", "[1e2]"), "(1e2) is not an integer");
  ExpectRefused(TypedInput("INT64", "[NaN]"), "(NaN) is not an integer");
  ExpectRefused(TypedInput("INT32", "[true]"), "element 0 is a boolean, INT32 needs an integer");
  ExpectRefused(TypedInput("INT32", "[\"1\"]"), "element 0 is a string, INT32 needs an integer");
  ExpectRefused(TypedInput("UINT8", "[300]"), "element 0 (300) is out of range for UINT8");
  ExpectRefused(TypedInput("UINT8", "[-1]"), "(-1) is out of range for UINT8");
  ExpectRefused(TypedInput("UINT64", "[-5]"), "(-5) is out of range for UINT64");
  ExpectRefused(TypedInput("UINT64", "[18446744073709551616]"), "out of range for UINT64");
  ExpectRefused(TypedInput("INT8", "[128]"), "(128) is out of range for INT8");
  ExpectRefused(TypedInput("INT16", "[-32769]"), "out of range for INT16");
  ExpectRefused(TypedInput("INT32", "[2147483648]"), "out of range for INT32");
  ExpectRefused(TypedInput("INT64", "[9223372036854775808]"), "out of range for INT64");
  ExpectRefused(TypedInput("FP32", "[1e39]"), "(1e39) is out of range for FP32");
  ExpectRefused(TypedInput("FP32", "[-3.5e38]"), "out of range for FP32");
  ExpectRefused(TypedInput("FP64", "[1e309]"), "(1e309) is out of range for FP64");
  ExpectRefused(TypedInput("FP64", "[1.8e308]"), "(1.8e308) is out of range for FP64");
  ExpectRefused(TypedInput("FP32", "[\"1\"]"), "element 0 is a string, FP32 needs a number");
  ExpectRefused(TypedInput("BYTES", "[1]"), "element 0 is a number, BYTES needs a string");
  ExpectRefused(TypedInput("FP32", "[nan]"), "not valid JSON");
}

TEST(DecodeInferRequestErrors, HalfFloatsInJson) {
  ExpectRefused(
      TypedInput("FP16", "[1]"),
      "input 'x': FP16 data in JSON is not supported; send it with the binary tensor extension");
  ExpectRefused(TypedInput("BF16", "[1]"), "BF16 data in JSON is not supported");
  // "data" before "datatype": found when the input closes.
  ExpectRefused(WithInput(R"({"name":"x","data":[1],"shape":[1],"datatype":"FP16"})"),
                "FP16 data in JSON is not supported");
  ExpectRefused(WithInput(R"({"name":"x","data":[300],"shape":[1],"datatype":"UINT8"})"),
                "(300) is out of range for UINT8");
}

std::string BinaryInput(const std::string& type, const std::string& shape,
                        const std::string& size) {
  return R"({"name":"b","datatype":")" + type + R"(","shape":)" + shape +
         R"(,"parameters":{"binary_data_size":)" + size + "}}";
}

TEST(DecodeInferRequestErrors, BinaryPart) {
  std::string json = WithInput(BinaryInput("INT32", "[2]", "8"));
  ExpectRefused(json + "12345678", "Inference-Header-Content-Length 500 is larger than the body",
                500);
  ExpectRefused(json + "12345678", "raw binary request", 0);
  ExpectRefused(json + "1234567", "is 7 bytes, but inputs declare 8", json.size());
  ExpectRefused(json + "123456789", "is 9 bytes, but inputs declare 8", json.size());
  ExpectRefused(json, "is 0 bytes, but inputs declare 8");  // no header at all
  ExpectRefused(WithInput(BinaryInput("INT32", "[2]", "6")) + "123456",
                "input 'b': binary_data_size 6 does not match shape [2] of INT32 (8 bytes)",
                WithInput(BinaryInput("INT32", "[2]", "6")).size());
  for (const char* bad : {"-1", "1.5", "\"8\"", "true"}) {
    ExpectRefused(WithInput(BinaryInput("INT32", "[2]", bad)),
                  "input 'b': 'binary_data_size' must be a non-negative integer");
  }
}

TEST(DecodeInferRequestErrors, BinaryBytesFramingIsChecked) {
  std::string json = WithInput(BinaryInput("BYTES", "[2]", "9"));
  std::string one_element("\x05\0\0\0hello", 9);
  ExpectRefused(json + one_element, "BYTES data holds 1 elements, shape says 2", json.size());
  std::string overrun("\x09\0\0\0hello", 9);
  ExpectRefused(json + overrun, "BYTES element runs past the data", json.size());
}

TEST(DecodeInferRequestErrors, SharedMemoryIsRefused) {
  ExpectRefused(WithInput(R"({"name":"x","datatype":"FP32","shape":[1],
                              "parameters":{"shared_memory_region":"r"}})"),
                "input 'x': shared memory ('shared_memory_region') is not supported");
}

TEST(DecodeInferRequestErrors, Outputs) {
  std::string input = R"({"name":"x","datatype":"FP32","shape":[1],"data":[1]})";
  auto with_outputs = [&](const std::string& outputs) {
    return R"({"inputs":[)" + input + R"(],"outputs":)" + outputs + "}";
  };
  ExpectRefused(with_outputs("{}"), "'outputs' must be an array");
  ExpectRefused(with_outputs("[\"a\"]"), "outputs[0] must be an object");
  ExpectRefused(with_outputs(R"([{"parameters":{}}])"), "outputs[0]: 'name' is required");
  ExpectRefused(with_outputs(R"([{"name":1}])"), "outputs[0]: 'name' must be a string");
  ExpectRefused(with_outputs(R"([{"name":"a"},{"name":"a"}])"),
                "output name 'a' appears more than once");
  ExpectRefused(with_outputs(R"([{"name":"a","parameters":{"binary_data":1}}])"),
                "outputs[0]: 'binary_data' must be a boolean");
  ExpectRefused(with_outputs(R"([{"name":"a","parameters":[]}])"),
                "outputs[0]: 'parameters' must be an object");
  ExpectRefused(with_outputs(R"([{"name":"a","parameters":{"x":{}}}])"),
                "outputs[0]: parameter 'x' must be a string, number or boolean");
}

TEST(DecodeInferRequestErrors, IdAndParameters) {
  std::string inputs = R"("inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}])";
  auto with = [&](const std::string& field) { return "{" + field + "," + inputs + "}"; };
  ExpectRefused(with(R"("id":5)"), "'id' must be a string, got a number");
  ExpectRefused(with(R"("id":null)"), "'id' must be a string, got null");
  ExpectRefused(with(R"("parameters":[])"), "'parameters' must be an object");
  ExpectRefused(with(R"("parameters":{"a":{}})"),
                "parameter 'a' must be a string, number or boolean, got an object");
  ExpectRefused(with(R"("parameters":{"a":[1]})"), "got an array");
  ExpectRefused(with(R"("parameters":{"a":null})"), "got null");
  ExpectRefused(with(R"("parameters":{"a":NaN})"),
                "parameter 'a' must be a string, number or boolean, got NaN");
  ExpectRefused(with(R"("parameters":{"a":1,"a":2})"), "parameter 'a' appears more than once");
  for (const char* bad : {"-1", "1.5", "\"1\"", "true", "9223372036854775808"}) {
    ExpectRefused(with(std::string(R"("parameters":{"priority":)") + bad + "}"),
                  "parameter 'priority' must be a non-negative integer");
    ExpectRefused(with(std::string(R"("parameters":{"timeout":)") + bad + "}"),
                  "parameter 'timeout' must be a non-negative integer");
  }
  ExpectRefused(with(R"("parameters":{"binary_data_output":1})"),
                "parameter 'binary_data_output' must be a boolean");
  ExpectRefused(
      WithInput(R"({"name":"x","datatype":"FP32","shape":[1],"data":[1],"parameters":{"k":[]}})"),
      "input 'x': parameter 'k' must be a string, number or boolean");
}

// Random byte edits of valid bodies must give a value or a 400, never a
// crash or another code (run under sanitizers to check for overreads).
TEST(DecodeInferRequestErrors, MutatedBodiesNeverCrash) {
  const std::string json =
      R"({"id":"q","parameters":{"priority":1,"tag":"\u00e9"},"inputs":[)"
      R"({"name":"a","datatype":"FP32","shape":[2,2],"data":[[1.5,NaN],[-0,1e3]]},)"
      R"({"name":"b","datatype":"BYTES","shape":[1],"data":["x\"y"]},)"
      R"({"name":"c","datatype":"INT8","shape":[2],"parameters":{"binary_data_size":2}}],)"
      R"("outputs":[{"name":"o","parameters":{"binary_data":true}}]})";
  const std::string body = json + "\x01\xff";
  const char kAlphabet[] = "{}[]\",:0123456789-.eE+ntfaNI\\u\x00\xff\x80 ";
  uint64_t state = 12345;
  auto next = [&] { return state = state * 6364136223846793005ull + 1442695040888963407ull; };
  int accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string mutated = body;
    for (int edits = 1 + next() % 3; edits > 0; --edits) {
      size_t at = (next() >> 33) % mutated.size();
      char c = kAlphabet[(next() >> 33) % (sizeof(kAlphabet) - 1)];
      switch ((next() >> 33) % 3) {
        case 0: mutated[at] = c; break;
        case 1: mutated.insert(mutated.begin() + at, c); break;
        default: mutated.erase(at, 1); break;
      }
    }
    std::optional<uint64_t> header =
        (next() >> 33) % 2 ? std::optional<uint64_t>(json.size()) : std::nullopt;
    Result<InferRequest> request = DecodeInferRequest(mutated, header);
    if (request.ok()) {
      ++accepted;
    } else {
      EXPECT_EQ(request.status().code(), Code::kInvalidArgument) << request.status().ToString();
    }
  }
  EXPECT_GT(accepted, 0);
}

TEST(DecodeRawBinaryInputErrors, ShapesThatDoNotFit) {
  auto refused = [](std::string_view body, DataType type, std::vector<int64_t> shape,
                    std::string_view needle) {
    Result<Tensor> tensor = DecodeRawBinaryInput(body, "x", type, shape);
    ASSERT_FALSE(tensor.ok());
    EXPECT_EQ(tensor.status().code(), Code::kInvalidArgument);
    EXPECT_NE(tensor.status().message().find(needle), std::string::npos)
        << tensor.status().message();
  };
  refused("1234567", DataType::kFp32, {-1}, "cannot deduce the -1 dimension of [-1] from 7 bytes");
  refused("12345678", DataType::kFp32, {-1, 3}, "cannot deduce");
  refused("12345678", DataType::kFp32, {-1, 0}, "cannot deduce");
  refused("12345678", DataType::kFp32, {-1, -1}, "may have one -1");
  refused("12345678", DataType::kFp32, {-2}, "may have one -1");
  refused("12345678", DataType::kFp32, {3}, "raw binary request: tensor 'x': 8 bytes do not match");
  refused("abc", DataType::kBytes, {2}, "BYTES input 'x' must have shape [1]");
  refused("abc", DataType::kBytes, {-1}, "must have shape [1]");
  refused("abc", DataType::kBytes, {1, 2}, "must have shape [1]");
}

}  // namespace
}  // namespace orrery
