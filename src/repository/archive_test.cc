#include "repository/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/files.h"

namespace orrery {
namespace {

namespace fs = std::filesystem;

// One tar header as a client could write it, malicious ones included.
struct RawEntry {
  std::string path;
  std::string data;
  int type = AE_IFREG;
  mode_t perm = 0644;
  std::string link;  // symlink target (AE_IFLNK) or hard link target (AE_IFREG)
};

RawEntry File(std::string path, std::string data = "x") {
  return {std::move(path), std::move(data), AE_IFREG, 0644, ""};
}
RawEntry Dir(std::string path) {
  return {std::move(path), "", AE_IFDIR, 0755, ""};
}
RawEntry Special(std::string path, int type, std::string link = "") {
  mode_t perm = type == AE_IFLNK ? 0777 : 0644;
  return {std::move(path), "", type, perm, std::move(link)};
}

// Writes `entries` verbatim with libarchive's own writer; `filter` is one of
// "", "zstd", "gzip".
void WriteRawTar(const fs::path& out, const std::vector<RawEntry>& entries,
                 const std::string& filter = "") {
  archive* handle = archive_write_new();
  ASSERT_EQ(archive_write_set_format_pax_restricted(handle), ARCHIVE_OK);
  if (filter == "zstd") {
    ASSERT_EQ(archive_write_add_filter_zstd(handle), ARCHIVE_OK);
  } else if (filter == "gzip") {
    ASSERT_EQ(archive_write_add_filter_gzip(handle), ARCHIVE_OK);
  }
  ASSERT_EQ(archive_write_open_filename(handle, out.c_str()), ARCHIVE_OK);
  for (const RawEntry& raw : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, raw.path.c_str());
    archive_entry_set_filetype(entry, raw.type);
    archive_entry_set_perm(entry, raw.perm);
    if (raw.type == AE_IFLNK) archive_entry_set_symlink(entry, raw.link.c_str());
    if (raw.type == AE_IFREG && !raw.link.empty())
      archive_entry_set_hardlink(entry, raw.link.c_str());
    if (raw.type == AE_IFCHR) archive_entry_set_rdev(entry, makedev(1, 3));
    archive_entry_set_size(entry, static_cast<la_int64_t>(raw.data.size()));
    // WARN: a non-ASCII name stored as raw bytes (hdrcharset=BINARY).
    int rc = archive_write_header(handle, entry);
    ASSERT_TRUE(rc == ARCHIVE_OK || rc == ARCHIVE_WARN) << archive_error_string(handle);
    if (!raw.data.empty()) {
      ASSERT_EQ(archive_write_data(handle, raw.data.data(), raw.data.size()),
                static_cast<la_ssize_t>(raw.data.size()));
    }
    archive_entry_free(entry);
  }
  ASSERT_EQ(archive_write_close(handle), ARCHIVE_OK);
  archive_write_free(handle);
}

void WriteBytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string ReadBytes(const fs::path& path) {
  auto content = ReadFile(path);
  EXPECT_TRUE(content.ok()) << content.status().ToString();
  return content.ok() ? *content : "";
}

// Records what ReadPackageArchive delivers; can fail on a chosen file.
class RecordingVisitor : public ArchiveVisitor {
 public:
  Status BeginFile(const ArchiveEntry& entry) override {
    if (entry.path == fail_on) return Internal("visitor refused " + entry.path);
    current = entry.path;
    order.push_back(entry.path);
    contents[current];
    return Status::Ok();
  }
  Status Data(const char* data, size_t size) override {
    contents[current].append(data, size);
    ++data_calls;
    return Status::Ok();
  }
  Status EndFile() override {
    ++ended;
    return Status::Ok();
  }

  std::string fail_on;
  std::string current;
  std::vector<std::string> order;
  std::map<std::string, std::string> contents;
  int data_calls = 0;
  int ended = 0;
};

class ArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "orrery-archive-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
  }
  void TearDown() override { fs::remove_all(root_); }

  // Scans a raw tar and expects `code` with `fragment` in the message; the
  // streaming read must refuse it the same way.
  void ExpectRefused(const std::vector<RawEntry>& entries, Code code, const std::string& fragment,
                     const ArchiveLimits& limits = {}) {
    fs::path tar = root_ / "refused.tar";
    WriteRawTar(tar, entries);
    auto scan = ScanPackageArchive(tar, limits);
    ASSERT_FALSE(scan.ok()) << "scan accepted it";
    EXPECT_EQ(scan.status().code(), code) << scan.status().ToString();
    EXPECT_NE(scan.status().message().find(fragment), std::string::npos)
        << scan.status().message() << " lacks " << fragment;
    RecordingVisitor visitor;
    Status read = ReadPackageArchive(tar, limits, visitor);
    EXPECT_EQ(read.code(), code) << read.ToString();
  }

  fs::path root_;
};

TEST_F(ArchiveTest, ScanListsFilesAndReadsTheManifest) {
  fs::path tar = root_ / "ok.tar";
  RawEntry tool = File("./bin/run.sh", "#!/bin/sh\n");
  tool.perm = 0750;
  WriteRawTar(tar, {Dir("./"), File("./orrery.yaml", "name: x\n"), Dir("./bin/"), tool,
                    File("model.pt", std::string(3000, 'm')), File("sub/orrery.yaml", "no")});
  auto scan = ScanPackageArchive(tar, {});
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  EXPECT_TRUE(scan->has_manifest);
  EXPECT_EQ(scan->manifest_text, "name: x\n");
  ASSERT_EQ(scan->files.size(), 4u);
  EXPECT_EQ(scan->files[0].path, "orrery.yaml");
  EXPECT_EQ(scan->files[1].path, "bin/run.sh");
  EXPECT_TRUE(scan->files[1].executable);
  EXPECT_EQ(scan->files[2].path, "model.pt");
  EXPECT_EQ(scan->files[2].size, 3000u);
  EXPECT_FALSE(scan->files[2].executable);
}

TEST_F(ArchiveTest, ScanWithoutManifest) {
  fs::path tar = root_ / "ok.tar";
  WriteRawTar(tar, {File("a.bin")});
  auto scan = ScanPackageArchive(tar, {});
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  EXPECT_FALSE(scan->has_manifest);
  EXPECT_TRUE(scan->manifest_text.empty());
}

TEST_F(ArchiveTest, RefusesPathsThatEscape) {
  for (const char* path :
       {"../x", "/abs", "a/../../b", "a/./b", "a//b", "a\\b", "./../x", "bad\xff", "a\nb"}) {
    SCOPED_TRACE(path);
    ExpectRefused({File("ok.txt"), File(path)}, Code::kInvalidArgument, "invalid path");
  }
  ExpectRefused({File("../x")}, Code::kInvalidArgument, "'../x'");
}

TEST_F(ArchiveTest, RefusesLinksDevicesAndFifos) {
  ExpectRefused({Special("link", AE_IFLNK, "/etc/passwd")}, Code::kInvalidArgument,
                "symbolic link");
  ExpectRefused({File("a"), Special("b", AE_IFREG, "a")}, Code::kInvalidArgument, "hard link");
  ExpectRefused({Special("null", AE_IFCHR)}, Code::kInvalidArgument, "character device");
  ExpectRefused({Special("disk", AE_IFBLK)}, Code::kInvalidArgument, "block device");
  ExpectRefused({Special("pipe", AE_IFIFO)}, Code::kInvalidArgument, "FIFO");
}

TEST_F(ArchiveTest, RefusesDuplicatePaths) {
  ExpectRefused({File("a"), File("b"), File("a")}, Code::kInvalidArgument, "duplicate");
  ExpectRefused({File("./a"), File("a")}, Code::kInvalidArgument, "duplicate");
  ExpectRefused({Dir("d/"), Dir("d/")}, Code::kInvalidArgument, "duplicate");
}

TEST_F(ArchiveTest, RefusesAPathThatIsBothFileAndDirectory) {
  ExpectRefused({File("a"), File("a/b")}, Code::kInvalidArgument, "both a file and a directory");
  ExpectRefused({File("a/b"), File("a")}, Code::kInvalidArgument, "both a file and a directory");
  ExpectRefused({File("a"), Dir("a/")}, Code::kInvalidArgument, "duplicate");
}

TEST_F(ArchiveTest, EntryLimitCountsFilesAndDirectories) {
  ArchiveLimits limits;
  limits.max_entries = 3;
  ExpectRefused({Dir("d/"), File("d/a"), File("d/b"), File("d/c")}, Code::kTooLarge, "entries",
                limits);
  fs::path tar = root_ / "three.tar";
  WriteRawTar(tar, {Dir("./"), File("a"), File("b"), File("c")});  // "./" is not counted
  EXPECT_TRUE(ScanPackageArchive(tar, limits).ok());
}

TEST_F(ArchiveTest, ByteLimitUsesDeclaredSizes) {
  ArchiveLimits limits;
  limits.max_total_bytes = 10;
  ExpectRefused({File("a", "123456"), File("b", "12345")}, Code::kTooLarge, "bytes", limits);
  fs::path tar = root_ / "ten.tar";
  WriteRawTar(tar, {File("a", "12345"), File("b", "12345")});
  EXPECT_TRUE(ScanPackageArchive(tar, limits).ok());
}

TEST_F(ArchiveTest, ManifestSizeIsLimited) {
  ArchiveLimits limits;
  limits.max_manifest_bytes = 4;
  fs::path tar = root_ / "big-manifest.tar";
  WriteRawTar(tar, {File("orrery.yaml", "name: too-long\n")});
  auto scan = ScanPackageArchive(tar, limits);
  EXPECT_EQ(scan.status().code(), Code::kTooLarge);
  EXPECT_NE(scan.status().message().find("orrery.yaml"), std::string::npos);
  // Only the root orrery.yaml is the manifest.
  WriteRawTar(tar, {File("sub/orrery.yaml", "name: too-long\n")});
  EXPECT_TRUE(ScanPackageArchive(tar, limits).ok());
}

TEST_F(ArchiveTest, RefusesBytesThatAreNotATar) {
  std::string zip("PK\x03\x04\x14\x00\x00\x00\x08\x00", 10);
  zip += std::string(200, '\0');
  for (const std::string& bytes : {std::string(), std::string("hello, not a tar archive"), zip}) {
    fs::path path = root_ / "bytes.bin";
    WriteBytes(path, bytes);
    auto scan = ScanPackageArchive(path, {});
    ASSERT_FALSE(scan.ok());
    EXPECT_EQ(scan.status().code(), Code::kInvalidArgument);
    EXPECT_EQ(scan.status().message(), "not a tar archive");
  }
  // gzip is not one of the accepted filters.
  fs::path gz = root_ / "a.tar.gz";
  WriteRawTar(gz, {File("a")}, "gzip");
  EXPECT_EQ(ScanPackageArchive(gz, {}).status().message(), "not a tar archive");
}

TEST_F(ArchiveTest, RefusesATruncatedTar) {
  fs::path tar = root_ / "whole.tar";
  WriteRawTar(tar, {File("a", std::string(5000, 'a')), File("b", std::string(5000, 'b'))});
  std::string bytes = ReadBytes(tar);
  fs::path cut = root_ / "cut.tar";
  WriteBytes(cut, bytes.substr(0, 512 + 2048));
  RecordingVisitor visitor;
  Status status = ReadPackageArchive(cut, {}, visitor);
  EXPECT_EQ(status.code(), Code::kInvalidArgument) << status.ToString();
}

TEST_F(ArchiveTest, MissingArchiveIsNotFound) {
  EXPECT_EQ(ScanPackageArchive(root_ / "absent.tar", {}).status().code(), Code::kNotFound);
}

TEST_F(ArchiveTest, ReadStreamsEveryFileInOrder) {
  fs::path tar = root_ / "ok.tar";
  std::string big(1024 * 1024 + 3, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  WriteRawTar(tar, {File("big.bin", big), Dir("d/"), File("d/empty", ""), File("z", "zz")});
  RecordingVisitor visitor;
  ASSERT_TRUE(ReadPackageArchive(tar, {}, visitor).ok());
  EXPECT_EQ(visitor.order, (std::vector<std::string>{"big.bin", "d/empty", "z"}));
  EXPECT_EQ(visitor.contents["big.bin"], big);
  EXPECT_EQ(visitor.contents["d/empty"], "");
  EXPECT_EQ(visitor.ended, 3);
  EXPECT_GE(visitor.data_calls, 5);  // streamed in 256 KiB blocks
}

TEST_F(ArchiveTest, VisitorErrorStopsTheRead) {
  fs::path tar = root_ / "ok.tar";
  WriteRawTar(tar, {File("a"), File("b"), File("c")});
  RecordingVisitor visitor;
  visitor.fail_on = "b";
  Status status = ReadPackageArchive(tar, {}, visitor);
  EXPECT_EQ(status.code(), Code::kInternal);
  EXPECT_EQ(status.message(), "visitor refused b");
  EXPECT_EQ(visitor.order, std::vector<std::string>{"a"});
}

TEST_F(ArchiveTest, ZstdRoundTrip) {
  fs::path tar = root_ / "pkg.tar.zst";
  auto writer = ArchiveWriter::Create(tar, /*zstd=*/true);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  std::string payload(100000, 'q');
  ASSERT_TRUE(
      (*writer)
          ->AddFile("orrery.yaml", 8, false,
                    [](const ArchiveWriter::WriteFn& write) { return write("name: z\n", 8); })
          .ok());
  ASSERT_TRUE((*writer)
                  ->AddFile("data/q.bin", payload.size(), true,
                            [&](const ArchiveWriter::WriteFn& write) {
                              return write(payload.data(), payload.size());
                            })
                  .ok());
  ASSERT_TRUE((*writer)->Finish().ok());
  EXPECT_EQ(ReadBytes(tar).substr(0, 4), std::string("\x28\xb5\x2f\xfd", 4));  // zstd magic
  EXPECT_LT(fs::file_size(tar), 2000u);

  auto scan = ScanPackageArchive(tar, {});
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  EXPECT_EQ(scan->manifest_text, "name: z\n");
  ASSERT_EQ(scan->files.size(), 2u);
  EXPECT_TRUE(scan->files[1].executable);
  RecordingVisitor visitor;
  ASSERT_TRUE(ReadPackageArchive(tar, {}, visitor).ok());
  EXPECT_EQ(visitor.contents["data/q.bin"], payload);
}

// A source tree with nested, empty, executable and non-ASCII-named files.
void MakeTree(const fs::path& dir) {
  fs::create_directories(dir / "sub" / "deeper");
  fs::create_directories(dir / "empty-dir");
  WriteBytes(dir / "orrery.yaml", "name: tree\n");
  WriteBytes(dir / "b.bin", std::string("\0\1\2binary", 9));
  WriteBytes(dir / "sub" / "run.sh", "#!/bin/sh\necho hi\n");
  ::chmod((dir / "sub" / "run.sh").c_str(), 0755);
  WriteBytes(dir / "sub" / "deeper" / "empty", "");
  WriteBytes(dir / "sub" / "ünïcode.txt", "u");
  WriteBytes(dir / "sub" / (std::string(120, 'l') + ".txt"), "long names need pax headers");
}

TEST_F(ArchiveTest, PackDirectoryIsSortedAndDeterministic) {
  fs::path tree = root_ / "tree";
  MakeTree(tree);
  ASSERT_TRUE(PackDirectory(tree, root_ / "one.tar", false).ok());
  // Different mtimes and ownership-independent headers: same bytes.
  fs::last_write_time(tree / "b.bin", fs::file_time_type::clock::now() - std::chrono::hours(5));
  ASSERT_TRUE(PackDirectory(tree, root_ / "two.tar", false).ok());
  EXPECT_EQ(ReadBytes(root_ / "one.tar"), ReadBytes(root_ / "two.tar"));
  ASSERT_TRUE(PackDirectory(tree, root_ / "one.tar.zst", true).ok());
  ASSERT_TRUE(PackDirectory(tree, root_ / "two.tar.zst", true).ok());
  EXPECT_EQ(ReadBytes(root_ / "one.tar.zst"), ReadBytes(root_ / "two.tar.zst"));

  auto scan = ScanPackageArchive(root_ / "one.tar", {});
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  std::vector<std::string> paths;
  for (const ArchiveEntry& entry : scan->files) paths.push_back(entry.path);
  std::vector<std::string> sorted = paths;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(paths, sorted);
  EXPECT_EQ(paths.size(), 6u);
  EXPECT_EQ(paths.front(), "b.bin");
}

TEST_F(ArchiveTest, ExtractRoundTripKeepsBytesAndExecBits) {
  fs::path tree = root_ / "tree";
  MakeTree(tree);
  ASSERT_TRUE(PackDirectory(tree, root_ / "pkg.tar.zst", true).ok());
  fs::path out = root_ / "out";
  Status status = ExtractPackageArchive(root_ / "pkg.tar.zst", out, {});
  ASSERT_TRUE(status.ok()) << status.ToString();
  int files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(tree)) {
    if (!entry.is_regular_file()) continue;
    ++files;
    fs::path copy = out / entry.path().lexically_relative(tree);
    ASSERT_TRUE(fs::is_regular_file(copy)) << copy;
    EXPECT_EQ(ReadBytes(copy), ReadBytes(entry.path())) << copy;
    struct stat info;
    ASSERT_EQ(::stat(copy.c_str(), &info), 0);
    bool executable = copy.filename() == "run.sh";
    EXPECT_EQ(info.st_mode & 07777, executable ? 0755u : 0644u) << copy;
  }
  EXPECT_EQ(files, 6);
  // Only the destination is left beside it: no staging directory.
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(root_)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"out", "pkg.tar.zst", "tree"}));
}

TEST_F(ArchiveTest, ExtractRefusesAnExistingDestination) {
  fs::path tar = root_ / "pkg.tar";
  WriteRawTar(tar, {File("a", "new")});
  fs::path out = root_ / "out";
  fs::create_directories(out);
  WriteBytes(out / "keep", "old");
  EXPECT_EQ(ExtractPackageArchive(tar, out, {}).code(), Code::kConflict);
  EXPECT_EQ(ReadBytes(out / "keep"), "old");
  EXPECT_FALSE(fs::exists(out / "a"));
  // A dangling symlink is an existing destination too.
  fs::create_symlink(root_ / "nowhere", root_ / "link");
  EXPECT_EQ(ExtractPackageArchive(tar, root_ / "link", {}).code(), Code::kConflict);
  EXPECT_FALSE(fs::exists(root_ / "nowhere"));
}

TEST_F(ArchiveTest, ExtractLeavesNothingOnABadArchive) {
  fs::path tar = root_ / "bad.tar";
  WriteRawTar(tar, {File("a", std::string(1000, 'a')), Dir("d/"), File("d/b", "b"),
                    File("../escape", "x")});
  fs::path out = root_ / "out";
  EXPECT_EQ(ExtractPackageArchive(tar, out, {}).code(), Code::kInvalidArgument);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(root_.parent_path() / "escape"));
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(root_)) names.push_back(entry.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{"bad.tar"});
}

TEST_F(ArchiveTest, PackDirectoryRefusesSymlinksAndSpecialFiles) {
  fs::path tree = root_ / "tree";
  MakeTree(tree);
  fs::create_symlink("/etc/passwd", tree / "sub" / "passwd");
  Status status = PackDirectory(tree, root_ / "out.tar", false);
  EXPECT_EQ(status.code(), Code::kInvalidArgument);
  EXPECT_NE(status.message().find("symbolic link"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("sub/passwd"), std::string::npos) << status.message();
  EXPECT_FALSE(fs::exists(root_ / "out.tar"));

  fs::remove(tree / "sub" / "passwd");
  ASSERT_EQ(::mkfifo((tree / "pipe").c_str(), 0644), 0);
  status = PackDirectory(tree, root_ / "out.tar", false);
  EXPECT_EQ(status.code(), Code::kInvalidArgument);
  EXPECT_NE(status.message().find("pipe"), std::string::npos) << status.message();
}

TEST_F(ArchiveTest, WriterChecksThatFillWritesExactlySize) {
  fs::path tar = root_ / "w.tar";
  {
    auto writer = ArchiveWriter::Create(tar, false);
    ASSERT_TRUE(writer.ok());
    Status shorter = (*writer)->AddFile(
        "a", 5, false, [](const ArchiveWriter::WriteFn& write) { return write("abc", 3); });
    EXPECT_FALSE(shorter.ok());
    EXPECT_NE(shorter.message().find("3 of 5"), std::string::npos) << shorter.message();
    EXPECT_FALSE((*writer)->Finish().ok());  // the archive is broken now
  }
  EXPECT_FALSE(fs::exists(tar));  // and was removed
  {
    auto writer = ArchiveWriter::Create(tar, false);
    ASSERT_TRUE(writer.ok());
    Status longer = (*writer)->AddFile(
        "a", 2, false, [](const ArchiveWriter::WriteFn& write) { return write("abc", 3); });
    EXPECT_FALSE(longer.ok());
  }
  EXPECT_FALSE(fs::exists(tar));
}

TEST_F(ArchiveTest, WriterRefusesBadPaths) {
  auto writer = ArchiveWriter::Create(root_ / "w.tar", false);
  ASSERT_TRUE(writer.ok());
  auto nothing = [](const ArchiveWriter::WriteFn&) { return Status::Ok(); };
  EXPECT_EQ((*writer)->AddFile("../x", 0, false, nothing).code(), Code::kInvalidArgument);
  EXPECT_EQ((*writer)->AddFile("/x", 0, false, nothing).code(), Code::kInvalidArgument);
  EXPECT_TRUE((*writer)->AddFile("fine", 0, false, nothing).ok());
  EXPECT_TRUE((*writer)->Finish().ok());
  auto scan = ScanPackageArchive(root_ / "w.tar", {});
  ASSERT_TRUE(scan.ok());
  ASSERT_EQ(scan->files.size(), 1u);
  EXPECT_EQ(scan->files[0].path, "fine");
}

}  // namespace
}  // namespace orrery
