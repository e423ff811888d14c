// Counters and latency histograms of the serving path, rendered in the
// Prometheus text exposition format by /metrics.
//
// Updates are lock-free (relaxed atomics): the request path only adds.
// Thread-safety: every method is safe from any thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace orrery {

// Latency histogram with fixed buckets from 25 µs to 60 s.
class LatencyHistogram {
 public:
  static constexpr std::array<double, 16> kBoundsSeconds = {
      25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3,
      10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1.0,   10.0,   60.0};

  void Observe(std::chrono::nanoseconds elapsed);
  uint64_t Count() const { return count_.load(std::memory_order_relaxed); }
  uint64_t SumNanos() const { return sum_ns_.load(std::memory_order_relaxed); }
  // Appends `name_bucket{labels,le=".."}`, `name_sum`, `name_count` lines.
  void Render(const std::string& name, const std::string& labels, std::string& out) const;

 private:
  std::array<std::atomic<uint64_t>, kBoundsSeconds.size()> buckets_{};  // not cumulative
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_ns_{0};
};

// Histogram of batch sizes (rows per backend call): buckets 1, 2, 4 .. 4096.
class BatchSizeHistogram {
 public:
  static constexpr size_t kBuckets = 13;  // le = 2^0 .. 2^12

  void Observe(uint64_t rows);
  uint64_t Count() const { return count_.load(std::memory_order_relaxed); }
  // Appends `name_bucket{labels,le=".."}`, `name_sum`, `name_count` lines.
  void Render(const std::string& name, const std::string& labels, std::string& out) const;

 private:
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};  // not cumulative
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_{0};
};

// What one servable version counts. Lives as long as the version is known
// to the model manager.
struct ServingMetrics {
  std::atomic<uint64_t> requests{0};  // every inference request that reached the version
  std::atomic<uint64_t> failures{0};  // of those, the ones that did not succeed
  std::atomic<uint64_t> rejected{0};  // refused at once: queue full
  std::atomic<int64_t> last_inference_ms{0};  // unix ms of the last success
  LatencyHistogram queue;    // submit -> an instance starts it
  LatencyHistogram compute;  // Instance::Infer
  LatencyHistogram total;    // submit -> done (successes and failures)
  BatchSizeHistogram batch_sizes;  // batched servables: rows per backend call
  // Response cache (servables with `cache: true`): requests answered from
  // it and requests that were not, with the time spent in the cache for
  // each (lookup; for misses also the insert of the answer).
  std::atomic<uint64_t> cache_hits{0};
  std::atomic<uint64_t> cache_misses{0};
  std::atomic<uint64_t> cache_hit_ns{0};
  std::atomic<uint64_t> cache_miss_ns{0};
};

// Escapes a label value for the text format (\\, \", \n).
std::string PrometheusLabel(const std::string& value);

}  // namespace orrery
