#include "api/http.h"

#include <gtest/gtest.h>

namespace orrery {
namespace {

TEST(SplitPathTest, DecodesSegments) {
  auto segments = SplitPath("/api/v1/servables/acme/a%2Fb");
  ASSERT_TRUE(segments.ok());
  EXPECT_EQ(*segments, (std::vector<std::string>{"api", "v1", "servables", "acme", "a/b"}));
  // One trailing slash names the same path; "/" has no segments.
  EXPECT_EQ(*SplitPath("/v2/"), std::vector<std::string>{"v2"});
  EXPECT_TRUE(SplitPath("/")->empty());
}

// "//" is not collapsed: "/api//v1/..." would otherwise answer as "/api/v1/...".
TEST(SplitPathTest, RefusesEmptySegments) {
  for (const char* path : {"/api//v1/servables", "//v2", "/v2//", "//"}) {
    auto segments = SplitPath(path);
    ASSERT_FALSE(segments.ok()) << path;
    EXPECT_EQ(segments.status().message(), "the request path has an empty segment ('//')");
  }
}

TEST(SplitPathTest, RefusesMalformedEscapes) {
  EXPECT_FALSE(SplitPath("/a%2").ok());
  EXPECT_FALSE(SplitPath("/a%zz").ok());
  EXPECT_FALSE(SplitPath("/a%").ok());
}

TEST(ParseQueryTest, DecodesPlusAndPercent) {
  auto query = ParseQuery("q=hello+world%21&page=2&flag");
  ASSERT_TRUE(query.ok());
  EXPECT_EQ(query->at("q"), "hello world!");
  EXPECT_EQ(query->at("page"), "2");
  EXPECT_EQ(query->at("flag"), "");
}

}  // namespace
}  // namespace orrery
