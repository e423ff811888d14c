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
#include <vector>

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

// A count and a total time: Triton's statistics' {count, ns}.
struct DurationStat {
  std::atomic<uint64_t> count{0};
  std::atomic<uint64_t> ns{0};
  void Add(std::chrono::nanoseconds elapsed) {
    count.fetch_add(1, std::memory_order_relaxed);
    ns.fetch_add(static_cast<uint64_t>(elapsed.count()), std::memory_order_relaxed);
  }
};

// Backend calls and their compute time per batch size (rows per call,
// 1..max_rows), for the `batch_stats` of /v2/models/{m}/stats. Sized once,
// at construction; larger batches are not counted.
class BatchStats {
 public:
  struct Entry {
    uint64_t batch_size = 0;
    uint64_t count = 0;
    uint64_t ns = 0;
  };

  explicit BatchStats(size_t max_rows) : max_rows_(max_rows), by_rows_(max_rows) {}
  void Observe(uint64_t rows, std::chrono::nanoseconds compute) {
    if (rows >= 1 && rows <= max_rows_) by_rows_[rows - 1].Add(compute);
  }
  // The sizes observed at least once, smallest first.
  std::vector<Entry> Snapshot() const;

 private:
  const size_t max_rows_;
  std::vector<DurationStat> by_rows_;  // [rows - 1]
};

// What one servable version counts. Lives as long as the version is known
// to the model manager. `max_batch_rows`: the servable's max_batch_size (0
// when it does not batch).
struct ServingMetrics {
  explicit ServingMetrics(size_t max_batch_rows = 0) : batch_stats(max_batch_rows) {}

  std::atomic<uint64_t> requests{0};    // every inference request that reached the version
  std::atomic<uint64_t> failures{0};    // of those, the ones that did not succeed
  // Inferences of the successful requests a backend (or pipeline) ran: rows
  // on batched servables, else one per request; cache hits not counted.
  std::atomic<uint64_t> inferences{0};
  std::atomic<uint64_t> failure_ns{0};  // their time from submit to done
  std::atomic<uint64_t> rejected{0};    // refused at once: queue full
  std::atomic<uint64_t> expired{0};     // their timeout passed before they could run
  std::atomic<int64_t> last_inference_ms{0};  // unix ms of the last success
  // Sets last_inference_ms to now.
  void NoteSuccess() {
    last_inference_ms.store(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count(),
                            std::memory_order_relaxed);
  }
  LatencyHistogram queue;    // submit -> an instance starts it
  LatencyHistogram compute;  // Instance::Infer, per request (a batch's time for each of them)
  LatencyHistogram total;    // submit -> done (successes and failures)
  BatchSizeHistogram batch_sizes;  // batched servables: rows per backend call
  DurationStat compute_input;      // batched servables: joining a batch's inputs, per request
  DurationStat compute_output;     // batched servables: splitting its outputs, per request
  BatchStats batch_stats;          // batched servables: per batch size
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
