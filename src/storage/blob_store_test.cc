#include "storage/blob_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "core/files.h"
#include "core/hash.h"

namespace orrery {
namespace {

namespace fs = std::filesystem;

class BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<TempDir> dir = TempDir::Create(fs::temp_directory_path(), "blob_store_test-");
    ASSERT_TRUE(dir.ok()) << dir.status().ToString();
    dir_.emplace(std::move(dir).value());
    root_ = dir_->path() / "blobs";
    Reopen();
  }

  void Reopen() {
    store_.reset();
    Result<std::unique_ptr<BlobStore>> store = BlobStore::Open(root_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  std::string MustPut(std::string_view data) {
    Result<std::string> digest = store_->Put(data);
    EXPECT_TRUE(digest.ok()) << digest.status().ToString();
    return digest.ok() ? *digest : std::string();
  }

  // Replaces the stored bytes of `digest` (blobs are read-only; chmod first).
  void Corrupt(const std::string& digest, const std::string& bytes) {
    fs::path path = store_->PathFor(digest);
    ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  }

  static size_t CountEntries(const fs::path& dir) {
    size_t count = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir)) ++count;
    return count;
  }

  std::optional<TempDir> dir_;
  fs::path root_;
  std::unique_ptr<BlobStore> store_;
};

std::string Pattern(size_t size) {
  std::string data(size, '\0');
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>((i * 131 + i / 977) & 0xff);
  return data;
}

TEST_F(BlobStoreTest, PutThenReadRoundTrips) {
  std::string digest = MustPut("hello, orrery");
  EXPECT_EQ(digest, Sha256Hex("hello, orrery"));
  EXPECT_TRUE(store_->Exists(digest));
  EXPECT_EQ(store_->PathFor(digest), root_ / digest.substr(0, 2) / digest);

  Result<std::string> content = store_->ReadAll(digest);
  ASSERT_TRUE(content.ok()) << content.status().ToString();
  EXPECT_EQ(*content, "hello, orrery");

  Result<BlobInfo> info = store_->Stat(digest);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->digest, digest);
  EXPECT_EQ(info->size, 13u);
  EXPECT_GT(info->modified_at, 0);

  struct stat st;
  ASSERT_EQ(::stat(store_->PathFor(digest).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  EXPECT_EQ(CountEntries(root_ / "tmp"), 0u);
}

TEST_F(BlobStoreTest, EmptyBlob) {
  std::string digest = MustPut("");
  EXPECT_EQ(digest, Sha256Hex(""));
  Result<std::string> content = store_->ReadAll(digest);
  ASSERT_TRUE(content.ok());
  EXPECT_EQ(*content, "");
}

TEST_F(BlobStoreTest, StreamingWriterAcrossManyChunks) {
  std::string data = Pattern(3 * 256 * 1024 + 12345);
  Result<std::unique_ptr<BlobWriter>> writer = store_->NewWriter();
  ASSERT_TRUE(writer.ok());
  for (size_t offset = 0; offset < data.size(); offset += 70000) {
    ASSERT_TRUE((*writer)->Append(std::string_view(data).substr(offset, 70000)).ok());
  }
  EXPECT_EQ((*writer)->size(), data.size());
  Result<std::string> digest = (*writer)->Commit(Sha256Hex(data));
  ASSERT_TRUE(digest.ok()) << digest.status().ToString();
  EXPECT_EQ(*digest, Sha256Hex(data));

  std::string read;
  size_t largest = 0;
  Status status = store_->Read(*digest, [&](const char* bytes, size_t size) {
    read.append(bytes, size);
    largest = std::max(largest, size);
    return Status::Ok();
  });
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(read, data);
  EXPECT_LE(largest, 256u * 1024);  // streamed in 256 KiB pieces, never slurped whole
}

TEST_F(BlobStoreTest, SinkErrorStopsRead) {
  std::string digest = MustPut(Pattern(600 * 1024));
  int calls = 0;
  Status status = store_->Read(digest, [&](const char*, size_t) {
    ++calls;
    return Unavailable("client went away");
  });
  EXPECT_EQ(status.code(), Code::kUnavailable);
  EXPECT_EQ(calls, 1);
}

TEST_F(BlobStoreTest, IdenticalContentIsStoredOnce) {
  std::string first = MustPut("same bytes");
  std::string second = MustPut("same bytes");
  EXPECT_EQ(first, second);
  Result<std::vector<BlobInfo>> blobs = store_->List();
  ASSERT_TRUE(blobs.ok());
  ASSERT_EQ(blobs->size(), 1u);
  EXPECT_EQ((*blobs)[0].digest, first);
  EXPECT_EQ(CountEntries(root_ / first.substr(0, 2)), 1u);
}

TEST_F(BlobStoreTest, ConcurrentPutsOfSameContent) {
  std::string data = Pattern(300 * 1024);
  std::vector<std::thread> threads;
  std::vector<std::string> digests(8);
  for (size_t i = 0; i < digests.size(); ++i) {
    threads.emplace_back([&, i] { digests[i] = MustPut(data); });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& digest : digests) EXPECT_EQ(digest, Sha256Hex(data));
  EXPECT_EQ(*store_->ReadAll(digests[0]), data);
  EXPECT_EQ(CountEntries(root_ / "tmp"), 0u);
}

TEST_F(BlobStoreTest, DigestMismatchIsRefusedAndLeavesNothing) {
  Result<std::unique_ptr<BlobWriter>> writer = store_->NewWriter();
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append("actual content").ok());
  std::string expected = Sha256Hex("claimed content");
  Result<std::string> digest = (*writer)->Commit(expected);
  ASSERT_FALSE(digest.ok());
  EXPECT_EQ(digest.status().code(), Code::kInvalidArgument);
  EXPECT_NE(digest.status().message().find(expected), std::string::npos);
  EXPECT_NE(digest.status().message().find(Sha256Hex("actual content")), std::string::npos);

  EXPECT_FALSE(store_->Exists(Sha256Hex("actual content")));
  EXPECT_FALSE(store_->Exists(expected));
  EXPECT_EQ(CountEntries(root_ / "tmp"), 0u);
  EXPECT_FALSE((*writer)->Commit().ok());  // the writer is finished
  EXPECT_FALSE((*writer)->Append("more").ok());
}

TEST_F(BlobStoreTest, AbandonedWriterRemovesTempFile) {
  {
    Result<std::unique_ptr<BlobWriter>> writer = store_->NewWriter();
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Append("never committed").ok());
    EXPECT_EQ(CountEntries(root_ / "tmp"), 1u);
  }
  EXPECT_EQ(CountEntries(root_ / "tmp"), 0u);
  Result<std::vector<BlobInfo>> blobs = store_->List();
  ASSERT_TRUE(blobs.ok());
  EXPECT_TRUE(blobs->empty());
}

TEST_F(BlobStoreTest, CorruptBlobIsDataLossEverywhere) {
  std::string digest = MustPut(Pattern(1000));
  Corrupt(digest, Pattern(999) + "X");  // same size, different bytes

  Status read = store_->Read(digest, [](const char*, size_t) { return Status::Ok(); });
  EXPECT_EQ(read.code(), Code::kDataLoss) << read.ToString();
  EXPECT_EQ(store_->ReadAll(digest).status().code(), Code::kDataLoss);

  fs::path out = dir_->path() / "out";
  ASSERT_TRUE(EnsureDir(out).ok());
  Status copy = store_->CopyTo(digest, out / "model.bin");
  EXPECT_EQ(copy.code(), Code::kDataLoss) << copy.ToString();
  EXPECT_FALSE(fs::exists(out / "model.bin"));
  EXPECT_EQ(CountEntries(out), 0u);  // no temp file either
}

TEST_F(BlobStoreTest, TruncatedBlobIsDataLoss) {
  std::string digest = MustPut(Pattern(5000));
  Corrupt(digest, Pattern(4000));
  EXPECT_EQ(store_->ReadAll(digest).status().code(), Code::kDataLoss);
}

TEST_F(BlobStoreTest, FailedCopyRemovesStaleDestination) {
  std::string digest = MustPut("good");
  Corrupt(digest, "evil");
  fs::path destination = dir_->path() / "stale";
  std::ofstream(destination) << "old content";
  EXPECT_EQ(store_->CopyTo(digest, destination).code(), Code::kDataLoss);
  EXPECT_FALSE(fs::exists(destination));
}

TEST_F(BlobStoreTest, CopyToWritesVerifiedFileWithMode) {
  std::string data = Pattern(700 * 1024);
  std::string digest = MustPut(data);
  fs::path out = dir_->path() / "out";
  ASSERT_TRUE(EnsureDir(out).ok());
  Status status = store_->CopyTo(digest, out / "weights", 0640);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(*ReadFile(out / "weights"), data);
  struct stat st;
  ASSERT_EQ(::stat((out / "weights").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(CountEntries(out), 1u);
}

TEST_F(BlobStoreTest, MissingBlobIsNotFound) {
  std::string absent = Sha256Hex("never stored");
  EXPECT_FALSE(store_->Exists(absent));
  EXPECT_EQ(store_->Stat(absent).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->ReadAll(absent).status().code(), Code::kNotFound);
  fs::path destination = dir_->path() / "absent";
  EXPECT_EQ(store_->CopyTo(absent, destination).code(), Code::kNotFound);
  EXPECT_FALSE(fs::exists(destination));
  EXPECT_EQ(CountEntries(dir_->path()), 1u);  // just the store root
}

TEST_F(BlobStoreTest, OpenRemovesTempLeftovers) {
  std::ofstream(root_ / "tmp" / "blob-crashed") << "partial";
  ASSERT_TRUE(fs::create_directory(root_ / "tmp" / "dir-crashed"));
  std::ofstream(root_ / "tmp" / "dir-crashed" / "x") << "partial";
  std::string digest = MustPut("survivor");

  Reopen();
  EXPECT_TRUE(fs::is_directory(root_ / "tmp"));
  EXPECT_EQ(CountEntries(root_ / "tmp"), 0u);
  EXPECT_EQ(*store_->ReadAll(digest), "survivor");
}

TEST_F(BlobStoreTest, ListIgnoresStraysAndRemoveWorks) {
  std::string a = MustPut("a");
  std::string b = MustPut("b");
  // Strays: a temp file, a non-digest name, a digest in the wrong shard,
  // an uppercase digest, a file where a shard should be.
  std::ofstream(root_ / "tmp" / Sha256Hex("in tmp")) << "x";
  std::ofstream(root_ / a.substr(0, 2) / "notes.txt") << "x";
  std::string wrong_shard = Sha256Hex("c");
  std::string other = wrong_shard.substr(0, 2) == "00" ? "01" : "00";
  ASSERT_TRUE(fs::create_directories(root_ / other));
  std::ofstream(root_ / other / wrong_shard) << "c";
  std::string upper = Sha256Hex("d");
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  std::ofstream(root_ / a.substr(0, 2) / upper) << "d";
  std::ofstream(root_ / "zz") << "x";

  Result<std::vector<BlobInfo>> blobs = store_->List();
  ASSERT_TRUE(blobs.ok()) << blobs.status().ToString();
  std::vector<std::string> digests;
  for (const auto& info : *blobs) digests.push_back(info.digest);
  std::vector<std::string> expected = {a, b};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(digests, expected);
  EXPECT_EQ((*blobs)[0].size, 1u);

  ASSERT_TRUE(store_->Remove(a).ok());
  EXPECT_FALSE(store_->Exists(a));
  EXPECT_TRUE(store_->Remove(a).ok());  // absent is fine
  blobs = store_->List();
  ASSERT_TRUE(blobs.ok());
  ASSERT_EQ(blobs->size(), 1u);
  EXPECT_EQ((*blobs)[0].digest, b);
}

TEST_F(BlobStoreTest, BadDigestStringsAreRefused) {
  std::string good = MustPut("x");
  std::string upper = good;
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  const std::vector<std::string> bad = {"",
                                        "abc",
                                        upper,
                                        "sha256:" + good,
                                        good + "0",
                                        good.substr(1),
                                        "../../../../etc/passwd",
                                        "../" + good.substr(3),
                                        std::string(64, 'g'),
                                        good.substr(0, 63) + std::string(1, '\0')};
  fs::path destination = dir_->path() / "dest";
  for (const std::string& digest : bad) {
    SCOPED_TRACE(digest);
    EXPECT_FALSE(store_->Exists(digest));
    EXPECT_TRUE(store_->PathFor(digest).empty());
    EXPECT_EQ(store_->Stat(digest).status().code(), Code::kInvalidArgument);
    EXPECT_EQ(store_->ReadAll(digest).status().code(), Code::kInvalidArgument);
    EXPECT_EQ(store_->CopyTo(digest, destination).code(), Code::kInvalidArgument);
    EXPECT_FALSE(fs::exists(destination));
    EXPECT_EQ(store_->Remove(digest).code(), Code::kInvalidArgument);
    if (!digest.empty()) {  // empty means "no expectation" for Commit
      Result<std::unique_ptr<BlobWriter>> writer = store_->NewWriter();
      ASSERT_TRUE(writer.ok());
      ASSERT_TRUE((*writer)->Append("x").ok());
      EXPECT_EQ((*writer)->Commit(digest).status().code(), Code::kInvalidArgument);
    }
  }
  EXPECT_TRUE(store_->Exists(good));  // Remove(upper) did not touch it
  EXPECT_EQ(CountEntries(root_ / "tmp"), 0u);
}

}  // namespace
}  // namespace orrery
