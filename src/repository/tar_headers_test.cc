// The second reading of tar headers, on tars written byte by byte here (no
// tar writer would write most of them), and through ScanPackageArchive.
#include "repository/tar_headers.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "repository/archive.h"

namespace orrery {
namespace {

namespace fs = std::filesystem;

// One 512-byte header block: POSIX ustar unless `gnu`.
std::string Header(const std::string& name, char type, uint64_t size, bool gnu = false,
                   const std::string& prefix = "") {
  std::string block(512, '\0');
  std::memcpy(block.data(), name.data(), std::min<size_t>(name.size(), 100));
  std::snprintf(block.data() + 100, 8, "%07o", 0644);
  std::snprintf(block.data() + 124, 12, "%011llo", static_cast<unsigned long long>(size));
  block[156] = type;
  std::memcpy(block.data() + 257,
              gnu ? "ustar  \0"
                  : "ustar\0"
                    "00",
              8);
  std::memcpy(block.data() + 345, prefix.data(), std::min<size_t>(prefix.size(), 155));
  std::memset(block.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : block) sum += c;
  std::snprintf(block.data() + 148, 8, "%06o", sum);
  return block;
}

std::string Padded(std::string data) {
  data.resize((data.size() + 511) / 512 * 512, '\0');
  return data;
}

std::string Entry(const std::string& name, const std::string& data, char type = '0') {
  return Header(name, type, data.size()) + Padded(data);
}

// A PAX extended header ('x') holding `records` ("key=value" each).
std::string Pax(const std::vector<std::string>& records, char type = 'x') {
  std::string body;
  for (const std::string& record : records) {
    // The length counts its own digits, " ", the record and "\n".
    size_t digits = 1;
    while (std::to_string(digits + record.size() + 2).size() != digits) ++digits;
    size_t length = digits + record.size() + 2;
    body += std::to_string(length) + " " + record + "\n";
  }
  return Header("PaxHeader", type, body.size()) + Padded(body);
}

std::string GnuLongName(const std::string& name) {
  return Header("././@LongLink", 'L', name.size(), true) + Padded(name);
}

const std::string kEnd(1024, '\0');

Result<std::vector<std::string>> Walk(const std::string& tar, size_t piece = 1 << 20) {
  TarHeaderWalker walker(100);
  for (size_t at = 0; at < tar.size() && !walker.done(); at += piece) {
    Status fed = walker.Feed(tar.data() + at, std::min(piece, tar.size() - at));
    if (!fed.ok()) return fed;
  }
  return walker.Finish();
}

void ExpectRefused(const std::string& tar, const std::string& message) {
  auto names = Walk(tar);
  ASSERT_FALSE(names.ok()) << "accepted";
  EXPECT_EQ(names.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(names.status().message(), message);
}

TEST(TarHeadersTest, ReadsNamesWithPrefixesAndExtensions) {
  std::string tar = Entry("a.txt", "hello") + Header("dir/", '5', 0) +
                    Header("b.bin", '0', 3, false, "deep/er") + Padded("xyz") +
                    Pax({"path=long/pax name.txt", "mtime=1"}) + Entry("short", "12") +
                    GnuLongName(std::string("gnu/long.txt") + '\0') + Entry("gnu", "") + kEnd;
  auto names = Walk(tar);
  ASSERT_TRUE(names.ok()) << names.status().ToString();
  EXPECT_EQ(*names, (std::vector<std::string>{"a.txt", "dir/", "deep/er/b.bin", "long/pax name.txt",
                                              "gnu/long.txt"}));
  auto bytewise = Walk(tar, 1);  // the stream may arrive in pieces of any size
  ASSERT_TRUE(bytewise.ok());
  EXPECT_EQ(*bytewise, *names);
}

TEST(TarHeadersTest, APaxSizeDecidesTheDataThatFollows) {
  std::string data(1000, 'd');
  std::string tar =
      Pax({"size=1000"}) + Header("big", '0', 0) + Padded(data) + Entry("next", "x") + kEnd;
  auto names = Walk(tar);
  ASSERT_TRUE(names.ok()) << names.status().ToString();
  EXPECT_EQ(*names, (std::vector<std::string>{"big", "next"}));
}

TEST(TarHeadersTest, RefusesANulInAPaxPathOrLinkpath) {
  ExpectRefused(Pax({std::string("path=model.pt\0.evil", 19)}) + Entry("x", "1") + kEnd,
                "archive entry 'model.pt\\x00.evil': its PAX path holds a NUL byte");
  ExpectRefused(Pax({std::string("linkpath=a\0b", 12)}) + Entry("x", "1") + kEnd,
                "archive entry 'a\\x00b': its PAX linkpath holds a NUL byte");
}

TEST(TarHeadersTest, RefusesANulInsideAGnuLongNameButNotAfterIt) {
  ExpectRefused(GnuLongName(std::string("ok.txt\0hidden", 13)) + Entry("x", "1") + kEnd,
                "archive entry 'ok.txt\\x00hidden': its GNU long name holds a NUL byte");
  auto fine = Walk(GnuLongName(std::string("ok.txt\0\0\0", 9)) + Entry("x", "1") + kEnd);
  ASSERT_TRUE(fine.ok());
  EXPECT_EQ(*fine, std::vector<std::string>{"ok.txt"});
}

TEST(TarHeadersTest, RefusesSparseEntries) {
  ExpectRefused(Header("holes", 'S', 0, true) + kEnd,
                "archive entry 'holes': sparse files are not allowed");
  ExpectRefused(Pax({"GNU.sparse.major=1", "GNU.sparse.minor=0", "path=holes"}) +
                    Entry("GNUSparseFile.0/holes", "1") + kEnd,
                "archive entry 'holes': sparse files are not allowed");
}

TEST(TarHeadersTest, RefusesEntriesOfUnknownType) {
  for (char type : {'V', 'M', 'N', 'D', 'X', 'Z', '9'}) {
    ExpectRefused(Entry("thing", "1", type) + kEnd,
                  std::string("archive entry 'thing': unsupported entry type '") + type + "'");
  }
  ExpectRefused(Entry("thing", "", '\x01') + kEnd,
                "archive entry 'thing': unsupported entry type '\\x01'");
}

TEST(TarHeadersTest, StopsAtTheFirstLinkWhichTheCallerRefuses) {
  auto names = Walk(Entry("a", "1") + Header("l", '2', 0) + std::string(512, 'g'));
  ASSERT_TRUE(names.ok()) << names.status().ToString();
  EXPECT_EQ(*names, (std::vector<std::string>{"a", "l"}));
}

TEST(TarHeadersTest, RefusesDamagedAndTruncatedArchives) {
  ExpectRefused("hello, not a tar archive" + std::string(600, 'x'), "not a tar archive");
  ExpectRefused("", "not a tar archive");
  std::string damaged = Entry("a", "1") + Entry("b", "2");
  damaged[512 * 2 + 10] ^= 1;  // b's header
  ExpectRefused(damaged + kEnd, "corrupt archive: a damaged tar header");
  ExpectRefused(Header("a", '0', 2000) + std::string(1024, 'a'),
                "corrupt archive: it ends inside an entry");
  ExpectRefused(Header("PaxHeader", 'x', 12) + Padded("99 path=x\n"),
                "corrupt archive: a malformed PAX extended header");
  // Non-digits in a PAX size are refused before they are added up (the
  // sanitizer's fuzzer found the overflow when they were summed first).
  ExpectRefused(Pax({"size=9\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"}) +
                    Entry("x", "1") + kEnd,
                "corrupt archive: an invalid PAX size");
  ExpectRefused(Pax({"size=12a"}) + Entry("x", "1") + kEnd, "corrupt archive: an invalid PAX size");
  // No end-of-archive blocks after a whole entry: read as libarchive reads it.
  EXPECT_TRUE(Walk(Entry("a", "1")).ok());
}

TEST(TarHeadersTest, CountsEntries) {
  TarHeaderWalker walker(2);
  std::string tar = Entry("a", "") + Entry("b", "") + Entry("c", "") + kEnd;
  Status fed = walker.Feed(tar.data(), tar.size());
  EXPECT_EQ(fed.code(), Code::kTooLarge);
  EXPECT_EQ(fed.message(), "archive has more than 2 entries");
}

// Through the package reader: libarchive alone would have stored these.
TEST(TarHeadersTest, ThePackageReaderRefusesWhatLibarchiveWouldCut) {
  fs::path dir = fs::temp_directory_path() / ("orrery-tar-headers-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto refused = [&](const std::string& tar) {
    std::ofstream(dir / "p.tar", std::ios::binary) << tar;
    return ScanPackageArchive(dir / "p.tar", {}).status();
  };
  std::string manifest = Entry("orrery.yaml", "name: x\n");
  Status cut = refused(manifest + Pax({std::string("path=model.pt\0../../x", 21)}) +
                       Entry("model.pt", "w") + kEnd);
  EXPECT_EQ(cut.message(), "archive entry 'model.pt\\x00../../x': its PAX path holds a NUL byte");
  Status unknown = refused(manifest + Entry("model.pt", "w", 'V') + kEnd);
  EXPECT_EQ(unknown.message(), "archive entry 'model.pt': unsupported entry type 'V'");
  Status sparse = refused(manifest + Header("model.pt", 'S', 0, true) + kEnd);
  EXPECT_EQ(sparse.message(), "archive entry 'model.pt': sparse files are not allowed");
  EXPECT_TRUE(refused(manifest + Entry("m", "1") + kEnd).ok());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace orrery
