// Tensor basics: element counts, validation and TensorValues.
#include "tensor/tensor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

namespace orrery {
namespace {

template <typename T>
Tensor Make(DataType type, std::vector<T> values) {
  Tensor tensor{"t", type, {static_cast<int64_t>(values.size())}, {}};
  tensor.data.resize(values.size() * sizeof(T));
  std::memcpy(tensor.data.data(), values.data(), tensor.data.size());
  return tensor;
}

TEST(TensorTest, ValuesWidenEveryNumericType) {
  EXPECT_EQ(TensorValues(Make<uint8_t>(DataType::kBool, {0, 1})), (std::vector<double>{0, 1}));
  EXPECT_EQ(TensorValues(Make<int64_t>(DataType::kInt64, {-3, 1ll << 40})),
            (std::vector<double>{-3, 1099511627776.0}));
  EXPECT_EQ(TensorValues(Make<float>(DataType::kFp32, {1.5f, -2})), (std::vector<double>{1.5, -2}));
  // FP16: 1.0 = 0x3c00, -2.0 = 0xc000, the smallest subnormal = 0x0001, +Inf = 0x7c00.
  std::vector<double> half =
      TensorValues(Make<uint16_t>(DataType::kFp16, {0x3c00, 0xc000, 1, 0x7c00}));
  EXPECT_EQ(half[0], 1.0);
  EXPECT_EQ(half[1], -2.0);
  EXPECT_EQ(half[2], std::ldexp(1.0, -24));
  EXPECT_TRUE(std::isinf(half[3]));
  // BF16 is the top half of a float32: 1.0f = 0x3f80.
  EXPECT_EQ(TensorValues(Make<uint16_t>(DataType::kBf16, {0x3f80})), (std::vector<double>{1.0}));
  EXPECT_TRUE(std::isnan(TensorValues(Make<double>(DataType::kFp64, {NAN}))[0]));
}

TEST(TensorTest, BytesHaveNoNumericValues) {
  Tensor bytes{"b", DataType::kBytes, {1}, std::string("\x01\0\0\0x", 5)};
  EXPECT_TRUE(ValidateTensor(bytes).ok());
  EXPECT_TRUE(TensorValues(bytes).empty());
}

TEST(TensorTest, ValidateRejectsSizesThatDisagreeWithTheShape) {
  Tensor tensor = Make<float>(DataType::kFp32, {1, 2, 3});
  EXPECT_TRUE(ValidateTensor(tensor).ok());
  tensor.shape = {2, 2};
  EXPECT_EQ(ValidateTensor(tensor).code(), Code::kInvalidArgument);
  tensor.shape = {-1};
  EXPECT_EQ(ValidateTensor(tensor).code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace orrery
