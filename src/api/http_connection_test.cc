#include "api/http_connection.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace orrery {
namespace {

void Append(InputBuffer& buffer, std::string_view bytes) {
  char* at = buffer.Reserve(bytes.size());
  ASSERT_GE(buffer.room(), bytes.size());
  std::memcpy(at, bytes.data(), bytes.size());
  buffer.Commit(bytes.size());
}

TEST(InputBufferTest, HoldsWhatWasCommittedUntilConsumed) {
  InputBuffer buffer;
  EXPECT_EQ(buffer.size(), 0u);
  Append(buffer, "GET / HTTP/1.1\r\n");
  Append(buffer, "\r\nnext");
  EXPECT_EQ(buffer.View(), "GET / HTTP/1.1\r\n\r\nnext");
  buffer.Consume(18);
  EXPECT_EQ(buffer.View(), "next");
  buffer.Consume(4);
  EXPECT_EQ(buffer.size(), 0u);
  EXPECT_EQ(buffer.View(), "");
}

TEST(InputBufferTest, ReserveKeepsUnreadBytesWhenItCompactsOrGrows) {
  InputBuffer buffer;
  std::string text(1000, 'a');
  for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>('a' + i % 26);
  Append(buffer, text);
  buffer.Consume(990);  // 10 unread bytes at the end of the block
  std::string tail = text.substr(990);
  EXPECT_EQ(buffer.View(), tail);
  // More room than is left after them: compacted (or grown), contents kept.
  Append(buffer, std::string(5000, 'z'));
  EXPECT_EQ(buffer.View(), tail + std::string(5000, 'z'));
  // Far more than the block holds: grown, contents kept.
  Append(buffer, std::string(1 << 20, 'y'));
  EXPECT_EQ(buffer.size(), 10u + 5000u + (1u << 20));
  EXPECT_EQ(buffer.View().substr(0, 10), tail);
  EXPECT_EQ(buffer.View().back(), 'y');
}

TEST(InputBufferTest, ShrinkIfIdleFreesOnlyAnEmptyLargeBlock) {
  InputBuffer buffer;
  Append(buffer, std::string(100000, 'x'));
  buffer.ShrinkIfIdle(65536);  // not empty: kept
  EXPECT_EQ(buffer.size(), 100000u);
  buffer.Consume(100000);
  buffer.ShrinkIfIdle(65536);
  EXPECT_EQ(buffer.room(), 0u);  // freed: the next Reserve allocates again
  Append(buffer, "after");
  EXPECT_EQ(buffer.View(), "after");
}

TEST(InputBufferTest, ClearDropsUnreadBytes) {
  InputBuffer buffer;
  Append(buffer, "rest of a refused body");
  buffer.Clear();
  EXPECT_EQ(buffer.size(), 0u);
  Append(buffer, "x");
  EXPECT_EQ(buffer.View(), "x");
}

}  // namespace
}  // namespace orrery
