#include "core/task_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>

namespace orrery {
namespace {

using namespace std::chrono_literals;

TEST(TaskPoolTest, RunsTasksBesideEachOther) {
  TaskPool pool(2);
  // Each task waits for the other to start: only two threads at once pass.
  std::promise<void> first_started, second_started;
  std::shared_future<void> first = first_started.get_future().share();
  std::shared_future<void> second = second_started.get_future().share();
  std::promise<bool> first_saw, second_saw;
  pool.Post([&] {
    first_started.set_value();
    first_saw.set_value(second.wait_for(10s) == std::future_status::ready);
  });
  pool.Post([&] {
    second_started.set_value();
    second_saw.set_value(first.wait_for(10s) == std::future_status::ready);
  });
  EXPECT_TRUE(first_saw.get_future().get());
  EXPECT_TRUE(second_saw.get_future().get());
}

TEST(TaskPoolTest, TheDestructorRunsEveryPostedTask) {
  std::atomic<int> ran{0};
  {
    TaskPool pool(1);
    for (int i = 0; i < 100; ++i) {
      pool.Post([&ran, &pool, i] {
        ++ran;
        if (i == 99) pool.Post([&ran] { ++ran; });  // posted while stopping
      });
    }
  }
  EXPECT_EQ(ran.load(), 101);
}

}  // namespace
}  // namespace orrery
