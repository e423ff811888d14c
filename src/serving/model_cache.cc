// The response cache's part of Model::Submit (the contract is in model.h;
// the cache itself in response_cache.h).
//
// A hit finishes the job on the submitting thread: it counts as a request
// and its total latency is observed, but it has no queue or compute time
// (nothing queued or ran). A miss carries on through the queue; its done
// callback stores a successful answer before it answers, so a request that
// follows the answer finds it.
#include "serving/model.h"
#include "serving/response_cache.h"
#include "serving/signature.h"

namespace orrery {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t Nanos(Clock::duration elapsed) {
  return static_cast<uint64_t>(std::chrono::nanoseconds(elapsed).count());
}

}  // namespace

bool Model::AnswerFromCache(InferJob& job) {
  ResponseCache* cache = options_.cache.get();
  if (cache == nullptr || !cache->enabled() || !servable_->manifest.cache) return false;
  auto start = Clock::now();
  std::string cache_key = ResponseCache::MakeKey(key(), servable_->info.digest, job.inputs);
  std::optional<std::vector<Tensor>> outputs = cache->Lookup(cache_key);
  uint64_t lookup_ns = Nanos(Clock::now() - start);
  if (outputs) {
    metrics_.cache_hits.fetch_add(1, std::memory_order_relaxed);
    metrics_.cache_hit_ns.fetch_add(lookup_ns, std::memory_order_relaxed);
    metrics_.NoteSuccess();
    InferOutcome outcome{Status::Ok(), std::move(*outputs), false, /*cache_hit=*/true};
    Finish(job, std::move(outcome), /*accepted=*/false);
    return true;
  }
  metrics_.cache_misses.fetch_add(1, std::memory_order_relaxed);
  // The Model outlives the callback: Finish calls it before the request
  // leaves in_flight_, and Unload waits for that.
  job.done = [this, cache, cache_key = std::move(cache_key), lookup_ns,
              done = std::move(job.done)](InferOutcome outcome) mutable {
    auto insert_start = Clock::now();
    if (outcome.status.ok() && CheckOutputs(servable_->manifest, outcome.outputs).ok()) {
      cache->Insert(std::move(cache_key), outcome.outputs);
    }
    metrics_.cache_miss_ns.fetch_add(lookup_ns + Nanos(Clock::now() - insert_start),
                                     std::memory_order_relaxed);
    done(std::move(outcome));
  };
  return false;
}

}  // namespace orrery
