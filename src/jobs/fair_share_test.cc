// PickJobsToStart: quotas, capacity, submission order within a tenant, and
// dominant-resource fairness with round robin among equals.
#include "jobs/fair_share.h"

#include <gtest/gtest.h>

namespace orrery {
namespace {

JobDemand Small() { return {1, 1 << 20, 0}; }

TenantLimits NoLimits(int64_t) { return {}; }

TEST(FairShareTest, FillsCapacityRoundRobinAcrossTenantsInSubmissionOrder) {
  // Tenant 1 submitted all its jobs first; tenants alternate anyway.
  std::vector<QueuedJob> queued = {{1, 1, Small()}, {2, 1, Small()}, {3, 1, Small()},
                                   {4, 2, Small()}, {5, 2, Small()}, {6, 3, Small()}};
  HubCapacity capacity{4, 64, int64_t{64} << 30, 0};
  EXPECT_EQ(PickJobsToStart(queued, {}, capacity, NoLimits, {}),
            (std::vector<int64_t>{1, 4, 6, 2}));
}

TEST(FairShareTest, TheTenantWithTheSmallestDominantShareGoesFirst) {
  // Tenant 1 runs a job holding half the memory: its dominant share is 0.5.
  std::vector<RunningJob> running = {{1, {1, int64_t{8} << 30, 0}}};
  std::vector<QueuedJob> queued = {{10, 1, Small()}, {11, 2, Small()}};
  HubCapacity capacity{3, 16, int64_t{16} << 30, 0};
  EXPECT_EQ(PickJobsToStart(queued, running, capacity, NoLimits, {}),
            (std::vector<int64_t>{11, 10}));
}

TEST(FairShareTest, TieGoesToTheTenantThatStartedLeastRecently) {
  std::vector<QueuedJob> queued = {{1, 1, Small()}, {2, 2, Small()}};
  HubCapacity capacity{1, 64, int64_t{64} << 30, 0};
  EXPECT_EQ(PickJobsToStart(queued, {}, capacity, NoLimits, {{1, 50}, {2, 40}}),
            (std::vector<int64_t>{2}));
  EXPECT_EQ(PickJobsToStart(queued, {}, capacity, NoLimits, {{1, 30}, {2, 40}}),
            (std::vector<int64_t>{1}));
}

TEST(FairShareTest, QuotasHoldJobsAndKeepTheTenantsOrder) {
  std::vector<QueuedJob> queued = {{1, 1, {4, 1 << 20, 0}}, {2, 1, Small()}, {3, 2, Small()}};
  HubCapacity capacity{8, 64, int64_t{64} << 30, 0};
  auto limits = [](int64_t tenant) {
    TenantLimits limit;
    if (tenant == 1) limit.cpus = 2;  // job 1 never fits now; job 2 waits behind it
    return limit;
  };
  EXPECT_EQ(PickJobsToStart(queued, {}, capacity, limits, {}), (std::vector<int64_t>{3}));
  auto one_running = [](int64_t) {
    TenantLimits limit;
    limit.max_running = 1;
    return limit;
  };
  std::vector<QueuedJob> two = {{1, 1, Small()}, {2, 1, Small()}};
  EXPECT_EQ(PickJobsToStart(two, {}, capacity, one_running, {}), (std::vector<int64_t>{1}));
  EXPECT_TRUE(PickJobsToStart(two, {{1, Small()}}, capacity, one_running, {}).empty());
}

TEST(FairShareTest, CapacityBoundsEveryResourceAndBigJobsDoNotBlockOthers) {
  HubCapacity capacity{4, 4, int64_t{4} << 30, 1};
  std::vector<QueuedJob> queued = {{1, 1, {3, 1 << 20, 0}}, {2, 2, {2, 1 << 20, 0}},
                                   {3, 3, {1, 1 << 20, 1}}, {4, 3, {1, 1 << 20, 1}}};
  // 3 cpus for job 1; job 2 (2 cpus) does not fit beside it; job 3 does
  // (its gpu is the hub's only one), job 4 then lacks a gpu.
  EXPECT_EQ(PickJobsToStart(queued, {}, capacity, NoLimits, {}), (std::vector<int64_t>{1, 3}));
  HubCapacity no_gpus{4, 4, int64_t{4} << 30, 0};
  EXPECT_EQ(PickJobsToStart({{3, 3, {1, 1 << 20, 1}}}, {}, no_gpus, NoLimits, {}).size(), 0u);
}

}  // namespace
}  // namespace orrery
