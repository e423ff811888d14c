#include "serving/metrics.h"

namespace orrery {

void LatencyHistogram::Observe(std::chrono::nanoseconds elapsed) {
  double seconds = std::chrono::duration<double>(elapsed).count();
  for (size_t i = 0; i < kBoundsSeconds.size(); ++i) {
    if (seconds <= kBoundsSeconds[i]) {
      buckets_[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }  // above the last bound: only +Inf (count) holds it
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(elapsed.count()), std::memory_order_relaxed);
}

void LatencyHistogram::Render(const std::string& name, const std::string& labels,
                              std::string& out) const {
  uint64_t cumulative = 0;
  std::string prefix = labels.empty() ? "" : labels + ",";
  for (size_t i = 0; i < kBoundsSeconds.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    char bound[32];
    std::snprintf(bound, sizeof(bound), "%g", kBoundsSeconds[i]);
    out += name + "_bucket{" + prefix + "le=\"" + bound + "\"} " + std::to_string(cumulative) +
           "\n";
  }
  uint64_t count = Count();
  out += name + "_bucket{" + prefix + "le=\"+Inf\"} " + std::to_string(count) + "\n";
  char sum[48];
  std::snprintf(sum, sizeof(sum), "%.9f", static_cast<double>(SumNanos()) / 1e9);
  out += name + "_sum{" + labels + "} " + sum + "\n";
  out += name + "_count{" + labels + "} " + std::to_string(count) + "\n";
}

void BatchSizeHistogram::Observe(uint64_t rows) {
  size_t bucket = 0;
  while (bucket + 1 < kBuckets && (uint64_t{1} << bucket) < rows) ++bucket;
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(rows, std::memory_order_relaxed);
}

void BatchSizeHistogram::Render(const std::string& name, const std::string& labels,
                                std::string& out) const {
  uint64_t cumulative = 0;
  std::string prefix = labels.empty() ? "" : labels + ",";
  for (size_t i = 0; i < kBuckets; ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    out += name + "_bucket{" + prefix + "le=\"" + std::to_string(uint64_t{1} << i) + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  uint64_t count = Count();
  out += name + "_bucket{" + prefix + "le=\"+Inf\"} " + std::to_string(count) + "\n";
  out += name + "_sum{" + labels + "} " + std::to_string(sum_.load(std::memory_order_relaxed)) +
         "\n";
  out += name + "_count{" + labels + "} " + std::to_string(count) + "\n";
}

std::vector<BatchStats::Entry> BatchStats::Snapshot() const {
  std::vector<Entry> entries;
  for (size_t i = 0; i < by_rows_.size(); ++i) {
    uint64_t count = by_rows_[i].count.load(std::memory_order_relaxed);
    if (count == 0) continue;
    entries.push_back({i + 1, count, by_rows_[i].ns.load(std::memory_order_relaxed)});
  }
  return entries;
}

std::string PrometheusLabel(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace orrery
