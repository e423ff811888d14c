// The memory budget as a bound (contract in model_manager.h).
//
// Why charges and not a measurement after the fact: loads run side by side
// and a model holds nothing measurable until its load ends, so a budget
// enforced after each load lets every load in flight overshoot it at once.
// Here each model is charged before its load starts (a reservation of its
// expected bytes) and keeps a charge until its unload has finished (an
// evicted model frees its memory only then), and a load starts only when
// the charges leave room for it. Loads wait in arrival order, so a big
// model is not starved by a stream of small ones.
//
// Locks: budget_mutex_ guards the accounts; it is never held while taking
// control_mutex_ (Detach) or while a model unloads. A model's own mutex may
// be taken under it (MemoryBytes, state).
#include <algorithm>

#include "core/log.h"
#include "serving/model_manager.h"

namespace orrery {
namespace {

using Clock = std::chrono::steady_clock;

// How often waiting loads are looked at again: models become idle without
// telling the manager, and queued requests' deadlines pass.
constexpr auto kRecheck = std::chrono::milliseconds(50);

std::string Bytes(uint64_t bytes) { return std::to_string(bytes) + " bytes"; }

}  // namespace

uint64_t ModelManager::ExpectedBytes(const ResolvedServable& servable) const {
  if (servable.manifest.backend == "pipeline") return 0;  // its steps are models of their own
  uint64_t instances = static_cast<uint64_t>(InstancesFor(servable));
  {
    std::lock_guard lock(budget_mutex_);
    auto it = measured_.find(servable.key);
    // A worker's resident size differs a little from one start to the next:
    // an eighth more than last time keeps the reservation above it.
    if (it != measured_.end()) return (it->second + it->second / 8) * instances;
  }
  Backend* backend = FindBackend(servable.manifest.backend);
  if (backend == nullptr) return 0;  // the load fails at once
  return backend->EstimateMemoryBytes(
             ContextFor(servable.manifest, servable.info.name, servable.key), servable.info.size) *
         instances;
}

void ModelManager::Admit(std::shared_ptr<Model> model, Caller caller) {
  uint64_t need = ExpectedBytes(model->servable());
  if (need == 0) {  // a pipeline (its steps are charged as models of their own)
    loads_.Post([this, model, caller] { RunLoad(model, caller); });
    return;
  }
  {
    std::lock_guard lock(budget_mutex_);
    // One bigger than the whole budget loads alone, once nothing else holds memory.
    need = std::min(need, options_.memory_budget_bytes);
    waiting_.push_back({std::move(model), std::move(caller), need, Clock::now()});
  }
  // The admission thread decides: it reads workers' sizes from /proc, which
  // a request thread (Acquire) should not wait for.
  budget_changed_.notify_all();
}

void ModelManager::TryAdmit() {
  std::vector<std::shared_ptr<Model>> victims;
  std::vector<std::shared_ptr<Model>> models = Models();
  // Sizes are read before the lock: a worker's is a walk of /proc.
  std::vector<uint64_t> sizes;
  for (const auto& model : models) sizes.push_back(model->MemoryBytes());
  {
    std::unique_lock lock(budget_mutex_);
    if (stopping_) return;
    // Memory that workers grew into since they were measured counts too.
    for (size_t i = 0; i < models.size(); ++i) {
      auto it = charges_.find(models[i].get());
      if (it == charges_.end() || !it->second.measured) continue;
      if (sizes[i] > it->second.bytes) {
        accounted_ += sizes[i] - it->second.bytes;
        it->second.bytes = sizes[i];
      }
    }
    high_water_ = std::max(high_water_, reserved_ + accounted_);
    const uint64_t budget = options_.memory_budget_bytes;
    uint64_t need = 0;  // of the load at the head of the queue, if it must wait
    while (!waiting_.empty()) {
      WaitingLoad& head = waiting_.front();
      if (reserved_ + accounted_ + head.need > budget) {
        need = head.need;
        head.model->NoteWaiting("waiting for memory (" + Bytes(head.need) + "; the budget's " +
                                Bytes(budget) + " are held by " +
                                Bytes(reserved_ + accounted_) + " of models in use or loading)");
        break;
      }
      charges_[head.model.get()] = Charge{head.need, false, false};
      reserved_ += head.need;
      high_water_ = std::max(high_water_, reserved_ + accounted_);
      loads_.Post([this, model = head.model, caller = head.caller] { RunLoad(model, caller); });
      waiting_.pop_front();
    }
    // Room to make: for the waiting load, or because models grew.
    uint64_t held = reserved_ + accounted_ + need;
    uint64_t freeing = 0;
    for (const auto& [model, charge] : charges_) freeing += charge.evicting ? charge.bytes : 0;
    if (held <= budget + freeing) return;
    uint64_t shortfall = held - budget - freeing;
    std::vector<std::shared_ptr<Model>> idle;
    for (const auto& model : models) {
      auto it = charges_.find(model.get());
      if (it == charges_.end() || !it->second.measured || it->second.evicting) continue;
      if (model->state() != ModelState::kReady || model->InFlight() != 0) continue;
      idle.push_back(model);
    }
    std::sort(idle.begin(), idle.end(),
              [](const auto& a, const auto& b) { return a->LastUse() < b->LastUse(); });
    for (const auto& model : idle) {
      if (shortfall == 0) break;
      Charge& charge = charges_[model.get()];
      charge.evicting = true;
      shortfall -= std::min(shortfall, charge.bytes);
      victims.push_back(model);
    }
  }
  for (const auto& model : victims) {
    if (Detach(model)) {
      LogInfo("memory budget: unloading idle servable " + model->key() + " to make room");
      {
        std::lock_guard lock(budget_mutex_);
        ++evictions_;
      }
      UnloadLater(model);
    } else {
      // Unloaded or replaced meanwhile: whoever did that releases it.
      std::lock_guard lock(budget_mutex_);
      auto it = charges_.find(model.get());
      if (it != charges_.end()) it->second.evicting = false;
    }
  }
}

void ModelManager::Settle(Model& model) {
  bool ready = model.state() == ModelState::kReady;
  uint64_t measured = ready ? model.MemoryBytes() : 0;
  // Just loaded is just used: it is not the first to make room for the next.
  model.Touch();
  {
    std::lock_guard lock(budget_mutex_);
    auto it = charges_.find(&model);
    if (it == charges_.end()) return;  // needed nothing (or released already)
    reserved_ -= it->second.bytes;
    if (!ready) {
      charges_.erase(it);  // a failed load holds nothing
    } else {
      if (measured > it->second.bytes) {
        ++underestimates_;
        LogWarning("memory budget: " + model.key() + " holds " + Bytes(measured) + ", " +
                   Bytes(it->second.bytes) + " were reserved; its next load reserves what it "
                   "measured");
      }
      // 0 is no measurement (a worker between two lives): the reservation stands.
      if (measured > 0) {
        it->second.bytes = measured;
        uint64_t instances = static_cast<uint64_t>(InstancesFor(model.servable()));
        measured_[model.key()] = measured / instances;
      }
      it->second.measured = true;
      accounted_ += it->second.bytes;
    }
    high_water_ = std::max(high_water_, reserved_ + accounted_);
  }
  budget_changed_.notify_all();  // over budget now: the admission thread keeps looking
  TryAdmit();
}

void ModelManager::Release(const Model& model) {
  {
    std::lock_guard lock(budget_mutex_);
    auto it = charges_.find(&model);
    if (it == charges_.end()) return;
    (it->second.measured ? accounted_ : reserved_) -= it->second.bytes;
    charges_.erase(it);
  }
  TryAdmit();
}

void ModelManager::CancelWaiting(const std::shared_ptr<Model>& model) {
  bool found = false;
  {
    std::lock_guard lock(budget_mutex_);
    auto it = std::find_if(waiting_.begin(), waiting_.end(),
                           [&](const WaitingLoad& load) { return load.model == model; });
    if (it != waiting_.end()) {
      waiting_.erase(it);
      found = true;
    }
  }
  if (found) model->FailWaiting(Unavailable("unloaded before memory was free to load it"));
}

void ModelManager::AdmissionLoop() {
  const auto give_up_after = std::chrono::milliseconds(options_.timeout_ms);
  std::unique_lock lock(budget_mutex_);
  while (!stopping_) {
    if (waiting_.empty() && reserved_ + accounted_ <= options_.memory_budget_bytes) {
      budget_changed_.wait(lock);
      continue;
    }
    // Admit what fits now (a load just queued, or models that became idle
    // since), then expire or give up what still waits, then look again soon.
    lock.unlock();
    TryAdmit();
    lock.lock();
    if (stopping_) break;
    std::vector<std::shared_ptr<Model>> expire, give_up;
    auto now = Clock::now();
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (now - it->since >= give_up_after) {
        give_up.push_back(it->model);
        it = waiting_.erase(it);
      } else {
        expire.push_back(it->model);
        ++it;
      }
    }
    lock.unlock();
    for (const auto& model : expire) model->ExpireWaiting();
    for (const auto& model : give_up) {
      // Out of the map first, so that the next request starts a fresh load.
      Detach(model);
      model->FailWaiting(Unavailable("not enough memory to load it within " +
                                     std::to_string(options_.timeout_ms) +
                                     " ms: the memory budget (" +
                                     Bytes(options_.memory_budget_bytes) +
                                     ") is held by models in use"));
    }
    lock.lock();
    if (!waiting_.empty() || reserved_ + accounted_ > options_.memory_budget_bytes) {
      budget_changed_.wait_for(lock, kRecheck);
    }
  }
}

ModelManager::MemoryStats ModelManager::memory_stats() const {
  std::lock_guard lock(budget_mutex_);
  MemoryStats stats;
  stats.budget_bytes = options_.memory_budget_bytes;
  stats.reserved_bytes = reserved_;
  stats.accounted_bytes = accounted_;
  stats.high_water_bytes = high_water_;
  stats.waiting_loads = waiting_.size();
  stats.evictions = evictions_;
  stats.underestimates = underestimates_;
  return stats;
}

}  // namespace orrery
