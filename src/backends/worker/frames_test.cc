#include "backends/worker/frames.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "core/files.h"

namespace orrery {
namespace {

using nlohmann::json;

Deadline In(int ms) {
  return std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
}

// A channel: `a` is the server's side (non-blocking), `b` the worker's.
struct Pair {
  FrameChannelEnds a, b;
  Pair() {
    auto made = MakeFrameChannel();
    EXPECT_TRUE(made.ok()) << made.status().ToString();
    a = std::move(made->first);
    b = std::move(made->second);
  }
};

Tensor Make(std::string name, DataType type, std::vector<int64_t> shape, std::string data) {
  return Tensor{std::move(name), type, std::move(shape), std::move(data)};
}

// A raw frame: payload = type, header length, header, rest.
std::string RawFrame(uint8_t type, const std::string& header, const std::string& rest) {
  std::string payload(1, static_cast<char>(type));
  auto size = static_cast<uint32_t>(header.size());
  payload.append(reinterpret_cast<const char*>(&size), 4);
  payload += header + rest;
  auto length = static_cast<uint32_t>(payload.size());
  return std::string(reinterpret_cast<const char*>(&length), 4) + payload;
}

TEST(FramesTest, EveryDatatypeRoundTripsInline) {
  Pair pair;
  std::vector<Tensor> tensors;
  for (int t = 0; t <= static_cast<int>(DataType::kBytes); ++t) {
    auto type = static_cast<DataType>(t);
    std::string data;
    if (type == DataType::kBytes) {
      data = BytesElements({"a", "", std::string("\0\xff", 2)});
    } else {
      for (size_t i = 0; i < 3 * DataTypeSize(type); ++i)
        data.push_back(static_cast<char>(i * 7 + t));
    }
    tensors.push_back(Make(std::string(DataTypeName(type)), type, {1, 3}, data));
  }
  tensors.push_back(Make("scalar", DataType::kFp64, {}, std::string(8, '\x01')));
  tensors.push_back(Make("empty", DataType::kFp32, {0, 4}, ""));
  ASSERT_TRUE(WriteFrame(pair.a.get(), FrameType::kInfer, json::object(), tensors, In(1000)).ok());
  Result<Frame> frame = ReadFrame(pair.b.get(), In(1000));
  ASSERT_TRUE(frame.ok()) << frame.status().ToString();
  EXPECT_EQ(frame->type, FrameType::kInfer);
  EXPECT_FALSE(frame->header.contains("shm"));
  ASSERT_EQ(frame->tensors.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(frame->tensors[i].name, tensors[i].name);
    EXPECT_EQ(frame->tensors[i].datatype, tensors[i].datatype);
    EXPECT_EQ(frame->tensors[i].shape, tensors[i].shape);
    EXPECT_EQ(frame->tensors[i].data, tensors[i].data) << tensors[i].name;
  }
}

TEST(FramesTest, LargeTensorsGoThroughAMemfdBothWays) {
  Pair pair;
  std::string big(8 << 20, '\0');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>(i / 4096);
  std::vector<Tensor> tensors = {Make("small", DataType::kInt8, {2}, "xy"),
                                 Make("big", DataType::kFp32, {2, 1 << 20}, big)};
  for (int direction = 0; direction < 2; ++direction) {
    FrameChannel writer = direction == 0 ? pair.a.get() : pair.b.get();
    FrameChannel reader = direction == 0 ? pair.b.get() : pair.a.get();
    ASSERT_TRUE(WriteFrame(writer, FrameType::kResult, json::object(), tensors, In(1000)).ok());
    Result<Frame> frame = ReadFrame(reader, In(1000));
    ASSERT_TRUE(frame.ok()) << frame.status().ToString();
    EXPECT_EQ(frame->header.value("shm", uint64_t{0}), big.size() + 2);
    ASSERT_EQ(frame->tensors.size(), 2u);
    EXPECT_EQ(frame->tensors[0].data, "xy");
    EXPECT_TRUE(frame->tensors[1].data == big);
  }
  // Nothing else is queued: each descriptor was taken with its frame.
  EXPECT_EQ(ReadFrame(pair.a.get(), In(20)).status().message(), "timed out");
  pollfd worker_in{pair.b.in.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&worker_in, 1, 0), 0);
  char byte;
  EXPECT_EQ(::recv(pair.a.fds.get(), &byte, 1, MSG_DONTWAIT), -1);
  EXPECT_EQ(::recv(pair.b.fds.get(), &byte, 1, MSG_DONTWAIT), -1);
}

TEST(FramesTest, UnsealedMemfdIsReadWithPread) {
  Pair pair;
  UniqueFd memfd(::memfd_create("t", MFD_CLOEXEC));
  std::string data(2 << 20, 'q');
  ASSERT_TRUE(WriteAll(memfd.get(), data.data(), data.size(), "memfd").ok());
  std::string header =
      R"({"tensors":[{"name":"x","datatype":"UINT8","shape":[2097152],"size":2097152}],"shm":2097152})";
  std::string frame = RawFrame(4, header, "");
  ASSERT_TRUE(SendFrameFd(pair.a.get(), memfd.get(), In(1000)).ok());
  ASSERT_TRUE(WriteAll(pair.a.out.get(), frame.data(), frame.size(), "frame").ok());
  Result<Frame> read = ReadFrame(pair.b.get(), In(1000));
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_TRUE(read->tensors[0].data == data);

  // The same frame claiming more bytes than the memfd has.
  ASSERT_EQ(::ftruncate(memfd.get(), 100), 0);
  ASSERT_TRUE(SendFrameFd(pair.a.get(), memfd.get(), In(1000)).ok());
  ASSERT_TRUE(WriteAll(pair.a.out.get(), frame.data(), frame.size(), "frame").ok());
  read = ReadFrame(pair.b.get(), In(1000));
  EXPECT_EQ(read.status().code(), Code::kInternal);
}

TEST(FramesTest, ErrorAndReadyHeadersPassThrough) {
  Pair pair;
  ASSERT_TRUE(
      WriteFrame(pair.a.get(), FrameType::kError, {{"error", "ValueError: no"}}, {}, In(1000))
          .ok());
  Result<Frame> frame = ReadFrame(pair.b.get(), In(1000));
  ASSERT_TRUE(frame.ok());
  EXPECT_EQ(frame->type, FrameType::kError);
  EXPECT_EQ(frame->header["error"], "ValueError: no");
  EXPECT_TRUE(frame->tensors.empty());
}

TEST(FramesTest, HeaderFieldsAndOddNamesSurviveEncoding) {
  Pair pair;
  std::string odd = "q\"uo\\te\n\x01 h\xc3\xa9";
  std::vector<Tensor> tensors = {Make(odd, DataType::kInt8, {2}, "ab"),
                                 Make("plain", DataType::kInt8, {}, "c")};
  json header = {{"error", "E: \"x\""}, {"code", "Internal"}, {"tensors", "ignored"}};
  for (int round = 0; round < 2; ++round) {  // the second read hits the parsed-header cache
    ASSERT_TRUE(WriteFrame(pair.a.get(), FrameType::kResult, header, tensors, In(1000)).ok());
    Result<Frame> frame = ReadFrame(pair.b.get(), In(1000));
    ASSERT_TRUE(frame.ok()) << frame.status().ToString();
    EXPECT_EQ(frame->header["error"], "E: \"x\"");
    EXPECT_EQ(frame->header["code"], "Internal");
    ASSERT_EQ(frame->tensors.size(), 2u);
    EXPECT_EQ(frame->tensors[0].name, odd);
    EXPECT_EQ(frame->tensors[0].data, "ab");
    EXPECT_TRUE(frame->tensors[1].shape.empty());
    EXPECT_EQ(frame->tensors[1].data, "c");
  }
  // Same header text, different bytes: the cache keeps only metadata.
  tensors[0].data = "zz";
  ASSERT_TRUE(WriteFrame(pair.a.get(), FrameType::kResult, header, tensors, In(1000)).ok());
  EXPECT_EQ(ReadFrame(pair.b.get(), In(1000))->tensors[0].data, "zz");
}

TEST(FramesTest, ClosedPeerAndDeadline) {
  Pair pair;
  EXPECT_EQ(ReadFrame(pair.a.get(), In(30)).status().message(), "timed out");
  Deadline deadline = In(100);
  Result<Frame> late = ReadFrame(pair.a.get(), deadline);
  EXPECT_GE(std::chrono::steady_clock::now(), deadline);  // it waited the whole time
  EXPECT_EQ(late.status().code(), Code::kUnavailable);
  pair.b = FrameChannelEnds();  // the worker is gone
  Result<Frame> closed = ReadFrame(pair.a.get(), In(1000));
  EXPECT_EQ(closed.status().code(), Code::kUnavailable);
  EXPECT_EQ(closed.status().message(), "worker closed the channel");
  Status write = WriteFrame(pair.a.get(), FrameType::kInfer, json::object(), {}, In(1000));
  EXPECT_EQ(write.code(), Code::kUnavailable);
}

TEST(FramesTest, WriterWaitsForAReaderUntilItsDeadline) {
  Pair pair;
  std::string data(900 * 1024, 'z');  // inline, more than the pipe holds
  std::vector<Tensor> tensors = {Make("x", DataType::kUint8, {900 * 1024}, data)};
  Status stuck = WriteFrame(pair.a.get(), FrameType::kInfer, json::object(), tensors, In(50));
  EXPECT_EQ(stuck.message(), "timed out");

  Pair fresh;
  std::thread reader([&] {
    Result<Frame> frame = ReadFrame(fresh.b.get(), In(2000));
    ASSERT_TRUE(frame.ok()) << frame.status().ToString();
    EXPECT_TRUE(frame->tensors[0].data == data);
  });
  EXPECT_TRUE(WriteFrame(fresh.a.get(), FrameType::kInfer, json::object(), tensors, In(2000)).ok());
  reader.join();
}

TEST(FramesTest, MalformedFramesAreInternalErrors) {
  const std::string valid_header =
      R"({"tensors":[{"name":"x","datatype":"FP32","shape":[2],"size":8}]})";
  struct Case {
    const char* what;
    std::string bytes;
  };
  std::string huge_length("\xff\xff\xff\x7f", 4);
  std::vector<Case> cases = {
      {"short payload", std::string("\x02\0\0\0", 4) + "ab"},
      {"huge length", huge_length},
      {"unknown type", RawFrame(9, "{}", "")},
      {"header past payload",
       RawFrame(4, "{}", "").substr(0, 5) + std::string("\x40\0\0\0", 4) + "{}"},
      {"bad json", RawFrame(4, "{nope", "")},
      {"not an object", RawFrame(4, "[1]", "")},
      {"sizes disagree", RawFrame(4, valid_header, std::string(7, 'x'))},
      {"unknown datatype",
       RawFrame(4, R"({"tensors":[{"name":"x","datatype":"FP8","shape":[1],"size":1}]})", "x")},
      {"shape vs size",
       RawFrame(4, R"({"tensors":[{"name":"x","datatype":"FP32","shape":[3],"size":8}]})",
                std::string(8, 'x'))},
      {"bad BYTES",
       RawFrame(4, R"({"tensors":[{"name":"x","datatype":"BYTES","shape":[1],"size":4}]})",
                std::string("\x09\0\0\0", 4))},
      {"shm without fd", RawFrame(4, R"({"tensors":[],"shm":0})", "")},
      {"two frames at once",
       RawFrame(4, valid_header, std::string(8, 'x')) + RawFrame(4, valid_header, std::string(8, 'x'))},
  };
  for (const Case& c : cases) {
    Pair pair;
    ASSERT_TRUE(WriteAll(pair.b.out.get(), c.bytes.data(), c.bytes.size(), "raw").ok());
    Result<Frame> frame = ReadFrame(pair.a.get(), In(200));
    EXPECT_EQ(frame.status().code(), Code::kInternal)
        << c.what << ": " << frame.status().ToString();
  }
  Pair pair;
  std::string ok = RawFrame(4, valid_header, std::string(8, 'x'));
  ASSERT_TRUE(WriteAll(pair.b.out.get(), ok.data(), ok.size(), "raw").ok());
  EXPECT_TRUE(ReadFrame(pair.a.get(), In(200)).ok());
}

}  // namespace
}  // namespace orrery
