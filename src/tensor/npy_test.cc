#include "tensor/npy.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace orrery {
namespace {

// A .npy file of version `major`.0 with `header` (padded as numpy does) and `data`.
std::string NpyFile(const std::string& header, const std::string& data, int major = 1) {
  size_t prefix = major == 1 ? 10 : 12;
  std::string text = header;
  text.append(64 - (prefix + text.size() + 1) % 64, ' ');
  text += '\n';
  std::string file = "\x93NUMPY";
  file += static_cast<char>(major);
  file += '\0';
  uint32_t length = static_cast<uint32_t>(text.size());
  file.append(reinterpret_cast<const char*>(&length), major == 1 ? 2 : 4);
  return file + text + data;
}

template <typename T>
std::string Raw(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

void ExpectRefused(const std::string& file, const std::string& needle) {
  Result<Tensor> tensor = DecodeNpy(file, "x");
  ASSERT_FALSE(tensor.ok()) << "accepted";
  EXPECT_EQ(tensor.status().code(), Code::kInvalidArgument);
  EXPECT_NE(tensor.status().message().find(needle), std::string::npos)
      << tensor.status().message() << "\nwanted: " << needle;
}

// What numpy 1.x writes for np.arange(6, dtype=np.float32).reshape(2, 3).
TEST(DecodeNpy, ReadsWhatNumpyWrites) {
  std::string data = Raw<float>({0, 1, 2, 3, 4, 5});
  std::string file = std::string("\x93NUMPY\x01\x00\x76\x00", 10) +
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" +
                     std::string(58, ' ') + "\n" + data;
  ASSERT_EQ(file.size(), 128u + data.size());
  Result<Tensor> tensor = DecodeNpy(file, "features");
  ASSERT_TRUE(tensor.ok()) << tensor.status().ToString();
  EXPECT_EQ(tensor->name, "features");
  EXPECT_EQ(tensor->datatype, DataType::kFp32);
  EXPECT_EQ(tensor->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(tensor->data, data);
  EXPECT_EQ(EncodeNpy(*tensor).value(), file);  // and writes it back byte for byte
}

TEST(DecodeNpy, EveryDtypeAndByteOrderMark) {
  struct Case {
    const char* descr;
    DataType type;
    size_t size;
  };
  for (Case c : {Case{"|b1", DataType::kBool, 1}, Case{"|i1", DataType::kInt8, 1},
                 Case{"<i2", DataType::kInt16, 2}, Case{"<i4", DataType::kInt32, 4},
                 Case{"<i8", DataType::kInt64, 8}, Case{"|u1", DataType::kUint8, 1},
                 Case{"<u2", DataType::kUint16, 2}, Case{"<u4", DataType::kUint32, 4},
                 Case{"<u8", DataType::kUint64, 8}, Case{"<f2", DataType::kFp16, 2},
                 Case{"<f4", DataType::kFp32, 4}, Case{"<f8", DataType::kFp64, 8},
                 Case{"=f8", DataType::kFp64, 8}, Case{"<b1", DataType::kBool, 1},
                 Case{">u1", DataType::kUint8, 1}}) {
    std::string data(3 * c.size, '\1');
    std::string header =
        std::string("{'descr': '") + c.descr + "', 'fortran_order': False, 'shape': (3,), }";
    Result<Tensor> tensor = DecodeNpy(NpyFile(header, data), "x");
    ASSERT_TRUE(tensor.ok()) << c.descr << ": " << tensor.status().ToString();
    EXPECT_EQ(tensor->datatype, c.type) << c.descr;
    EXPECT_EQ(tensor->shape, (std::vector<int64_t>{3}));
    EXPECT_EQ(tensor->data, data);
  }
}

TEST(DecodeNpy, VersionsShapesAndHeaderSpellings) {
  std::string data = Raw<int64_t>({7});
  for (int major : {1, 2, 3}) {
    Result<Tensor> tensor = DecodeNpy(
        NpyFile("{'descr': '<i8', 'fortran_order': False, 'shape': (), }", data, major), "x");
    ASSERT_TRUE(tensor.ok()) << major << ": " << tensor.status().ToString();
    EXPECT_TRUE(tensor->shape.empty());
    EXPECT_EQ(tensor->data, data);
  }
  // Any key order, double quotes, Python 2 longs, no trailing comma, empty arrays.
  Result<Tensor> tensor =
      DecodeNpy(NpyFile(R"({"shape": (2L, 0L), "fortran_order": False, "descr": "<f4"})", ""), "x");
  ASSERT_TRUE(tensor.ok()) << tensor.status().ToString();
  EXPECT_EQ(tensor->shape, (std::vector<int64_t>{2, 0}));
}

TEST(DecodeNpy, RefusesWhatItCannotRead) {
  std::string f4 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  std::string two = Raw<float>({1, 2});
  ExpectRefused("", "bad magic");
  ExpectRefused("\x93NUMPX\x01\x00\x00\x00", "bad magic");
  ExpectRefused(std::string("\x93NUMPY\x04\x00\x00\x00", 10), "unsupported format version 4.0");
  ExpectRefused(std::string("\x93NUMPY\x01\x00\xff\x00{", 11), "truncated header");
  ExpectRefused(std::string("\x93NUMPY\x02\x00\x00\x00\x00", 11), "truncated header");
  ExpectRefused(NpyFile(f4, two.substr(0, 7)), "truncated data: 7 bytes for shape [2] of <f4");
  ExpectRefused(NpyFile(f4, two + "x"), "1 bytes after the array data");
  ExpectRefused(NpyFile("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", two),
                "fortran_order arrays are not supported");
  ExpectRefused(NpyFile("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", two),
                "big-endian data ('>f4') is not supported");
  ExpectRefused(NpyFile("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", two),
                "object arrays are not supported");
  ExpectRefused(NpyFile("{'descr': '<U2', 'fortran_order': False, 'shape': (1,), }", two),
                "string dtypes are not supported");
  ExpectRefused(NpyFile("{'descr': '|S8', 'fortran_order': False, 'shape': (1,), }", two),
                "string dtypes are not supported");
  ExpectRefused(NpyFile("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", two),
                "structured dtypes are not supported");
  ExpectRefused(NpyFile("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", two),
                "unsupported dtype '<c8'");
  ExpectRefused(NpyFile("{'descr': '<f4', 'shape': (2,), }", two),
                "header needs 'descr', 'fortran_order' and 'shape'");
  ExpectRefused(
      NpyFile("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", two),
      "header key 'descr' appears twice");
  ExpectRefused(NpyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", two),
                "malformed header value for 'shape'");
  ExpectRefused(NpyFile("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", two),
                "malformed header value for 'fortran_order'");
  ExpectRefused(NpyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", two),
                "unexpected header key 'x'");
  ExpectRefused(NpyFile("['descr']", two), "header is not a dict");
  ExpectRefused(NpyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, "
                        "4294967296, 4294967296), }",
                        two),
                "truncated data");
}

TEST(EncodeNpy, RoundTripsEveryNumericDatatype) {
  for (int i = 0; i <= static_cast<int>(DataType::kBytes); ++i) {
    DataType type = static_cast<DataType>(i);
    if (type == DataType::kBytes || type == DataType::kBf16) continue;
    Tensor tensor{"t", type, {2, 1, 3}, std::string(6 * DataTypeSize(type), '\0')};
    for (size_t b = 0; b < tensor.data.size(); ++b) tensor.data[b] = static_cast<char>(b % 2);
    Result<std::string> file = EncodeNpy(tensor);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    uint16_t header_length = 0;
    std::memcpy(&header_length, file->data() + 8, 2);
    EXPECT_EQ((10 + header_length) % 64, 0u);
    Result<Tensor> back = DecodeNpy(*file, "t");
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->datatype, type);
    EXPECT_EQ(back->shape, tensor.shape);
    EXPECT_EQ(back->data, tensor.data);
  }
}

TEST(EncodeNpy, ScalarAndLongShapes) {
  Tensor scalar{"s", DataType::kFp64, {}, Raw<double>({2.5})};
  Result<std::string> file = EncodeNpy(scalar);
  ASSERT_TRUE(file.ok());
  EXPECT_NE(file->find("'shape': (), }"), std::string::npos);
  EXPECT_EQ(DecodeNpy(*file, "s")->data, scalar.data);

  Tensor wide{"w", DataType::kUint8, std::vector<int64_t>(25000, 1), "\x05"};
  file = EncodeNpy(wide);  // header over 64 KiB: version 2.0
  ASSERT_TRUE(file.ok());
  EXPECT_EQ((*file)[6], '\x02');
  Result<Tensor> back = DecodeNpy(*file, "w");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->shape.size(), 25000u);
}

TEST(EncodeNpy, RefusesBytesBf16AndInvalidTensors) {
  for (DataType type : {DataType::kBytes, DataType::kBf16}) {
    Tensor tensor{"t", type, {1}, type == DataType::kBytes ? std::string("\0\0\0\0", 4) : "ab"};
    Result<std::string> file = EncodeNpy(tensor);
    ASSERT_FALSE(file.ok());
    EXPECT_EQ(file.status().code(), Code::kInvalidArgument);
    EXPECT_NE(file.status().message().find("has no .npy dtype"), std::string::npos);
  }
  Result<std::string> file = EncodeNpy(Tensor{"t", DataType::kFp32, {2}, "abc"});
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace orrery
