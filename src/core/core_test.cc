#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "core/files.h"
#include "core/hash.h"
#include "core/quantity.h"
#include "core/random.h"
#include "core/status.h"

namespace orrery {
namespace {

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 incremental;
  incremental.Update("a");
  incremental.Update("bc");
  EXPECT_EQ(incremental.FinishHex(), Sha256Hex("abc"));
}

TEST(Sha256Test, NormalizeAcceptsPrefixAndCase) {
  std::string hex = Sha256Hex("x");
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  EXPECT_EQ(NormalizeSha256("sha256:" + upper), hex);
  EXPECT_EQ(NormalizeSha256(hex.substr(1)), "");
  EXPECT_EQ(NormalizeSha256("md5:" + hex), "");
  EXPECT_FALSE(IsSha256Hex(upper));
}

TEST(Sha256Test, OfFileMatchesInMemoryDigest) {
  auto dir = TempDir::Create(std::filesystem::temp_directory_path(), "core-test-");
  ASSERT_TRUE(dir.ok());
  std::string content(700 * 1024, 'x');  // more than one read chunk
  ASSERT_TRUE(WriteFileAtomic(dir->path() / "f", content).ok());
  EXPECT_EQ(*Sha256OfFile(dir->path() / "f"), Sha256Hex(content));
  EXPECT_FALSE(Sha256OfFile(dir->path() / "absent").ok());
}

TEST(RandomTest, HexLengthAndUniqueness) {
  std::string a = RandomHex(32);
  std::string b = RandomHex(32);
  EXPECT_EQ(a.size(), 64u);
  EXPECT_NE(a, b);
}

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int half, Half(x));
  ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

TEST(StatusTest, ResultPropagation) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> bad = Quarter(6);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(HttpStatusFor(Code::kNotFound), 404);
  EXPECT_EQ(NotFound("x").WithContext("ctx").message(), "ctx: x");
}

TEST(FilesTest, WriteFileAtomicReplacesAndSetsMode) {
  auto dir = TempDir::Create(std::filesystem::temp_directory_path(), "core-test-");
  ASSERT_TRUE(dir.ok());
  auto path = dir->path() / "secret";
  ASSERT_TRUE(WriteFileAtomic(path, "one", 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(path, "two", 0600).ok());
  EXPECT_EQ(*ReadFile(path), "two");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // No temp file is left beside it.
  int entries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir->path())) {
    (void)entry;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
  EXPECT_EQ(ReadFile(dir->path() / "absent").status().code(), Code::kNotFound);
}

TEST(FilesTest, EnsureDirLeavesExistingDirectoriesAlone) {
  auto dir = TempDir::Create(std::filesystem::temp_directory_path(), "core-test-");
  ASSERT_TRUE(dir.ok());
  ASSERT_EQ(::chmod(dir->path().c_str(), 0755), 0);
  ASSERT_TRUE(EnsureDir(dir->path() / "made", 0700).ok());
  ASSERT_TRUE(EnsureDir(dir->path(), 0700).ok());
  struct stat st {};
  ASSERT_EQ(::stat(dir->path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  ASSERT_EQ(::stat((dir->path() / "made").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // The parent of a TempDir keeps its mode too.
  auto child = TempDir::Create(dir->path(), "child-");
  ASSERT_TRUE(child.ok());
  ASSERT_EQ(::stat(dir->path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
}

TEST(FilesTest, TempDirRemovedUnlessReleased) {
  std::filesystem::path kept;
  std::filesystem::path removed;
  {
    auto a = TempDir::Create(std::filesystem::temp_directory_path(), "core-test-");
    auto b = TempDir::Create(std::filesystem::temp_directory_path(), "core-test-");
    ASSERT_TRUE(a.ok() && b.ok());
    removed = a->path();
    kept = b->Release();
  }
  EXPECT_FALSE(std::filesystem::exists(removed));
  EXPECT_TRUE(std::filesystem::exists(kept));
  std::filesystem::remove_all(kept);
}

TEST(ParseDuration, AcceptsSecondsAndUnits) {
  EXPECT_EQ(*ParseDuration("3600"), 3600);
  EXPECT_EQ(*ParseDuration("45s"), 45);
  EXPECT_EQ(*ParseDuration("90m"), 5400);
  EXPECT_EQ(*ParseDuration("12h"), 43200);
  EXPECT_EQ(*ParseDuration("30d"), 2592000);
}

TEST(ParseDuration, RefusesBadInput) {
  for (const char* text : {"", "0", "0h", "-5", "+5", "5x", "m", "1.5h", "12 h", "h12",
                           "99999999999999999999", "999999999999999999d"}) {
    Result<int64_t> seconds = ParseDuration(text);
    EXPECT_FALSE(seconds.ok()) << text;
    if (!seconds.ok()) {
      EXPECT_EQ(seconds.status().code(), Code::kInvalidArgument);
    }
  }
}

TEST(ParseByteSize, AcceptsBytesAndBinaryUnits) {
  EXPECT_EQ(*ParseByteSize("1048576"), 1048576);
  EXPECT_EQ(*ParseByteSize("512KiB"), 512 * 1024);
  EXPECT_EQ(*ParseByteSize("64MiB"), 64ll << 20);
  EXPECT_EQ(*ParseByteSize("2GiB"), 2ll << 30);
  EXPECT_EQ(*ParseByteSize("2G"), 2ll << 30);
  EXPECT_EQ(*ParseByteSize("2GB"), 2ll << 30);
  EXPECT_EQ(*ParseByteSize("1TiB"), 1ll << 40);
}

TEST(ParseByteSize, RefusesBadInput) {
  for (const char* text : {"", "0", "0GiB", "-5", "5x", "GiB", "1.5GiB", "2 GiB", "2Gib", "2PiB",
                           "99999999999TiB", "99999999999999999999"}) {
    Result<int64_t> bytes = ParseByteSize(text);
    EXPECT_FALSE(bytes.ok()) << text;
    if (!bytes.ok()) {
      EXPECT_EQ(bytes.status().code(), Code::kInvalidArgument);
    }
  }
}

}  // namespace
}  // namespace orrery
