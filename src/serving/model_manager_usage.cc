// ModelManager's usage counts: how many inference requests each version
// served, added to the catalog (Repository::CountInferences) in batches, so
// that the request path only bumps the model's atomic counter.
#include "core/log.h"
#include "serving/model_manager.h"

namespace orrery {

void ModelManager::FlushUsage(const std::vector<std::shared_ptr<Model>>& models, bool forget) {
  std::vector<Repository::InferenceCount> counts;
  {
    std::lock_guard lock(usage_mutex_);
    for (const std::shared_ptr<Model>& model : models) {
      uint64_t now = model->metrics().requests.load(std::memory_order_relaxed);
      uint64_t& flushed = usage_flushed_[model];
      if (now > flushed) {
        const auto& info = model->servable().info;
        counts.push_back({info.tenant_id, info.name.name, info.version, now - flushed});
        flushed = now;
      }
      if (forget) usage_flushed_.erase(model);
    }
    // Models that went without an unload (replaced, given up) keep no entry.
    std::erase_if(usage_flushed_, [](const auto& entry) { return entry.first.expired(); });
  }
  if (counts.empty()) return;
  Status status = repository_.CountInferences(counts);
  if (!status.ok()) LogWarning("serving: inference counts not recorded: " + status.ToString());
}

void ModelManager::UsageLoop() {
  std::unique_lock lock(usage_stop_mutex_);
  while (!usage_stopping_) {
    usage_wake_.wait_for(lock, std::chrono::milliseconds(options_.usage_flush_ms));
    if (usage_stopping_) break;
    lock.unlock();
    FlushUsage(Models(), /*forget=*/false);
    lock.lock();
  }
}

void ModelManager::StopUsage() {
  {
    std::lock_guard lock(usage_stop_mutex_);
    usage_stopping_ = true;
  }
  usage_wake_.notify_all();
  if (usage_thread_.joinable()) usage_thread_.join();
  FlushUsage(Models(), /*forget=*/false);
}

}  // namespace orrery
