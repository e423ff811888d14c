#include "api/http.h"

#include <gtest/gtest.h>

namespace orrery {
namespace {

TEST(SplitPathTest, DecodesSegmentsAndSkipsEmptyOnes) {
  auto segments = SplitPath("/api//v1/servables/acme/a%2Fb");
  ASSERT_TRUE(segments.ok());
  EXPECT_EQ(*segments, (std::vector<std::string>{"api", "v1", "servables", "acme", "a/b"}));
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
