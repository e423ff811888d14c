// ModelManager::RenderMetrics: the Prometheus text of /metrics.
#include "serving/model_manager.h"

namespace orrery {
namespace {

void Header(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

// One unlabelled sample with its header.
void Total(std::string& out, const char* name, const char* type, const char* help,
           uint64_t value) {
  Header(out, name, type, help);
  out += std::string(name) + " " + std::to_string(value) + "\n";
}

void Line(std::string& out, const char* name, const std::string& labels, uint64_t value) {
  out += std::string(name) + "{" + labels + "} " + std::to_string(value) + "\n";
}

}  // namespace

std::string ModelManager::RenderMetrics(const std::string& tenant) const {
  std::vector<std::shared_ptr<Model>> models;
  for (const auto& model : Models()) {
    if (tenant.empty() || model->servable().info.name.tenant == tenant) models.push_back(model);
  }
  std::vector<std::string> labels;
  for (const auto& model : models) {
    const auto& info = model->servable().info;
    labels.push_back("servable=\"" + PrometheusLabel(info.name.ToString()) + "\",version=\"" +
                     std::to_string(info.version) + "\"");
  }
  std::string out;
  auto counter = [&](const char* name, const char* help, auto value_of) {
    Header(out, name, "counter", help);
    for (size_t i = 0; i < models.size(); ++i) Line(out, name, labels[i], value_of(*models[i]));
  };
  auto gauge = [&](const char* name, const char* help, auto value_of) {
    Header(out, name, "gauge", help);
    for (size_t i = 0; i < models.size(); ++i) Line(out, name, labels[i], value_of(*models[i]));
  };
  counter("orrery_inference_requests_total", "Inference requests that reached the servable.",
          [](const Model& m) { return m.metrics().requests.load(); });
  counter("orrery_inference_failures_total", "Inference requests that failed (any reason).",
          [](const Model& m) { return m.metrics().failures.load(); });
  counter("orrery_inference_rejected_total", "Requests refused at once because the queue was full.",
          [](const Model& m) { return m.metrics().rejected.load(); });
  counter("orrery_inference_expired_total",
          "Requests whose timeout passed before they could run (dropped, never run).",
          [](const Model& m) { return m.metrics().expired.load(); });
  Header(out, "orrery_worker_restarts_total", "counter",
         "Worker process restarts, per instance of a servable that runs in workers.");
  for (size_t i = 0; i < models.size(); ++i) {
    std::vector<uint64_t> restarts = models[i]->WorkerRestarts();
    for (size_t instance = 0; instance < restarts.size(); ++instance) {
      Line(out, "orrery_worker_restarts_total",
           labels[i] + ",instance=\"" + std::to_string(instance) + "\"", restarts[instance]);
    }
  }
  gauge("orrery_servable_ready", "1 when the servable version can answer.",
        [](const Model& m) { return static_cast<uint64_t>(m.Ready() ? 1 : 0); });
  gauge("orrery_servable_instances", "Loaded instances that are ready.",
        [](const Model& m) { return static_cast<uint64_t>(m.ReadyInstances()); });
  gauge("orrery_servable_memory_bytes", "Estimated memory held by the servable's instances.",
        [](const Model& m) { return m.MemoryBytes(); });
  std::vector<std::vector<size_t>> queued;
  for (const auto& model : models) queued.push_back(model->QueueLengths());
  Header(out, "orrery_inference_queue_length", "gauge", "Requests waiting in the queue now.");
  for (size_t i = 0; i < models.size(); ++i) {
    size_t waiting = 0;
    for (size_t length : queued[i]) waiting += length;
    Line(out, "orrery_inference_queue_length", labels[i], waiting);
  }
  Header(out, "orrery_inference_queue_length_by_priority", "gauge",
         "Requests waiting now per priority level, for servables with priority levels.");
  for (size_t i = 0; i < models.size(); ++i) {
    if (models[i]->servable().manifest.queue.priority_levels == 0) continue;
    for (size_t level = 0; level < queued[i].size(); ++level) {
      Line(out, "orrery_inference_queue_length_by_priority",
           labels[i] + ",priority=\"" + std::to_string(level + 1) + "\"", queued[i][level]);
    }
  }
  struct HistogramInfo {
    const char* name;
    const char* help;
    const LatencyHistogram& (*get)(const Model&);
  };
  const HistogramInfo histograms[] = {
      {"orrery_inference_queue_seconds", "Time from arrival to the start of compute.",
       [](const Model& m) -> const LatencyHistogram& { return m.metrics().queue; }},
      {"orrery_inference_compute_seconds", "Time the backend computed.",
       [](const Model& m) -> const LatencyHistogram& { return m.metrics().compute; }},
      {"orrery_inference_request_seconds", "Time from arrival to the answer.",
       [](const Model& m) -> const LatencyHistogram& { return m.metrics().total; }},
  };
  for (const HistogramInfo& histogram : histograms) {
    Header(out, histogram.name, "histogram", histogram.help);
    for (size_t i = 0; i < models.size(); ++i) {
      histogram.get(*models[i]).Render(histogram.name, labels[i], out);
    }
  }
  Header(out, "orrery_inference_batch_size", "histogram",
         "Rows per backend call of servables that batch requests.");
  for (size_t i = 0; i < models.size(); ++i) {
    if (!models[i]->servable().manifest.batching.enabled()) continue;
    models[i]->metrics().batch_sizes.Render("orrery_inference_batch_size", labels[i], out);
  }
  RenderCacheMetrics(models, labels, /*totals=*/tenant.empty(), out);
  if (tenant.empty()) {
    if (!options_.worker_isolation.empty()) {
      Header(out, "orrery_worker_isolation", "gauge",
             "How worker processes are sandboxed on this host (label mode: bubblewrap, or "
             "fallback when bubblewrap cannot run).");
      out += "orrery_worker_isolation{mode=\"" + options_.worker_isolation + "\"} 1\n";
    }
    RenderMemoryMetrics(out);
    RenderStorageMetrics(out);
  }
  return out;
}

// The memory budget's accounts mix every tenant's models: hub admin only.
void ModelManager::RenderMemoryMetrics(std::string& out) const {
  MemoryStats stats = memory_stats();
  auto value = [&](const char* name, const char* type, const char* help, uint64_t v) {
    Total(out, name, type, help, v);
  };
  value("orrery_memory_budget_bytes", "gauge", "The memory budget of loaded models "
        "(--memory-budget-bytes).", stats.budget_bytes);
  value("orrery_memory_reserved_bytes", "gauge",
        "Bytes reserved by loads under way (their expected size).", stats.reserved_bytes);
  value("orrery_memory_accounted_bytes", "gauge",
        "Bytes held by loaded models, measured (and by models still unloading).",
        stats.accounted_bytes);
  value("orrery_memory_high_water_bytes", "gauge",
        "The most reserved + accounted bytes have been since the server started.",
        stats.high_water_bytes);
  value("orrery_memory_waiting_loads", "gauge", "Loads waiting for memory.", stats.waiting_loads);
  value("orrery_memory_evictions_total", "counter",
        "Idle models unloaded to make room for a load.", stats.evictions);
  value("orrery_memory_underestimates_total", "counter",
        "Loads that measured more than they had reserved.", stats.underestimates);
}

// The data directory's file system, for the hub admin (an operator watches
// free space fall toward the reserve, below which publishes get 507).
void ModelManager::RenderStorageMetrics(std::string& out) const {
  Result<Repository::StorageSpace> space = repository_.Space();
  if (!space.ok()) return;
  auto gauge = [&](const char* name, const char* help, uint64_t value) {
    Total(out, name, "gauge", help, value);
  };
  gauge("orrery_storage_free_bytes",
        "Free bytes in the data directory's file system (available to the hub).",
        space->free_bytes);
  gauge("orrery_storage_total_bytes", "Size of the data directory's file system.",
        space->total_bytes);
  gauge("orrery_storage_reserve_bytes",
        "Free space publishes must leave (--min-free-bytes); below it they get 507.",
        space->reserve_bytes);
}

// Per servable with `cache: true`: hits and misses. The cache's totals mix
// every tenant's entries, so only the hub admin (tenant "") sees them: a
// tenant could otherwise watch another's requests come and go.
void ModelManager::RenderCacheMetrics(const std::vector<std::shared_ptr<Model>>& models,
                                      const std::vector<std::string>& labels, bool totals,
                                      std::string& out) const {
  auto per_servable = [&](const char* name, const char* help,
                          const std::atomic<uint64_t> ServingMetrics::*counter) {
    Header(out, name, "counter", help);
    for (size_t i = 0; i < models.size(); ++i) {
      if (!models[i]->servable().manifest.cache) continue;
      Line(out, name, labels[i], (models[i]->metrics().*counter).load());
    }
  };
  per_servable("orrery_cache_hits_total", "Requests answered from the response cache.",
               &ServingMetrics::cache_hits);
  per_servable("orrery_cache_misses_total",
               "Requests of a cached servable that the response cache could not answer.",
               &ServingMetrics::cache_misses);
  if (!totals) return;
  ResponseCache::Stats stats = cache_->stats();
  auto total = [&](const char* name, const char* type, const char* help, uint64_t value) {
    Total(out, name, type, help, value);
  };
  total("orrery_cache_evictions_total", "counter",
        "Response cache entries evicted to make room (least recently used first).",
        stats.evictions);
  total("orrery_cache_bytes", "gauge", "Bytes held by the response cache's entries.", stats.bytes);
  total("orrery_cache_entries", "gauge", "Entries in the response cache.", stats.entries);
  total("orrery_cache_capacity_bytes", "gauge", "Capacity of the response cache (--cache-bytes).",
        stats.capacity_bytes);
}

}  // namespace orrery
