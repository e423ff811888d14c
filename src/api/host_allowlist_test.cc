#include "api/host_allowlist.h"

#include <gtest/gtest.h>

#include <unistd.h>

namespace orrery {
namespace {

TEST(HostAllowListTest, LoopbackBindAnswersToItsAddressAndLocalhost) {
  HostAllowList list = HostAllowList::For("127.0.0.1", {});
  for (const char* host : {"127.0.0.1", "127.0.0.1:7070", "localhost", "LOCALHOST:7070",
                           "localhost.", ""}) {
    EXPECT_TRUE(list.Allows(host)) << host;
  }
  // A DNS-rebinding page: its own name, with the hub's port.
  for (const char* host : {"attacker.example:7070", "attacker.example", "127.0.0.2:7070",
                           "[::1]:7070", "localhost.attacker.example", "127.0.0.1.nip.io"}) {
    EXPECT_FALSE(list.Allows(host)) << host;
  }
  EXPECT_EQ(list.Describe(), "127.0.0.1, localhost");
}

TEST(HostAllowListTest, Ipv6BindTakesBracketedHosts) {
  HostAllowList list = HostAllowList::For("::1", {});
  EXPECT_TRUE(list.Allows("[::1]:7070"));
  EXPECT_TRUE(list.Allows("[::1]"));
  EXPECT_FALSE(list.Allows("[::2]:7070"));
}

TEST(HostAllowListTest, OperatorNamesAndTheWildcard) {
  HostAllowList list = HostAllowList::For("127.0.0.1", {"hub.lab.example", "Other.Example:443"});
  EXPECT_TRUE(list.Allows("hub.lab.example:7070"));
  EXPECT_TRUE(list.Allows("other.example"));
  EXPECT_FALSE(list.Allows("lab.example"));
  HostAllowList any = HostAllowList::For("127.0.0.1", {"*"});
  EXPECT_TRUE(any.Allows("anything.example:1"));
  EXPECT_EQ(any.Describe(), "any");
}

TEST(HostAllowListTest, EveryAddressBindAnswersToTheHostsNamesAndAddresses) {
  HostAllowList list = HostAllowList::For("0.0.0.0", {});
  EXPECT_TRUE(list.Allows("127.0.0.1:7070"));  // the loopback interface's address
  EXPECT_TRUE(list.Allows("localhost"));
  char name[256] = {};
  ASSERT_EQ(::gethostname(name, sizeof name - 1), 0);
  EXPECT_TRUE(list.Allows(std::string(name) + ":7070"));
  EXPECT_FALSE(list.Allows("attacker.example"));
}

}  // namespace
}  // namespace orrery
