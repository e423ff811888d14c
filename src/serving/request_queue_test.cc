// RequestQueue's order: highest level first, FIFO within a level.
#include "serving/request_queue.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace orrery {
namespace {

using Queue = RequestQueue<std::string>;
using Visit = Queue::Visit;

std::vector<std::string> Drain(Queue& queue) {
  std::vector<std::string> out;
  std::string job;
  while (queue.PopFront(&job)) out.push_back(job);
  return out;
}

TEST(RequestQueue, PopsTheHighestLevelFirstAndFifoWithinALevel) {
  Queue queue(3);
  queue.Push(3, "c1");
  queue.Push(2, "b1");
  queue.Push(3, "c2");
  queue.Push(1, "a1");
  queue.Push(2, "b2");
  EXPECT_EQ(queue.size(), 5u);
  EXPECT_EQ(queue.size(1), 1u);
  EXPECT_EQ(queue.size(2), 2u);
  EXPECT_EQ(queue.size(3), 2u);
  EXPECT_EQ(Drain(queue), (std::vector<std::string>{"a1", "b1", "b2", "c1", "c2"}));
  EXPECT_TRUE(queue.empty());
}

TEST(RequestQueue, ZeroLevelsIsOneFifo) {
  Queue queue(0);
  EXPECT_EQ(queue.levels(), 1u);
  queue.Push(1, "x");
  queue.Push(1, "y");
  queue.PushFront(1, "w");
  EXPECT_EQ(Drain(queue), (std::vector<std::string>{"w", "x", "y"}));
}

TEST(RequestQueue, ExtractTakesInQueueOrderAndStopsWhenAsked) {
  Queue queue(2);
  for (const char* job : {"b-keep", "b-take", "b-after-stop"}) queue.Push(2, job);
  for (const char* job : {"a-take", "a-keep"}) queue.Push(1, job);
  std::vector<std::string> seen, taken;
  queue.Extract(
      [&](const std::string& job) {
        seen.push_back(job);
        if (job == "b-after-stop") return Visit::kStop;
        return job.ends_with("take") ? Visit::kTake : Visit::kSkip;
      },
      taken);
  EXPECT_EQ(seen,
            (std::vector<std::string>{"a-take", "a-keep", "b-keep", "b-take", "b-after-stop"}));
  EXPECT_EQ(taken, (std::vector<std::string>{"a-take", "b-take"}));
  EXPECT_EQ(queue.size(), 3u);
  EXPECT_EQ(Drain(queue), (std::vector<std::string>{"a-keep", "b-keep", "b-after-stop"}));
}

TEST(RequestQueue, ForEachVisitsInOrderUntilFalse) {
  Queue queue(2);
  queue.Push(2, "late");
  queue.Push(1, "first");
  queue.Push(1, "second");
  std::vector<std::string> seen;
  queue.ForEach([&](const std::string& job) {
    seen.push_back(job);
    return seen.size() < 2;
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"first", "second"}));
  EXPECT_EQ(queue.size(), 3u);
}

TEST(RequestQueue, TakeAllEmptiesInQueueOrder) {
  Queue queue(2);
  queue.Push(2, "low");
  queue.Push(1, "high");
  EXPECT_EQ(queue.TakeAll(), (std::vector<std::string>{"high", "low"}));
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.size(2), 0u);
}

}  // namespace
}  // namespace orrery
