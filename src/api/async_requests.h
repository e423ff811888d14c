// AsyncRequests: the answers of asynchronous inference requests (DLHub's
// asynchronous run), kept until their owner fetches them, for a bounded time
// and size per tenant.
//
// - Begin registers a request of a tenant and returns its id ("req_" + 128
//   random bits, hex); kUnavailable when the tenant already has
//   max_pending requests unanswered.
// - Finish stores the answer (any HttpResponse: the inference's result or its
//   error). An answer that would take the tenant past max_bytes is replaced
//   by a 507 error saying so.
// - Find, for the request's tenant only (another tenant's id is absent):
//   pending, its answer, or expired (answers are kept keep_s after they
//   arrived; the id is remembered as expired for as long again).
// Kept in memory: a server restart forgets them (documented).
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "api/http.h"
#include "core/status.h"

namespace orrery {

class AsyncRequests {
 public:
  struct Options {
    size_t max_pending = 1000;          // unanswered requests per tenant
    uint64_t max_bytes = 256ull << 20;  // bytes of kept answers per tenant
    std::chrono::seconds keep{3600};    // how long an answer is kept
  };
  explicit AsyncRequests(Options options) : options_(options) {}

  Result<std::string> Begin(int64_t tenant_id, const std::string& model);
  void Finish(const std::string& id, HttpResponse answer);
  // Takes back a request that was never started (its answer will not come).
  void Cancel(const std::string& id);

  struct State {
    enum Kind { kPending, kDone, kExpired } kind = kPending;
    std::string model;
    HttpResponse answer;  // kDone
  };
  // nullopt: no such request of this tenant.
  std::optional<State> Find(int64_t tenant_id, const std::string& id);

  const Options& options() const { return options_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    int64_t tenant_id = 0;
    std::string model;
    bool done = false;
    bool expired = false;
    HttpResponse answer;
    Clock::time_point finished;
  };
  struct Usage {
    size_t pending = 0;
    uint64_t bytes = 0;
  };
  void SweepLocked(Clock::time_point now);  // REQUIRES(mutex_)

  const Options options_;
  std::mutex mutex_;
  std::map<std::string, Entry> entries_;  // GUARDED_BY(mutex_)
  std::map<int64_t, Usage> usage_;        // GUARDED_BY(mutex_), per tenant
  Clock::time_point last_sweep_;          // GUARDED_BY(mutex_)
};

}  // namespace orrery
