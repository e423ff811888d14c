// Dynamic batching's tensor work: compatibility, concatenation and split.
#include "tensor/batch.h"

#include <gtest/gtest.h>

#include <climits>
#include <cstring>
#include <string>
#include <vector>

namespace orrery {
namespace {

// A fixed-size tensor from its values (row-major).
template <typename T>
Tensor Fixed(std::string name, DataType type, std::vector<int64_t> shape, std::vector<T> values) {
  Tensor tensor{std::move(name), type, std::move(shape), {}};
  tensor.data.resize(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(tensor.data.data(), values.data(), tensor.data.size());
  return tensor;
}

Tensor Bytes(std::string name, std::vector<int64_t> shape, const std::vector<std::string>& elements) {
  return Tensor{std::move(name), DataType::kBytes, std::move(shape), BytesElements(elements)};
}

// One request of `n` rows with four inputs: FP32 [n,3], INT64 [n], BOOL [n]
// and BYTES [n,2]; `seed` makes every request's values distinct.
std::vector<Tensor> Request(int64_t n, int seed) {
  std::vector<float> f;
  std::vector<int64_t> i;
  std::vector<uint8_t> b;
  std::vector<std::string> s;
  for (int64_t r = 0; r < n; ++r) {
    for (int c = 0; c < 3; ++c) f.push_back(static_cast<float>(seed * 100 + r * 10 + c) + 0.5f);
    i.push_back(-(int64_t{1} << 40) * seed - r);
    b.push_back(static_cast<uint8_t>((seed + r) % 2));
    s.push_back("s" + std::to_string(seed) + "r" + std::to_string(r) + "a");
    s.push_back(std::string(static_cast<size_t>(r), 'x'));  // includes an empty element
  }
  return {Fixed<float>("f", DataType::kFp32, {n, 3}, f),
          Fixed<int64_t>("i", DataType::kInt64, {n}, i),
          Fixed<uint8_t>("b", DataType::kBool, {n}, b),
          Bytes("s", {n, 2}, s)};
}

void ExpectSameTensors(const std::vector<Tensor>& actual, const std::vector<Tensor>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t j = 0; j < actual.size(); ++j) {
    SCOPED_TRACE("tensor " + expected[j].name);
    EXPECT_EQ(actual[j].name, expected[j].name);
    EXPECT_EQ(actual[j].datatype, expected[j].datatype);
    EXPECT_EQ(actual[j].shape, expected[j].shape);
    EXPECT_EQ(actual[j].data, expected[j].data);
  }
}

void ExpectInternalNaming(const Result<std::vector<std::vector<Tensor>>>& result,
                          const std::string& name) {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), Code::kInternal);
  EXPECT_NE(result.status().message().find("'" + name + "'"), std::string::npos)
      << result.status().message();
}

// --- BatchCompatible ---

TEST(BatchCompatibleTest, SameSignatureWithDifferentRowCounts) {
  EXPECT_TRUE(BatchCompatible(Request(1, 0), Request(5, 1)));
  EXPECT_TRUE(BatchCompatible(Request(0, 0), Request(2, 1)));
  EXPECT_TRUE(BatchCompatible({}, {}));
}

TEST(BatchCompatibleTest, DifferentNamesOrDatatypes) {
  std::vector<Tensor> a = Request(1, 0);
  std::vector<Tensor> b = Request(2, 1);
  b[1].name = "j";
  EXPECT_FALSE(BatchCompatible(a, b));
  b = Request(2, 1);
  b[1].datatype = DataType::kUint64;
  EXPECT_FALSE(BatchCompatible(a, b));
}

TEST(BatchCompatibleTest, RankZeroIsNeverBatchable) {
  std::vector<Tensor> scalar = {Fixed<float>("x", DataType::kFp32, {}, {1})};
  EXPECT_FALSE(BatchCompatible(scalar, scalar));
  std::vector<Tensor> vector = {Fixed<float>("x", DataType::kFp32, {1}, {1})};
  EXPECT_FALSE(BatchCompatible(scalar, vector));
  EXPECT_FALSE(BatchCompatible(vector, scalar));
}

TEST(BatchCompatibleTest, TrailingDimensionsOrRankDiffer) {
  std::vector<Tensor> a = {Fixed<float>("x", DataType::kFp32, {1, 3}, {1, 2, 3})};
  std::vector<Tensor> b = {Fixed<float>("x", DataType::kFp32, {1, 2}, {1, 2})};
  EXPECT_FALSE(BatchCompatible(a, b));
  std::vector<Tensor> c = {Fixed<float>("x", DataType::kFp32, {1, 3, 1}, {1, 2, 3})};
  EXPECT_FALSE(BatchCompatible(a, c));
}

TEST(BatchCompatibleTest, TensorCountDiffers) {
  std::vector<Tensor> a = Request(1, 0);
  std::vector<Tensor> b = a;
  b.pop_back();
  EXPECT_FALSE(BatchCompatible(a, b));
  EXPECT_FALSE(BatchCompatible(b, a));
}

// --- ConcatBatch ---

class ConcatTest : public ::testing::Test {
 protected:
  // Rows 1, 2, 1.
  std::vector<std::vector<Tensor>> requests_ = {Request(1, 0), Request(2, 1), Request(1, 2)};
  std::vector<const std::vector<Tensor>*> Pointers() const {
    return {&requests_[0], &requests_[1], &requests_[2]};
  }
};

TEST_F(ConcatTest, Fp32RowsJoinInRequestOrder) {
  Result<std::vector<Tensor>> batch = ConcatBatch(Pointers());
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->size(), 4u);
  const Tensor& f = (*batch)[0];
  EXPECT_EQ(f.name, "f");
  EXPECT_EQ(f.datatype, DataType::kFp32);
  EXPECT_EQ(f.shape, (std::vector<int64_t>{4, 3}));
  std::vector<float> expected = {0.5f,   1.5f,   2.5f,   100.5f, 101.5f, 102.5f,
                                 110.5f, 111.5f, 112.5f, 200.5f, 201.5f, 202.5f};
  EXPECT_EQ(f.data, Fixed<float>("f", DataType::kFp32, {4, 3}, expected).data);
  EXPECT_TRUE(ValidateTensor(f).ok());
}

TEST_F(ConcatTest, Int64AndBoolRowsJoinInRequestOrder) {
  Result<std::vector<Tensor>> batch = ConcatBatch(Pointers());
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  const Tensor& i = (*batch)[1];
  EXPECT_EQ(i.shape, (std::vector<int64_t>{4}));
  const int64_t k = int64_t{1} << 40;
  EXPECT_EQ(i.data, Fixed<int64_t>("i", DataType::kInt64, {4}, {0, -k, -k - 1, -2 * k}).data);
  const Tensor& b = (*batch)[2];
  EXPECT_EQ(b.datatype, DataType::kBool);
  EXPECT_EQ(b.shape, (std::vector<int64_t>{4}));
  EXPECT_EQ(b.data, std::string("\x00\x01\x00\x00", 4));
}

TEST_F(ConcatTest, BytesElementsJoinInRequestOrder) {
  Result<std::vector<Tensor>> batch = ConcatBatch(Pointers());
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  const Tensor& s = (*batch)[3];
  EXPECT_EQ(s.datatype, DataType::kBytes);
  EXPECT_EQ(s.shape, (std::vector<int64_t>{4, 2}));
  EXPECT_EQ(s.data, BytesElements({"s0r0a", "", "s1r0a", "", "s1r1a", "x", "s2r0a", ""}));
  EXPECT_TRUE(ValidateTensor(s).ok());
}

TEST_F(ConcatTest, OneRequestIsItsOwnBatch) {
  Result<std::vector<Tensor>> batch = ConcatBatch({&requests_[1]});
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ExpectSameTensors(*batch, requests_[1]);
}

TEST(ConcatErrorsTest, EmptyListIsInvalid) {
  Result<std::vector<Tensor>> batch = ConcatBatch({});
  ASSERT_FALSE(batch.ok());
  EXPECT_EQ(batch.status().code(), Code::kInvalidArgument);
}

TEST(ConcatErrorsTest, IncompatibleRequestNamesTheTensor) {
  std::vector<Tensor> a = Request(1, 0);
  std::vector<Tensor> b = Request(2, 1);
  b[2].datatype = DataType::kUint8;  // "b" differs
  Result<std::vector<Tensor>> batch = ConcatBatch({&a, &b});
  ASSERT_FALSE(batch.ok());
  EXPECT_EQ(batch.status().code(), Code::kInvalidArgument);
  EXPECT_NE(batch.status().message().find("'b'"), std::string::npos) << batch.status().message();

  b = Request(2, 1);
  b[0].shape = {2, 1, 3};  // "f": rank differs
  batch = ConcatBatch({&a, &b});
  ASSERT_FALSE(batch.ok());
  EXPECT_EQ(batch.status().code(), Code::kInvalidArgument);
  EXPECT_NE(batch.status().message().find("'f'"), std::string::npos) << batch.status().message();
}

TEST(ConcatErrorsTest, CountMismatchScalarsAndNullAreInvalid) {
  std::vector<Tensor> a = Request(1, 0);
  std::vector<Tensor> fewer = a;
  fewer.pop_back();
  EXPECT_EQ(ConcatBatch({&a, &fewer}).status().code(), Code::kInvalidArgument);

  std::vector<Tensor> scalar = {Fixed<float>("x", DataType::kFp32, {}, {1})};
  Result<std::vector<Tensor>> batch = ConcatBatch({&scalar});
  ASSERT_FALSE(batch.ok());
  EXPECT_EQ(batch.status().code(), Code::kInvalidArgument);
  EXPECT_NE(batch.status().message().find("'x'"), std::string::npos) << batch.status().message();

  EXPECT_EQ(ConcatBatch({&a, nullptr}).status().code(), Code::kInvalidArgument);
}

TEST(ConcatErrorsTest, BatchDimensionOverflowIsInvalid) {
  std::vector<Tensor> a = {Tensor{"x", DataType::kBytes, {INT64_MAX}, {}}};
  std::vector<Tensor> b = {Tensor{"x", DataType::kBytes, {1}, BytesElements({"z"})}};
  Result<std::vector<Tensor>> batch = ConcatBatch({&a, &b});
  ASSERT_FALSE(batch.ok());
  EXPECT_EQ(batch.status().code(), Code::kInvalidArgument);
  EXPECT_NE(batch.status().message().find("'x'"), std::string::npos) << batch.status().message();
}

// --- SplitBatch ---

TEST_F(ConcatTest, SplitInvertsConcatForEveryDatatype) {
  Result<std::vector<Tensor>> batch = ConcatBatch(Pointers());
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  Result<std::vector<std::vector<Tensor>>> answers = SplitBatch(*batch, {1, 2, 1});
  ASSERT_TRUE(answers.ok()) << answers.status().ToString();
  ASSERT_EQ(answers->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE("request " + std::to_string(i));
    ExpectSameTensors((*answers)[i], requests_[i]);
  }
}

TEST(SplitTest, RowsWithZeroGetEmptyTensors) {
  std::vector<std::vector<Tensor>> requests = {Request(2, 0), Request(0, 1), Request(1, 2),
                                               Request(0, 3)};
  Result<std::vector<Tensor>> batch =
      ConcatBatch({&requests[0], &requests[1], &requests[2], &requests[3]});
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  Result<std::vector<std::vector<Tensor>>> answers = SplitBatch(*batch, {2, 0, 1, 0});
  ASSERT_TRUE(answers.ok()) << answers.status().ToString();
  ASSERT_EQ(answers->size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE("request " + std::to_string(i));
    ExpectSameTensors((*answers)[i], requests[i]);
  }
  EXPECT_EQ((*answers)[1][0].shape, (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE((*answers)[1][3].data.empty());
}

TEST(SplitTest, OutputsKeepTheirTrailingDimensions) {
  std::vector<float> values(3 * 2 * 2);
  for (size_t k = 0; k < values.size(); ++k) values[k] = static_cast<float>(k);
  std::vector<Tensor> outputs = {
      Fixed<float>("y", DataType::kFp32, {3, 2, 2}, values),
      Bytes("label", {3, 1, 2}, {"a", "bb", "", "ccc", "d", "ee"}),
      Fixed<float>("none", DataType::kFp32, {3, 0}, {}),
      Tensor{"nothing", DataType::kBytes, {3, 4, 0}, {}},
  };
  Result<std::vector<std::vector<Tensor>>> answers = SplitBatch(outputs, {1, 2});
  ASSERT_TRUE(answers.ok()) << answers.status().ToString();
  ASSERT_EQ(answers->size(), 2u);
  ExpectSameTensors((*answers)[0],
                    {Fixed<float>("y", DataType::kFp32, {1, 2, 2}, {0, 1, 2, 3}),
                     Bytes("label", {1, 1, 2}, {"a", "bb"}),
                     Fixed<float>("none", DataType::kFp32, {1, 0}, {}),
                     Tensor{"nothing", DataType::kBytes, {1, 4, 0}, {}}});
  ExpectSameTensors((*answers)[1],
                    {Fixed<float>("y", DataType::kFp32, {2, 2, 2}, {4, 5, 6, 7, 8, 9, 10, 11}),
                     Bytes("label", {2, 1, 2}, {"", "ccc", "d", "ee"}),
                     Fixed<float>("none", DataType::kFp32, {2, 0}, {}),
                     Tensor{"nothing", DataType::kBytes, {2, 4, 0}, {}}});
}

TEST(SplitTest, NoRequestsOrNoOutputs) {
  std::vector<Tensor> empty_batch = {Fixed<float>("y", DataType::kFp32, {0, 2}, {})};
  Result<std::vector<std::vector<Tensor>>> answers = SplitBatch(empty_batch, {});
  ASSERT_TRUE(answers.ok()) << answers.status().ToString();
  EXPECT_TRUE(answers->empty());
  answers = SplitBatch({}, {1, 2});
  ASSERT_TRUE(answers.ok()) << answers.status().ToString();
  ASSERT_EQ(answers->size(), 2u);
  EXPECT_TRUE((*answers)[0].empty());
  EXPECT_TRUE((*answers)[1].empty());
}

TEST(SplitErrorsTest, RankZeroOutput) {
  std::vector<Tensor> outputs = {Fixed<float>("ok", DataType::kFp32, {2}, {1, 2}),
                                 Fixed<float>("loss", DataType::kFp32, {}, {1})};
  ExpectInternalNaming(SplitBatch(outputs, {1, 1}), "loss");
}

TEST(SplitErrorsTest, BatchDimensionIsNotTheSumOfRows) {
  std::vector<Tensor> outputs = {Fixed<float>("y", DataType::kFp32, {3}, {1, 2, 3})};
  ExpectInternalNaming(SplitBatch(outputs, {1, 1}), "y");
  ExpectInternalNaming(SplitBatch(outputs, {2, 2}), "y");
}

TEST(SplitErrorsTest, DataSizeDisagreesWithShape) {
  std::vector<Tensor> outputs = {Fixed<float>("y", DataType::kFp32, {2, 2}, {1, 2, 3})};
  ExpectInternalNaming(SplitBatch(outputs, {1, 1}), "y");
  outputs = {Fixed<int64_t>("z", DataType::kInt64, {2}, {1, 2, 3})};
  ExpectInternalNaming(SplitBatch(outputs, {1, 1}), "z");
}

TEST(SplitErrorsTest, ShapeOverflowOrNegativeDimension) {
  std::vector<Tensor> outputs = {Tensor{"y", DataType::kFp32, {2, INT64_MAX, 2}, {}}};
  ExpectInternalNaming(SplitBatch(outputs, {1, 1}), "y");
  outputs = {Tensor{"y", DataType::kFp32, {2, -1}, {}}};
  ExpectInternalNaming(SplitBatch(outputs, {1, 1}), "y");
  // Elements overflow size_t bytes: count fits int64 but count x 8 does not.
  outputs = {Tensor{"w", DataType::kFp64, {2, int64_t{1} << 61}, {}}};
  ExpectInternalNaming(SplitBatch(outputs, {1, 1}), "w");
}

TEST(SplitErrorsTest, BytesElementRunsPastTheEnd) {
  Tensor s = Bytes("s", {2}, {"ab", "cd"});
  s.data.pop_back();  // the last element's length now claims one byte too many
  ExpectInternalNaming(SplitBatch({s}, {1, 1}), "s");
  Tensor t = Bytes("t", {2}, {"ab"});
  t.data += std::string("\x01\x00", 2);  // a truncated length prefix
  ExpectInternalNaming(SplitBatch({t}, {1, 1}), "t");
  Tensor u = Bytes("u", {1}, {});
  u.data = std::string("\xff\xff\xff\xff", 4);  // 4 GiB claimed, nothing there
  ExpectInternalNaming(SplitBatch({u}, {1}), "u");
}

TEST(SplitErrorsTest, BytesElementCountWrong) {
  Tensor few = Bytes("few", {2, 2}, {"a", "b", "c"});
  ExpectInternalNaming(SplitBatch({few}, {1, 1}), "few");
  Tensor many = Bytes("many", {2, 2}, {"a", "b", "c", "d", "e"});
  ExpectInternalNaming(SplitBatch({many}, {1, 1}), "many");
  Tensor stray = Bytes("stray", {2, 0}, {"a"});  // rows hold no elements, data is not empty
  ExpectInternalNaming(SplitBatch({stray}, {2, 0}), "stray");
}

TEST(SplitErrorsTest, NegativeRowsAreInternal) {
  std::vector<Tensor> outputs = {Fixed<float>("y", DataType::kFp32, {1}, {1})};
  Result<std::vector<std::vector<Tensor>>> answers = SplitBatch(outputs, {2, -1});
  ASSERT_FALSE(answers.ok());
  EXPECT_EQ(answers.status().code(), Code::kInternal);
}

}  // namespace
}  // namespace orrery
