// Helpers for unit tests of the manifest parser.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "repository/manifest.h"

namespace orrery::testing {

// Parses `text` and expects kUnprocessable with `fragment` in the message.
inline void ExpectManifestRefused(const std::string& text, const std::string& fragment) {
  auto parsed = ParseManifest(text);
  ASSERT_FALSE(parsed.ok()) << "accepted:\n" << text;
  EXPECT_EQ(parsed.status().code(), Code::kUnprocessable) << parsed.status().ToString();
  EXPECT_NE(parsed.status().message().find(fragment), std::string::npos)
      << "message: " << parsed.status().message() << "\nexpected: " << fragment;
}

}  // namespace orrery::testing
