// Serving overrides in the Repository (real data directory): who may set,
// read and clear them, what is stored, and that they go with their version.
#include <gtest/gtest.h>

#include "core/files.h"
#include "repository/repository.h"
#include "repository/testing/test_repository.h"

namespace orrery {
namespace {

using nlohmann::json;

// `shape` is the shape of both tensors: "[-1, 2]" can batch, "[2]" cannot.
std::string ManifestText(const std::string& name, const std::string& shape) {
  return "name: " + name +
         "\ntitle: T\ncreators: [{name: Tester}]\nyear: 2026\nbackend: python\n"
         "files: [model.py]\nsignature:\n  inputs: [{name: x, datatype: FP32, shape: " +
         shape + "}]\n  outputs: [{name: y, datatype: FP32, shape: " + shape + "}]\n";
}

class ServingOverrideTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = testing::OpenTestRepository("override-test-");
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    dir_ = opened->dir;
    repo_ = std::move(opened->repository);
    hub_ = opened->hub;
    ASSERT_TRUE(repo_->CreateTenant(hub_, "acme").ok());
    ASSERT_TRUE(repo_->CreateTenant(hub_, "other").ok());
    publisher_ = MakeToken("acme", Role::kPublisher);
    admin_ = MakeToken("acme", Role::kAdmin);
    other_admin_ = MakeToken("other", Role::kAdmin);
  }
  void TearDown() override {
    repo_.reset();
    std::filesystem::remove_all(dir_);
  }

  Caller MakeToken(const std::string& tenant, Role role) {
    return testing::MakeCaller(*repo_, hub_, tenant, role).value();
  }

  void Publish(const std::string& name, const std::string& shape = "[-1, 2]") {
    auto path = dir_ / (name + std::to_string(counter_++) + ".tar");
    ASSERT_TRUE(testing::WritePackage(path, {{"orrery.yaml", ManifestText(name, shape)},
                                             {"model.py", "code"}})
                    .ok());
    auto published = repo_->Publish(publisher_, PackageKind::kServable, {"acme", name}, path, {});
    ASSERT_TRUE(published.ok()) << published.status().ToString();
  }

  // The override serving sees for acme/<name>:<version> ("" when none).
  std::string Served(const std::string& name, int64_t version = 1) {
    auto resolved = repo_->ResolveServable(publisher_, {"acme", name}, VersionRef{version, ""});
    EXPECT_TRUE(resolved.ok()) << resolved.status().ToString();
    return resolved.ok() ? resolved->serving_override : "?";
  }

  // The actions of the audit entries about serving, newest first.
  std::vector<std::string> ServingAudit() {
    std::vector<std::string> actions;
    auto audit = repo_->Audit(admin_, 100);
    EXPECT_TRUE(audit.ok()) << audit.status().ToString();
    for (const json& entry : (*audit)["entries"]) {
      std::string action = entry["action"];
      if (action.rfind("serving.", 0) == 0) {
        actions.push_back(action + " " + entry["object"].get<std::string>() + " " +
                          entry["detail"].get<std::string>());
      }
    }
    return actions;
  }

  std::filesystem::path dir_;
  std::unique_ptr<Repository> repo_;
  Caller hub_, publisher_, admin_, other_admin_;
  int counter_ = 0;
};

const VersionRef kV1{1, ""};

TEST_F(ServingOverrideTest, SetReadAndClear) {
  Publish("m");
  auto empty = repo_->GetServingOverride(admin_, {"acme", "m"}, kV1);
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ((*empty)["servable"], "acme/m:1");
  EXPECT_EQ((*empty)["override"], json::object());
  EXPECT_EQ((*empty)["effective"], (*empty)["manifest"]);
  EXPECT_EQ((*empty)["effective"]["batching"]["max_batch_size"], 0);

  uint64_t generation = repo_->CatalogGeneration();
  json body = json::parse(R"({"batching": {"max_batch_size": 8}, "cache": true})");
  auto set = repo_->SetServingOverride(admin_, {"acme", "m"}, VersionRef{0, "latest"}, body);
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_GT(repo_->CatalogGeneration(), generation);  // resolution caches see the change
  EXPECT_EQ((*set)["version"], 1);                    // the alias resolved to its number
  EXPECT_EQ((*set)["override"], body);
  EXPECT_EQ((*set)["manifest"]["batching"]["max_batch_size"], 0);
  EXPECT_EQ((*set)["effective"]["batching"]["max_batch_size"], 8);
  EXPECT_EQ((*set)["effective"]["cache"], true);
  EXPECT_EQ(json::parse(Served("m")), body);
  auto read = repo_->GetServingOverride(admin_, {"acme", "m"}, kV1);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, *set);

  // A second set replaces the whole override; null sections are not stored.
  auto replaced = repo_->SetServingOverride(admin_, {"acme", "m"}, kV1,
                                            json::parse(R"({"batching": null, "cache": true})"));
  ASSERT_TRUE(replaced.ok()) << replaced.status().ToString();
  EXPECT_EQ((*replaced)["override"], json::parse(R"({"cache": true})"));
  EXPECT_EQ((*replaced)["effective"]["batching"]["max_batch_size"], 0);
  EXPECT_EQ(Served("m"), R"({"cache":true})");

  auto cleared = repo_->ClearServingOverride(admin_, {"acme", "m"}, kV1);
  ASSERT_TRUE(cleared.ok()) << cleared.status().ToString();
  EXPECT_EQ((*cleared)["override"], json::object());
  EXPECT_EQ((*cleared)["effective"], (*cleared)["manifest"]);
  EXPECT_EQ(Served("m"), "");
  EXPECT_EQ(repo_->ClearServingOverride(admin_, {"acme", "m"}, kV1).status().code(),
            Code::kNotFound);
  EXPECT_EQ(
      ServingAudit(),
      (std::vector<std::string>{
          "serving.clear acme/m version 1", R"(serving.set acme/m version 1: {"cache":true})",
          R"(serving.set acme/m version 1: {"batching":{"max_batch_size":8},"cache":true})"}));
}

TEST_F(ServingOverrideTest, AllNullRemovesTheOverride) {
  Publish("m");
  ASSERT_TRUE(
      repo_->SetServingOverride(admin_, {"acme", "m"}, kV1, json::parse(R"({"cache": true})"))
          .ok());
  auto set = repo_->SetServingOverride(admin_, {"acme", "m"}, kV1,
                                       json::parse(R"({"cache": null, "batching": null})"));
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ((*set)["override"], json::object());
  EXPECT_EQ(Served("m"), "");
}

TEST_F(ServingOverrideTest, InvalidOverridesChangeNothing) {
  Publish("m");
  Publish("fixed", "[2]");
  ASSERT_TRUE(
      repo_->SetServingOverride(admin_, {"acme", "m"}, kV1, json::parse(R"({"cache": true})"))
          .ok());
  for (const char* bad :
       {R"({"batching": {"max_batch_size": 5000}})", R"({"cache": "yes"})", R"({"unknown": 1})"}) {
    SCOPED_TRACE(bad);
    auto refused = repo_->SetServingOverride(admin_, {"acme", "m"}, kV1, json::parse(bad));
    EXPECT_EQ(refused.status().code(), Code::kUnprocessable);
  }
  auto unbatchable = repo_->SetServingOverride(
      admin_, {"acme", "fixed"}, kV1, json::parse(R"({"batching": {"max_batch_size": 2}})"));
  EXPECT_EQ(unbatchable.status().code(), Code::kUnprocessable);
  EXPECT_NE(unbatchable.status().message().find("batching: signature.inputs[0] 'x'"),
            std::string::npos)
      << unbatchable.status().ToString();
  EXPECT_EQ(Served("m"), R"({"cache":true})");
  EXPECT_EQ(Served("fixed"), "");
  EXPECT_EQ(ServingAudit().size(), 1u);  // the first set only
}

TEST_F(ServingOverrideTest, OnlyAdminsOfTheOwnerOrTheHubAdmin) {
  Publish("m");
  json body = json::parse(R"({"cache": true})");
  // Publishers and readers of the owning tenant: 403.
  Caller reader = MakeToken("acme", Role::kReader);
  for (const Caller& caller : {publisher_, reader}) {
    EXPECT_EQ(repo_->GetServingOverride(caller, {"acme", "m"}, kV1).status().code(),
              Code::kPermissionDenied);
    EXPECT_EQ(repo_->SetServingOverride(caller, {"acme", "m"}, kV1, body).status().code(),
              Code::kPermissionDenied);
    EXPECT_EQ(repo_->ClearServingOverride(caller, {"acme", "m"}, kV1).status().code(),
              Code::kPermissionDenied);
  }
  // A private servable is not found for another tenant's admin, nor for the hub admin.
  for (const Caller& caller : {other_admin_, hub_}) {
    EXPECT_EQ(repo_->SetServingOverride(caller, {"acme", "m"}, kV1, body).status().code(),
              Code::kNotFound);
  }
  // Once public: other tenants' admins may see but not change it; the hub admin may.
  ASSERT_TRUE(
      repo_->SetVisibility(publisher_, PackageKind::kServable, {"acme", "m"}, "public").ok());
  EXPECT_EQ(repo_->SetServingOverride(other_admin_, {"acme", "m"}, kV1, body).status().code(),
            Code::kPermissionDenied);
  EXPECT_EQ(Served("m"), "");
  auto by_hub = repo_->SetServingOverride(hub_, {"acme", "m"}, kV1, body);
  ASSERT_TRUE(by_hub.ok()) << by_hub.status().ToString();
  EXPECT_EQ(Served("m"), R"({"cache":true})");
}

TEST_F(ServingOverrideTest, UnknownServablesAndVersionsAreNotFound) {
  Publish("m");
  json body = json::parse(R"({"cache": true})");
  EXPECT_EQ(repo_->SetServingOverride(admin_, {"acme", "nothing"}, kV1, body).status().code(),
            Code::kNotFound);
  EXPECT_EQ(
      repo_->SetServingOverride(admin_, {"acme", "m"}, VersionRef{2, ""}, body).status().code(),
      Code::kNotFound);
  EXPECT_EQ(repo_->GetServingOverride(admin_, {"acme", "m"}, VersionRef{0, "prod"}).status().code(),
            Code::kNotFound);
}

TEST_F(ServingOverrideTest, GoesWithItsVersion) {
  Publish("m");
  Publish("m");  // version 2
  Publish("n");
  json body = json::parse(R"({"cache": true})");
  for (int64_t version : {1, 2}) {
    ASSERT_TRUE(
        repo_->SetServingOverride(admin_, {"acme", "m"}, VersionRef{version, ""}, body).ok());
  }
  ASSERT_TRUE(repo_->SetServingOverride(admin_, {"acme", "n"}, kV1, body).ok());
  ASSERT_TRUE(repo_->DeleteVersion(publisher_, PackageKind::kServable, {"acme", "m"}, kV1).ok());
  EXPECT_EQ(repo_->GetServingOverride(admin_, {"acme", "m"}, kV1).status().code(), Code::kNotFound);
  EXPECT_EQ(Served("m", 2), R"({"cache":true})");  // the other version keeps its own
  ASSERT_TRUE(repo_->DeleteObject(publisher_, PackageKind::kServable, {"acme", "n"}).ok());
  // The check reports overrides left on deleted versions: there are none.
  auto check = repo_->Check(hub_);
  ASSERT_TRUE(check.ok()) << check.status().ToString();
  EXPECT_EQ((*check)["problems"], json::array()) << check->dump();
  // A new version of a revived object starts without one.
  Publish("n");
  EXPECT_EQ(Served("n", 2), "");
}

}  // namespace
}  // namespace orrery
