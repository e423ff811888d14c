// Unit tests of the CLI's pure parts: names, durations, URLs, sizes, token
// discovery and error mapping. Nothing here talks to a server.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "cli/api_client.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "cli/output.h"
#include "cli/url.h"

namespace orrery::cli {
namespace {

namespace fs = std::filesystem;

TEST(ParseObjectRef, QualifiedAndBareNames) {
  Result<ObjectRef> ref = ParseObjectRef("acme/mlp", true);
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  EXPECT_EQ(ref->tenant, "acme");
  EXPECT_EQ(ref->name, "mlp");
  EXPECT_FALSE(ref->version.has_value());

  ref = ParseObjectRef("digits.v2", false);
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(ref->tenant, "");
  EXPECT_EQ(ref->name, "digits.v2");
}

TEST(ParseObjectRef, VersionSplitsAtTheLastColon) {
  Result<ObjectRef> ref = ParseObjectRef("acme/mlp:3", true);
  ASSERT_TRUE(ref.ok());
  ASSERT_TRUE(ref->version.has_value());
  EXPECT_EQ(ref->version->number, 3);
  EXPECT_EQ(ref->ToString(), "acme/mlp:3");

  ref = ParseObjectRef("mlp:prod", true);
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(ref->version->alias, "prod");
  ref = ParseObjectRef("mlp:latest", true);
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(ref->version->alias, "latest");
}

TEST(ParseObjectRef, RefusesBadInputAsUsageErrors) {
  for (const char* text : {"", "acme/", "/mlp", "Acme/mlp", "a/b/c", "acme/mlp:", "acme/mlp:0",
                           "acme/mlp:03", "acme/a:b:2", "acme/..x", "acme/-x", "acme/x y"}) {
    Result<ObjectRef> ref = ParseObjectRef(text, true);
    EXPECT_FALSE(ref.ok()) << text;
    if (!ref.ok()) {
      EXPECT_EQ(ref.status().code(), Code::kInvalidArgument) << text;
    }
  }
  EXPECT_FALSE(ParseObjectRef("acme/mlp:3", false).ok());
}

TEST(Kinds, SingularAndPluralForms) {
  EXPECT_EQ(*PluralKind("servable"), "servables");
  EXPECT_EQ(*PluralKind("datasets"), "datasets");
  EXPECT_EQ(*SingularKind("servables"), "servable");
  EXPECT_EQ(*SingularKind(""), "");
  EXPECT_FALSE(PluralKind("model").ok());
}

TEST(UrlEncode, EncodesAllButUnreserved) {
  EXPECT_EQ(UrlEncode("Az09-._~"), "Az09-._~");
  EXPECT_EQ(UrlEncode("a b/c?d&e=f#g%"), "a%20b%2Fc%3Fd%26e%3Df%23g%25");
  EXPECT_EQ(UrlEncode("\xC3\xA9"), "%C3%A9");
  EXPECT_EQ(UrlEncode(""), "");
}

TEST(ApiPath, EncodesSegmentsAndSkipsEmptyQueryValues) {
  EXPECT_EQ(ApiPath({"whoami"}), "/api/v1/whoami");
  EXPECT_EQ(ApiPath({"servables", "acme", "x y", "versions"},
                    {{"q", "a b"}, {"tenant", ""}, {"page", "2"}}),
            "/api/v1/servables/acme/x%20y/versions?q=a%20b&page=2");
  EXPECT_EQ(ApiPath({"search"}, {{"tenant", ""}, {"tag", "a&b"}}), "/api/v1/search?tag=a%26b");
}

TEST(ParseServerUrl, HostPortAndPrefix) {
  Result<ServerAddress> address = ParseServerUrl("http://127.0.0.1:7070");
  ASSERT_TRUE(address.ok());
  EXPECT_EQ(address->host, "127.0.0.1");
  EXPECT_EQ(address->port, "7070");
  EXPECT_EQ(address->prefix, "");

  address = ParseServerUrl("http://hub.example.org/orrery/");
  ASSERT_TRUE(address.ok());
  EXPECT_EQ(address->host, "hub.example.org");
  EXPECT_EQ(address->port, "80");
  EXPECT_EQ(address->prefix, "/orrery");

  address = ParseServerUrl("http://[::1]:8080");
  ASSERT_TRUE(address.ok());
  EXPECT_EQ(address->host, "::1");
  EXPECT_EQ(address->port, "8080");

  for (const char* bad : {"https://h", "h:7070", "http://", "http://:80", "http://h:0",
                          "http://h:65536", "http://h:x"}) {
    EXPECT_FALSE(ParseServerUrl(bad).ok()) << bad;
  }
}

TEST(HumanSize, BinaryUnits) {
  EXPECT_EQ(HumanSize(0), "0 B");
  EXPECT_EQ(HumanSize(1023), "1023 B");
  EXPECT_EQ(HumanSize(1024), "1.0 KiB");
  EXPECT_EQ(HumanSize(1536), "1.5 KiB");
  EXPECT_EQ(HumanSize(20ull << 20), "20.0 MiB");
  EXPECT_EQ(HumanSize(3ull << 30), "3.0 GiB");
  EXPECT_EQ(HumanSize(5ull << 40), "5.0 TiB");
}

TEST(Field, DisplayText) {
  nlohmann::json object = {{"s", "x"}, {"n", 3}, {"a", {"p", "q"}}, {"z", nullptr}};
  EXPECT_EQ(Field(object, "s"), "x");
  EXPECT_EQ(Field(object, "n"), "3");
  EXPECT_EQ(Field(object, "a"), "p, q");
  EXPECT_EQ(Field(object, "z", "never"), "never");
  EXPECT_EQ(Field(object, "missing"), "");
}

// A fake environment and a scratch directory for token files.
class TokenDiscoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "cli-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  EnvLookup Env() {
    return [this](const char* name) -> const char* {
      auto it = env_.find(name);
      return it == env_.end() ? nullptr : it->second.c_str();
    };
  }
  void WriteFile(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }

  fs::path dir_;
  std::map<std::string, std::string> env_;
  ClientOptions options_;
};

TEST_F(TokenDiscoveryTest, FlagThenEnvThenTokenFileThenAdminToken) {
  WriteFile(dir_ / "data" / "admin.token", "orr_admin\n");
  WriteFile(dir_ / "file.token", "  orr_file \n");
  options_.data_dir = (dir_ / "data").string();
  EXPECT_EQ(*DiscoverToken(options_, Env()), "orr_admin");
  env_["ORRERY_TOKEN_FILE"] = (dir_ / "file.token").string();
  EXPECT_EQ(*DiscoverToken(options_, Env()), "orr_file");
  env_["ORRERY_TOKEN"] = "orr_env";
  EXPECT_EQ(*DiscoverToken(options_, Env()), "orr_env");
  options_.token = "orr_flag";
  EXPECT_EQ(*DiscoverToken(options_, Env()), "orr_flag");
}

TEST_F(TokenDiscoveryTest, DataDirFlagBeatsEnvironment) {
  WriteFile(dir_ / "a" / "admin.token", "orr_a");
  WriteFile(dir_ / "b" / "admin.token", "orr_b");
  env_["ORRERY_DATA_DIR"] = (dir_ / "a").string();
  EXPECT_EQ(*DiscoverToken(options_, Env()), "orr_a");
  options_.data_dir = (dir_ / "b").string();
  EXPECT_EQ(*DiscoverToken(options_, Env()), "orr_b");
}

TEST_F(TokenDiscoveryTest, MissingTokenFileIsAnErrorNotAFallThrough) {
  WriteFile(dir_ / "data" / "admin.token", "orr_admin");
  options_.data_dir = (dir_ / "data").string();
  env_["ORRERY_TOKEN_FILE"] = (dir_ / "absent").string();
  Result<std::string> token = DiscoverToken(options_, Env());
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.status().code(), Code::kInvalidArgument);
}

TEST_F(TokenDiscoveryTest, NothingFoundNamesTheAdminTokenPath) {
  options_.data_dir = (dir_ / "nowhere").string();
  Result<std::string> token = DiscoverToken(options_, Env());
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.status().code(), Code::kInvalidArgument);
  EXPECT_NE(token.status().message().find("nowhere/admin.token"), std::string::npos);
}

TEST_F(TokenDiscoveryTest, DefaultDataDirAndUrl) {
  EXPECT_EQ(ResolveDataDir("", Env()), fs::path("orrery-data"));
  EXPECT_EQ(ResolveServerUrl(options_, Env()), "http://127.0.0.1:7070");
  env_["ORRERY_URL"] = "http://hub:1";
  EXPECT_EQ(ResolveServerUrl(options_, Env()), "http://hub:1");
  options_.url = "http://other:2";
  EXPECT_EQ(ResolveServerUrl(options_, Env()), "http://other:2");
}

TEST(ServerError, UsesTheServersMessageAndKeepsUsageExitStatusFor2) {
  Status status = ServerError(404, R"({"error": "servable acme/x not found"})");
  EXPECT_EQ(status.code(), Code::kNotFound);
  EXPECT_EQ(status.message(), "servable acme/x not found (HTTP 404)");
  EXPECT_EQ(ExitCodeFor(status), 1);

  status = ServerError(400, R"({"error": "bad name"})");
  EXPECT_EQ(ExitCodeFor(status), 1);
  status = ServerError(502, "<html>bad gateway</html>");
  EXPECT_EQ(status.message(), "<html>bad gateway</html> (HTTP 502)");
  EXPECT_EQ(ExitCodeFor(InvalidArgument("usage")), 2);
  EXPECT_EQ(ExitCodeFor(Status::Ok()), 0);
}

}  // namespace
}  // namespace orrery::cli
