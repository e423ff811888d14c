// Repository against a real data directory (SQLite file + blob files): the
// publish/describe/delete life cycle, visibility rules, garbage collection,
// corruption detection and materialisation for serving.
#include "repository/repository.h"

#include <gtest/gtest.h>

#include <fstream>

#include "core/files.h"
#include "core/hash.h"
#include "repository/testing/test_repository.h"

namespace orrery {
namespace {

std::string Manifest(const std::string& name, const std::string& title) {
  return "name: " + name + "\ntitle: " + title +
         "\ncreators: [{name: Tester}]\nyear: 2026\nbackend: python\n"
         "tags: [alpha, beta]\ntask: demo-task\nfiles: [model.py]\n"
         "signature:\n  inputs: [{name: x, datatype: FP32, shape: [-1, 2]}]\n"
         "  outputs: [{name: y, datatype: FP32, shape: [-1]}]\n";
}

class RepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The repository's wall clock is the test's: token expiry is a matter of
    // setting `now_`, not of waiting.
    now_ = NowUnixSeconds();
    auto opened = testing::OpenTestRepository("repo-test-", [this] { return now_.load(); });
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    dir_ = opened->dir;
    repo_ = std::move(opened->repository);
    admin_ = opened->hub;
    acme_ = MakeTenant("acme");
    other_ = MakeTenant("other");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::atomic<int64_t> now_{0};

  Caller MakeTenant(const std::string& tenant) {
    EXPECT_TRUE(repo_->CreateTenant(admin_, tenant).ok());
    return testing::MakeCaller(*repo_, admin_, tenant, Role::kPublisher).value();
  }

  std::filesystem::path Package(const std::map<std::string, std::string>& files) {
    auto path = dir_ / ("pkg-" + std::to_string(counter_++) + ".tar");
    Status written = testing::WritePackage(path, files);
    EXPECT_TRUE(written.ok()) << written.ToString();
    return path;
  }

  Result<PublishResult> Publish(const Caller& caller, const std::string& name,
                                const std::string& code, PublishOptions options = {}) {
    auto archive =
        Package({{"orrery.yaml", Manifest(name, "Title of " + name)}, {"model.py", code}});
    return repo_->Publish(caller, PackageKind::kServable, {caller.tenant, name}, archive, options);
  }

  size_t BlobFiles() {
    size_t count = 0;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir_ / "data/blobs")) {
      if (entry.is_regular_file() && entry.path().parent_path().filename() != "tmp") ++count;
    }
    return count;
  }

  std::filesystem::path dir_;
  std::unique_ptr<Repository> repo_;
  Caller admin_, acme_, other_;
  int counter_ = 0;
};

TEST_F(RepositoryTest, PublishNumbersVersionsAndMovesLatest) {
  auto first = Publish(acme_, "model", "v1");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->version["version"], 1);
  auto second = Publish(acme_, "model", "v2");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->version["version"], 2);
  auto described = repo_->Describe(acme_, PackageKind::kServable, {"acme", "model"});
  ASSERT_TRUE(described.ok());
  EXPECT_EQ((*described)["latest_version"], 2);
  EXPECT_EQ((*described)["versions"].size(), 2u);
  // The package digest is over the sorted "<sha256>  <path>" lines.
  std::string lines = Sha256Hex("v2") + "  model.py\n" +
                      Sha256Hex(Manifest("model", "Title of model")) + "  orrery.yaml\n";
  EXPECT_EQ(second->version["digest"], Sha256Hex(lines));
}

TEST_F(RepositoryTest, IfChangedSkipsIdenticalContent) {
  ASSERT_TRUE(Publish(acme_, "model", "same").ok());
  PublishOptions options;
  options.if_changed = true;
  auto again = Publish(acme_, "model", "same", options);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->version["version"], 1);
}

TEST_F(RepositoryTest, PrivateObjectsAreNotFoundForOtherTenants) {
  ASSERT_TRUE(Publish(acme_, "secret", "x").ok());
  auto theirs = repo_->Describe(other_, PackageKind::kServable, {"acme", "secret"});
  auto absent = repo_->Describe(other_, PackageKind::kServable, {"acme", "nothing"});
  ASSERT_FALSE(theirs.ok());
  EXPECT_EQ(theirs.status().code(), Code::kNotFound);
  EXPECT_EQ(theirs.status().message(),
            absent.status().message().substr(0, absent.status().message().find("nothing")) +
                "secret not found");
  ListQuery query;
  query.text = "secret";
  EXPECT_EQ((*repo_->Search(other_, query))["total"], 0);
  EXPECT_EQ((*repo_->Search(acme_, query))["total"], 1);
  // Sharing makes it visible to that tenant only, and never writable.
  ASSERT_TRUE(repo_->AddShare(acme_, PackageKind::kServable, {"acme", "secret"}, "other").ok());
  EXPECT_TRUE(repo_->Describe(other_, PackageKind::kServable, {"acme", "secret"}).ok());
  auto change = repo_->DeleteObject(other_, PackageKind::kServable, {"acme", "secret"});
  EXPECT_EQ(change.status().code(), Code::kPermissionDenied);
}

TEST_F(RepositoryTest, PublishIntoAnotherTenantIsRefused) {
  auto archive = Package({{"orrery.yaml", Manifest("m", "t")}, {"model.py", "x"}});
  auto result = repo_->Publish(acme_, PackageKind::kServable, {"other", "m"}, archive, {});
  EXPECT_EQ(result.status().code(), Code::kPermissionDenied);
  EXPECT_EQ(BlobFiles(), 0u);
}

TEST_F(RepositoryTest, BadManifestStoresNothing) {
  auto archive = Package({{"orrery.yaml", Manifest("m", "t")}});  // lists model.py, lacks it
  auto result = repo_->Publish(acme_, PackageKind::kServable, {"acme", "m"}, archive, {});
  EXPECT_EQ(result.status().code(), Code::kUnprocessable);
  EXPECT_EQ(BlobFiles(), 0u);
  EXPECT_EQ((*repo_->List(acme_, {}))["total"], 0);
}

TEST_F(RepositoryTest, DeleteVersionTombstonesAndCollectsItsBlobs) {
  ASSERT_TRUE(Publish(acme_, "model", "one").ok());
  ASSERT_TRUE(Publish(acme_, "model", "two").ok());
  size_t before = BlobFiles();
  ASSERT_TRUE(repo_->SetAlias(acme_, PackageKind::kServable, {"acme", "model"}, "prod", 2).ok());
  ASSERT_TRUE(repo_->DeleteVersion(acme_, PackageKind::kServable, {"acme", "model"}, {2, ""}).ok());
  // "two" was only in version 2; the manifest blob is shared with version 1.
  EXPECT_EQ(BlobFiles(), before - 1);
  auto described = repo_->Describe(acme_, PackageKind::kServable, {"acme", "model"});
  EXPECT_EQ((*described)["latest_version"], 1);
  EXPECT_FALSE((*described)["aliases"].contains("prod"));
  auto gone = repo_->DescribeVersion(acme_, PackageKind::kServable, {"acme", "model"}, {2, ""});
  EXPECT_EQ(gone.status().code(), Code::kNotFound);
  auto check = repo_->Check(admin_);
  EXPECT_TRUE((*check)["ok"].get<bool>()) << check->dump();
}

TEST_F(RepositoryTest, CorruptBlobIsDetectedOnExportAndCheck) {
  auto published = Publish(acme_, "model", "precious");
  ASSERT_TRUE(published.ok());
  std::string digest = Sha256Hex("precious");
  auto path = dir_ / "data/blobs" / digest.substr(0, 2) / digest;
  std::filesystem::permissions(path, std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::add);
  std::ofstream(path, std::ios::trunc) << "tampered";
  auto exported = repo_->ExportArchive(acme_, PackageKind::kServable, {"acme", "model"}, {1, ""});
  EXPECT_EQ(exported.status().code(), Code::kDataLoss);
  auto check = repo_->Check(admin_);
  EXPECT_FALSE((*check)["ok"].get<bool>());
}

TEST_F(RepositoryTest, GarbageCollectionKeepsReferencedBlobs) {
  ASSERT_TRUE(Publish(acme_, "model", "kept").ok());
  size_t referenced = BlobFiles();
  auto blobs = BlobStore::Open(dir_ / "data/blobs");
  ASSERT_TRUE((*blobs)->Put("orphan").ok());
  EXPECT_EQ(BlobFiles(), referenced + 1);
  auto young = repo_->CollectGarbage(admin_, 3600);
  EXPECT_EQ((*young)["removed"], 0);  // within the grace period
  auto collected = repo_->CollectGarbage(admin_, 0);
  EXPECT_EQ((*collected)["removed"], 1);
  EXPECT_EQ(BlobFiles(), referenced);
  EXPECT_EQ(repo_->CollectGarbage(acme_, 0).status().code(), Code::kPermissionDenied);
}

TEST_F(RepositoryTest, MaterializeUnpacksAVerifiedDirectory) {
  ASSERT_TRUE(Publish(acme_, "model", "print('hi')").ok());
  auto dir = repo_->Materialize(acme_, {"acme", "model"}, {0, "latest"});
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  EXPECT_EQ(*ReadFile(*dir / "model.py"), "print('hi')");
  auto again = repo_->Materialize(acme_, {"acme", "model"}, {1, ""});
  EXPECT_EQ(*again, *dir);
  EXPECT_EQ(repo_->Materialize(other_, {"acme", "model"}, {1, ""}).status().code(),
            Code::kNotFound);
}

TEST_F(RepositoryTest, FileSetsAreStoredOncePerTenantAndKeptFromCollection) {
  auto archive = Package({{"train.py", "print('train')"}, {"lib/util.py", "x = 1"}});
  auto stored = repo_->StoreFileSet(acme_, archive);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  EXPECT_EQ(stored->size, 19u);
  EXPECT_EQ(stored->paths, (std::vector<std::string>{"lib/util.py", "train.py"}));
  auto again = repo_->StoreFileSet(acme_, archive);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->digest, stored->digest);
  // The blobs outlive a full collection: the set references them.
  ASSERT_TRUE(repo_->CollectGarbage(admin_, 0).ok());
  auto dir = repo_->MaterializeFileSet(acme_, stored->digest);
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  EXPECT_EQ(*ReadFile(*dir / "train.py"), "print('train')");
  EXPECT_EQ(repo_->DescribeFileSet(acme_, stored->digest)->paths.size(), 2u);
  // Another tenant's set is absent for this one.
  EXPECT_EQ(repo_->MaterializeFileSet(other_, stored->digest).status().code(), Code::kNotFound);
  EXPECT_EQ(repo_->DescribeFileSet(other_, stored->digest).status().code(), Code::kNotFound);
  EXPECT_TRUE(repo_->Check(admin_)->at("ok").get<bool>());
  // Readers may not store; a bad archive stores nothing.
  Caller reader = testing::MakeCaller(*repo_, admin_, "acme", Role::kReader).value();
  EXPECT_EQ(repo_->StoreFileSet(reader, archive).status().code(), Code::kPermissionDenied);
  auto bad = dir_ / "bad.tar";
  ASSERT_TRUE(WriteFileAtomic(bad, std::string(2048, 'x')).ok());
  EXPECT_EQ(repo_->StoreFileSet(acme_, bad).status().code(), Code::kInvalidArgument);
}

TEST_F(RepositoryTest, TokensAreHashedExpireAndRevoke) {
  auto created = repo_->CreateToken(admin_, "acme", Role::kReader, 0, "ci");
  ASSERT_TRUE(created.ok());
  std::string token = (*created)["token"];
  EXPECT_EQ(token.size(), 68u);
  // Stored as a hash only: the text is in neither the catalog nor its WAL.
  auto catalog = ReadFile(dir_ / "data/catalog.db");
  auto wal = ReadFile(dir_ / "data/catalog.db-wal");
  ASSERT_TRUE(catalog.ok() && wal.ok());
  EXPECT_EQ(catalog->find(token.substr(4)), std::string::npos);
  EXPECT_EQ(wal->find(token.substr(4)), std::string::npos);

  // Expiry: valid up to the second before expires_at, then refused (the
  // authentication cache does not outlive it).
  auto expiring = repo_->CreateToken(admin_, "acme", Role::kReader, 60, "expires");
  ASSERT_TRUE(expiring.ok());
  std::string short_lived = (*expiring)["token"];
  EXPECT_EQ((*expiring)["expires_at"], FormatUnixSeconds(now_ + 60));
  ASSERT_TRUE(repo_->Authenticate(short_lived).ok());
  now_ += 59;
  ASSERT_TRUE(repo_->Authenticate(short_lived).ok());
  now_ += 1;
  EXPECT_EQ(repo_->Authenticate(short_lived).status().message(), "token expired");
  EXPECT_TRUE(repo_->Authenticate(token).ok());  // a token without expiry does not expire

  ASSERT_TRUE(repo_->Authenticate(token).ok());
  ASSERT_TRUE(repo_->RevokeToken(admin_, (*created)["id"]).ok());
  EXPECT_EQ(repo_->Authenticate(token).status().message(), "token revoked");
  EXPECT_EQ(repo_->Authenticate("orr_" + std::string(64, 'a')).status().code(),
            Code::kUnauthenticated);
  EXPECT_EQ(repo_->CreateToken(acme_, "acme", Role::kAdmin, 0, "").status().code(),
            Code::kPermissionDenied);
  EXPECT_EQ(repo_->CreateToken(admin_, "acme", Role::kReader, INT64_MAX, "").status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(repo_->CreateToken(admin_, "acme", Role::kReader, -1, "").status().code(),
            Code::kInvalidArgument);
}

}  // namespace
}  // namespace orrery
