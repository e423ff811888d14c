#include "api/content_coding.h"

#include <gtest/gtest.h>

namespace orrery {
namespace {

TEST(ContentCodingTest, DecodesGzipDeflateAndIdentity) {
  std::string json = R"({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]})";
  EXPECT_EQ(*DecodeBody("gzip", Gzip(json), 1 << 20), json);
  EXPECT_EQ(*DecodeBody(" X-GZIP ", Gzip(json), 1 << 20), json);
  EXPECT_EQ(*DecodeBody("deflate", Compress(json, Framing::kZlib), 1 << 20), json);
  EXPECT_EQ(*DecodeBody("deflate", Compress(json, Framing::kRaw), 1 << 20), json);  // raw, as some send
  EXPECT_EQ(*DecodeBody("", json, 1 << 20), json);
  EXPECT_EQ(*DecodeBody("Identity", json, 1 << 20), json);
}

TEST(ContentCodingTest, ABombStopsAtTheLimit) {
  std::string zeros(16 << 20, '\0');
  std::string bomb = Gzip(zeros);
  ASSERT_LT(bomb.size(), 100'000u);  // 16 MiB in under 100 kB
  Result<std::string> decoded = DecodeBody("gzip", bomb, 1 << 20);
  EXPECT_EQ(decoded.status().code(), Code::kTooLarge);
  EXPECT_EQ(decoded.status().message(),
            "request body is over the 1048576-byte limit once decompressed");
  EXPECT_EQ(DecodeBody("gzip", bomb, 16 << 20)->size(), zeros.size());  // exactly at the limit
}

TEST(ContentCodingTest, RefusesBadDataAndOtherCodings) {
  std::string gz = Gzip("hello, world");
  for (const std::string& bad : {std::string("not gzip"), gz.substr(0, gz.size() - 4),
                                 gz + "trailing"}) {
    Result<std::string> decoded = DecodeBody("gzip", bad, 1 << 20);
    EXPECT_EQ(decoded.status().code(), Code::kInvalidArgument);
  }
  EXPECT_EQ(DecodeBody("deflate", "not deflate", 1 << 20).status().code(),
            Code::kInvalidArgument);
  for (const char* coding : {"br", "compress", "gzip, gzip", "zstd"}) {
    Result<std::string> decoded = DecodeBody(coding, gz, 1 << 20);
    EXPECT_EQ(decoded.status().code(), Code::kUnsupportedMediaType) << coding;
  }
  EXPECT_EQ(DecodeBody("br", "x", 10).status().message(),
            "Content-Encoding 'br' is not supported (gzip, deflate or identity)");
}

TEST(ContentCodingTest, AcceptsGzipReadsTheListAndItsQValues) {
  for (const char* yes : {"gzip", "deflate, gzip", "gzip;q=0.5", "br, GZIP ; q=1", "*",
                          "x-gzip", "deflate, *;q=0.1"}) {
    EXPECT_TRUE(AcceptsGzip(yes)) << yes;
  }
  for (const char* no : {"", "identity", "deflate", "gzip;q=0", "*;q=0", "*, gzip;q=0",
                         "br;q=1, gzip;q=0.000"}) {
    EXPECT_FALSE(AcceptsGzip(no)) << no;
  }
}

}  // namespace
}  // namespace orrery
