#include "repository/names.h"

#include <gtest/gtest.h>

#include <string>

namespace orrery {
namespace {

TEST(TenantName, AcceptsLowercaseDigitsAndDashes) {
  EXPECT_TRUE(ValidateTenantName("acme").ok());
  EXPECT_TRUE(ValidateTenantName("0day-lab").ok());
  EXPECT_TRUE(ValidateTenantName(std::string(kMaxTenantNameLength, 'a')).ok());
}

TEST(TenantName, RefusesEverythingElse) {
  for (const char* bad : {"", "Acme", "ac me", "acme/x", "-acme", "ac_me", "ac.me", "..", "é"}) {
    Status status = ValidateTenantName(bad);
    EXPECT_EQ(status.code(), Code::kInvalidArgument) << "'" << bad << "'";
  }
  EXPECT_EQ(ValidateTenantName(std::string(kMaxTenantNameLength + 1, 'a')).code(),
            Code::kInvalidArgument);
}

TEST(ObjectName, AcceptsDotsUnderscoresDashesAndCase) {
  EXPECT_TRUE(ValidateObjectName("digits-mlp").ok());
  EXPECT_TRUE(ValidateObjectName("ResNet_50.v2").ok());
  EXPECT_TRUE(ValidateObjectName("7b").ok());
  EXPECT_TRUE(ValidateObjectName(std::string(kMaxObjectNameLength, 'x')).ok());
}

TEST(ObjectName, RefusesPathLikeAndMalformedNames) {
  for (const char* bad :
       {"", "a/b", "..", "a..b", ".hidden", "-x", "_x", "a b", "a\tb", "a\\b", "a:b", "a%2fb"}) {
    EXPECT_EQ(ValidateObjectName(bad).code(), Code::kInvalidArgument) << "'" << bad << "'";
  }
  EXPECT_EQ(ValidateObjectName(std::string(kMaxObjectNameLength + 1, 'x')).code(),
            Code::kInvalidArgument);
}

TEST(ObjectName, MessageNamesTheRule) {
  EXPECT_NE(ValidateObjectName("a..b").message().find(".."), std::string::npos);
  EXPECT_NE(ValidateObjectName(std::string(200, 'x')).message().find("128"), std::string::npos);
}

TEST(AliasName, RefusesNumbersLatestAndLongNames) {
  EXPECT_TRUE(ValidateAliasName("prod").ok());
  EXPECT_TRUE(ValidateAliasName("v2").ok());
  EXPECT_TRUE(ValidateAliasName("2024-06").ok());
  EXPECT_TRUE(ValidateAliasName(std::string(kMaxAliasLength, 'a')).ok());
  EXPECT_EQ(ValidateAliasName("42").code(), Code::kInvalidArgument);
  EXPECT_EQ(ValidateAliasName("007").code(), Code::kInvalidArgument);
  EXPECT_EQ(ValidateAliasName("latest").code(), Code::kInvalidArgument);
  EXPECT_EQ(ValidateAliasName(std::string(kMaxAliasLength + 1, 'a')).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(ValidateAliasName("a/b").code(), Code::kInvalidArgument);
  EXPECT_EQ(ValidateAliasName("..").code(), Code::kInvalidArgument);
}

TEST(QualifiedName, ParsesTenantAndName) {
  auto parsed = ParseQualifiedName("acme/digits-mlp");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->tenant, "acme");
  EXPECT_EQ(parsed->name, "digits-mlp");
  EXPECT_EQ(parsed->ToString(), "acme/digits-mlp");
}

TEST(QualifiedName, BareNameNeedsADefaultTenant) {
  EXPECT_EQ(ParseQualifiedName("mlp").status().code(), Code::kInvalidArgument);
  auto parsed = ParseQualifiedName("mlp", "acme");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->ToString(), "acme/mlp");
}

TEST(QualifiedName, RefusesBadParts) {
  for (const char* bad : {"Acme/mlp", "acme/", "/mlp", "acme/a/b", "acme/..", "acme/a b", ""}) {
    EXPECT_EQ(ParseQualifiedName(bad, "acme").status().code(), Code::kInvalidArgument)
        << "'" << bad << "'";
  }
}

TEST(VersionRef, ParsesNumbers) {
  auto three = ParseVersionRef("3");
  ASSERT_TRUE(three.ok());
  EXPECT_TRUE(three->is_number());
  EXPECT_EQ(three->number, 3);
  EXPECT_EQ(three->ToString(), "3");
  auto max = ParseVersionRef("9223372036854775807");
  ASSERT_TRUE(max.ok());
  EXPECT_EQ(max->number, INT64_MAX);
}

TEST(VersionRef, RefusesZeroLeadingZerosSignsAndOverflow) {
  for (const char* bad :
       {"0", "01", "007", "-1", "+1", "9223372036854775808", "99999999999999999999999", "", " 1"}) {
    EXPECT_EQ(ParseVersionRef(bad).status().code(), Code::kInvalidArgument) << "'" << bad << "'";
  }
}

TEST(VersionRef, ParsesAliasesIncludingLatest) {
  auto latest = ParseVersionRef("latest");
  ASSERT_TRUE(latest.ok());
  EXPECT_FALSE(latest->is_number());
  EXPECT_EQ(latest->alias, "latest");
  auto prod = ParseVersionRef("prod");
  ASSERT_TRUE(prod.ok());
  EXPECT_EQ(prod->ToString(), "prod");
  EXPECT_EQ(ParseVersionRef("a/b").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseVersionRef("v..1").status().code(), Code::kInvalidArgument);
  // Not all digits, so an alias rather than a malformed number.
  auto dotted = ParseVersionRef("1.5");
  ASSERT_TRUE(dotted.ok());
  EXPECT_EQ(dotted->alias, "1.5");
}

}  // namespace
}  // namespace orrery
