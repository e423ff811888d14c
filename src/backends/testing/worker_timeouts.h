// Test support for the backends whose instances run in worker processes
// (Python and native): checking a "worker timed out after N ms" message.
#pragma once

#include <string>

#include <gtest/gtest.h>

namespace orrery::backend_testing {

// The message names the time the request had from when the instance took it,
// which is a little less than the test's deadline when the machine is slow
// to get there (a loaded CI host under sanitizers): N in (ms - 50, ms].
inline void ExpectTimedOutAfterAbout(const std::string& message, int ms) {
  const std::string prefix = "worker timed out after ", suffix = " ms; killed";
  ASSERT_EQ(message.rfind(prefix, 0), 0u) << message;
  ASSERT_GT(message.size(), prefix.size() + suffix.size()) << message;
  ASSERT_EQ(message.substr(message.size() - suffix.size()), suffix) << message;
  int waited = std::stoi(message.substr(prefix.size()));
  EXPECT_LE(waited, ms) << message;
  EXPECT_GT(waited, ms - 50) << message;
}

}  // namespace orrery::backend_testing
