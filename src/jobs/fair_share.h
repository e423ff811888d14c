// Which queued jobs start now: per-tenant quotas and the hub's capacity,
// shared across tenants by dominant-resource fairness (DRF).
//
// Why DRF: jobs ask for several resources at once (running slots, cpus,
// memory, gpus). DRF gives each tenant the same share of the resource it
// uses most of, which no tenant can improve by lying about its needs
// (strategy-proof) and which needs no weights from the operator; FfDL and
// YARN/Mesos schedulers use it for the same reasons. Ties (equal shares)
// go to the tenant that started a job least recently: round robin among
// equals, so that the order in which tenants submitted does not decide.
//
// Within a tenant, jobs start in submission order: when a tenant's oldest
// queued job does not fit its quota, its later jobs wait too. A job that
// fits no free capacity now is passed over for other tenants' jobs that do
// (it starts when capacity frees).
//
// Thread-safety: a pure function.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

namespace orrery {

struct JobDemand {
  int64_t cpus = 0;
  int64_t memory_bytes = 0;
  int64_t gpus = 0;
};

// A tenant's limits, set by the hub admin. 0 means "no limit of its own"
// (the hub's capacity still bounds it).
struct TenantLimits {
  int64_t max_running = 0;
  int64_t cpus = 0;
  int64_t memory_bytes = 0;
  int64_t gpus = 0;
  int64_t max_wall_time_s = 0;  // checked at submit, not here
};

// What the hub may run at once (orrery serve --job-slots, --job-cpus, ...).
struct HubCapacity {
  int64_t max_running = 2;
  int64_t cpus = 1;
  int64_t memory_bytes = int64_t{4} << 30;
  int64_t gpus = 0;
};

struct QueuedJob {
  int64_t id = 0;
  int64_t tenant_id = 0;
  JobDemand demand;
};

struct RunningJob {
  int64_t tenant_id = 0;
  JobDemand demand;
};

// The ids of `queued` (oldest first) to start now, in start order.
// `last_started`: per tenant, when it last started a job (any clock; absent:
// never), for the tie-break.
std::vector<int64_t> PickJobsToStart(const std::vector<QueuedJob>& queued,
                                     const std::vector<RunningJob>& running,
                                     const HubCapacity& capacity,
                                     const std::function<TenantLimits(int64_t tenant_id)>& limits,
                                     const std::map<int64_t, int64_t>& last_started);

}  // namespace orrery
