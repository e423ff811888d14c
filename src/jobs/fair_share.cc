#include "jobs/fair_share.h"

#include <algorithm>
#include <deque>
#include <optional>

namespace orrery {
namespace {

struct Usage {
  int64_t running = 0;
  JobDemand used;
  void Add(const JobDemand& demand) {
    ++running;
    used.cpus += demand.cpus;
    used.memory_bytes += demand.memory_bytes;
    used.gpus += demand.gpus;
  }
};

// Whether `demand` fits under `limit` with `usage` taken (0: no limit).
bool Fits(const Usage& usage, const JobDemand& demand, int64_t max_running, int64_t cpus,
          int64_t memory, int64_t gpus) {
  auto under = [](int64_t used, int64_t more, int64_t limit) {
    return limit <= 0 ? true : used + more <= limit;
  };
  return under(usage.running, 1, max_running) && under(usage.used.cpus, demand.cpus, cpus) &&
         under(usage.used.memory_bytes, demand.memory_bytes, memory) &&
         under(usage.used.gpus, demand.gpus, gpus);
}

// The hub's capacity bounds everything; it may have no gpus at all.
bool FitsHub(const Usage& hub, const JobDemand& demand, const HubCapacity& capacity) {
  return Fits(hub, demand, capacity.max_running, capacity.cpus, capacity.memory_bytes, 0) &&
         hub.used.gpus + demand.gpus <= capacity.gpus;
}

double DominantShare(const Usage& usage, const HubCapacity& capacity) {
  auto share = [](int64_t used, int64_t total) {
    return total > 0 ? static_cast<double>(used) / static_cast<double>(total) : 0.0;
  };
  return std::max({share(usage.running, capacity.max_running), share(usage.used.cpus, capacity.cpus),
                   share(usage.used.memory_bytes, capacity.memory_bytes),
                   share(usage.used.gpus, capacity.gpus)});
}

}  // namespace

std::vector<int64_t> PickJobsToStart(const std::vector<QueuedJob>& queued,
                                     const std::vector<RunningJob>& running,
                                     const HubCapacity& capacity,
                                     const std::function<TenantLimits(int64_t)>& limits,
                                     const std::map<int64_t, int64_t>& last_started_in) {
  Usage hub;
  std::map<int64_t, Usage> tenants;
  for (const RunningJob& job : running) {
    hub.Add(job.demand);
    tenants[job.tenant_id].Add(job.demand);
  }
  std::map<int64_t, std::deque<const QueuedJob*>> waiting;  // per tenant, oldest first
  for (const QueuedJob& job : queued) waiting[job.tenant_id].push_back(&job);
  std::map<int64_t, int64_t> last_started = last_started_in;
  int64_t tick = 0;
  for (const auto& [tenant, when] : last_started) tick = std::max(tick, when);

  std::vector<int64_t> picked;
  while (true) {
    std::optional<int64_t> best;
    double best_share = 0;
    for (const auto& [tenant, jobs] : waiting) {
      if (jobs.empty()) continue;
      const JobDemand& demand = jobs.front()->demand;
      TenantLimits limit = limits(tenant);
      Usage& usage = tenants[tenant];
      if (!Fits(usage, demand, limit.max_running, limit.cpus, limit.memory_bytes, limit.gpus) ||
          !FitsHub(hub, demand, capacity)) {
        continue;
      }
      double share = DominantShare(usage, capacity);
      auto started = [&](int64_t t) {
        auto it = last_started.find(t);
        return it == last_started.end() ? int64_t{-1} : it->second;
      };
      if (!best || share < best_share ||
          (share == best_share && started(tenant) < started(*best))) {
        best = tenant;
        best_share = share;
      }
    }
    if (!best) return picked;
    const QueuedJob* job = waiting[*best].front();
    waiting[*best].pop_front();
    hub.Add(job->demand);
    tenants[*best].Add(job->demand);
    last_started[*best] = ++tick;
    picked.push_back(job->id);
  }
}

}  // namespace orrery
