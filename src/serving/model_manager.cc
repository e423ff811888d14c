#include "serving/model_manager.h"

#include <algorithm>

#include "core/log.h"
#include "serving/pipeline.h"
#include "serving/publish_check.h"

namespace orrery {
namespace {

// How long a cached name resolution may miss another process's catalog write.
constexpr int64_t kResolutionCacheMs = 2000;
constexpr size_t kResolutionCacheEntries = 16384;
constexpr int kMaxInstances = 8;

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool ConfigFlag(const Manifest& manifest, const char* key) {
  auto it = manifest.config.find(key);
  return it != manifest.config.end() && it->is_boolean() && it->get<bool>();
}

// A pipeline's steps as its owner sees them: the publisher checked their
// visibility, so requests of other tenants run them in the owner's name.
class OwnerSteps final : public StepResolver {
 public:
  OwnerSteps(ModelManager& manager, Caller owner) : manager_(manager), owner_(std::move(owner)) {}
  Result<std::shared_ptr<Model>> Acquire(const QualifiedName& name, int64_t version) override {
    ASSIGN_OR_RETURN(auto servable, manager_.Resolve(owner_, name, VersionRef{version, ""}));
    return manager_.Acquire(owner_, servable);
  }
  std::shared_ptr<Model> Find(const std::string& key) const override { return manager_.Find(key); }

 private:
  ModelManager& manager_;
  const Caller owner_;
};
// The manifest with the version's serving override applied. The override
// was checked against this manifest when it was stored, so an error here
// means the rules changed since; serving then refuses the version rather
// than silently drop an admin's settings.
Result<Manifest> EffectiveManifest(const Repository::ServableVersion& info) {
  ASSIGN_OR_RETURN(Manifest manifest, ParseManifest(info.manifest));
  if (info.serving_override.empty()) return manifest;
  nlohmann::json override = nlohmann::json::parse(info.serving_override, nullptr, false);
  return ApplyServingOverride(manifest, override);
}

// True when `model` was made from an earlier resolution than `servable`
// whose serving override differs: an admin changed it since (through this
// process, which also unloads the model, or another one sharing the
// catalog). A request resolved before a change may reach the manager after
// the model was unloaded and make one with the old settings; the next
// resolution, which the change's catalog generation forces, replaces it.
bool Outdated(const Model& model, const ResolvedServable& servable) {
  const ResolvedServable& made_with = model.servable();
  return &made_with != &servable && made_with.sequence < servable.sequence &&
         made_with.info.serving_override != servable.info.serving_override;
}

}  // namespace

Result<std::unique_ptr<ModelManager>> ModelManager::Create(Repository& repository,
                                                           Options options) {
  if (options.load_threads < 1) return InvalidArgument("load_threads must be at least 1");
  if (options.instances < 1 || options.instances > kMaxInstances) {
    return InvalidArgument("instances must be 1.." + std::to_string(kMaxInstances));
  }
  if (options.pipeline_threads < 1) return InvalidArgument("pipeline_threads must be at least 1");
  return std::unique_ptr<ModelManager>(new ModelManager(repository, std::move(options)));
}

ModelManager::ModelManager(Repository& repository, Options options)
    : repository_(repository),
      options_(std::move(options)),
      cache_(std::make_shared<ResponseCache>(ResponseCache::Options{options_.cache_bytes, {}})),
      fanout_(options_.pipeline_threads),
      loads_(options_.load_threads) {
  models_.store(std::make_shared<const ModelMap>());
  admission_ = std::thread([this] { AdmissionLoop(); });
  delete_listener_ = repository_.AddDeleteListener(
      [this](const QualifiedName& servable, int64_t version) { ForgetDeleted(servable, version); });
  repository_.SetPublishCheck(
      [this](const Manifest& manifest, const std::filesystem::path& dir,
             const QualifiedName& servable) { return CheckPublished(manifest, dir, servable); });
  usage_thread_ = std::thread([this] { UsageLoop(); });
}

Status ModelManager::CheckPublished(const Manifest& manifest, const std::filesystem::path& dir,
                                    const QualifiedName& servable) const {
  LoadContext context = ContextFor(manifest, servable, servable.ToString() + " (publish check)");
  context.dir = dir;
  return CheckServablePackage(context, std::chrono::milliseconds(options_.timeout_ms));
}

ModelManager::~ModelManager() {
  repository_.RemoveDeleteListener(delete_listener_);
  repository_.SetPublishCheck(nullptr);
  StopUsage();
  std::deque<WaitingLoad> waiting;
  {
    std::lock_guard lock(budget_mutex_);
    stopping_ = true;
    waiting.swap(waiting_);
  }
  budget_changed_.notify_all();
  admission_.join();
  for (WaitingLoad& load : waiting) load.model->FailWaiting(Unavailable("the server is stopping"));
  // loads_ is destroyed first (declared last): it runs these unloads, and
  // everything else posted, before its threads join.
  std::shared_ptr<const ModelMap> models = models_.load();
  for (const auto& [key, model] : *models) loads_.Post([model] { model->Unload(); });
}

Result<std::shared_ptr<const ResolvedServable>> ModelManager::Resolve(const Caller& caller,
                                                                     const QualifiedName& name,
                                                                     const VersionRef& version) {
  std::string cache_key =
      std::to_string(caller.tenant_id) + "\n" + name.ToString() + "\n" + version.ToString();
  uint64_t generation = repository_.CatalogGeneration();  // before the read it stamps
  int64_t now = SteadyMs();
  {
    std::lock_guard lock(cache_mutex_);
    auto it = resolutions_.find(cache_key);
    if (it != resolutions_.end() && it->second.generation == generation &&
        now - it->second.cached_at_ms < kResolutionCacheMs) {
      return it->second.servable;
    }
  }
  uint64_t sequence = resolutions_begun_.fetch_add(1, std::memory_order_relaxed) + 1;
  ASSIGN_OR_RETURN(Repository::ServableVersion info,
                   repository_.ResolveServable(caller, name, version));
  ASSIGN_OR_RETURN(Manifest manifest, EffectiveManifest(info));
  auto servable = std::make_shared<ResolvedServable>();
  servable->key = info.name.ToString() + ":" + std::to_string(info.version);
  servable->info = std::move(info);
  servable->manifest = std::move(manifest);
  servable->sequence = sequence;
  std::lock_guard lock(cache_mutex_);
  if (resolutions_.size() >= kResolutionCacheEntries) resolutions_.clear();
  resolutions_[cache_key] = CachedResolution{servable, generation, now};
  return std::shared_ptr<const ResolvedServable>(servable);
}

std::shared_ptr<Model> ModelManager::Acquire(
    const Caller& caller, const std::shared_ptr<const ResolvedServable>& servable) {
  std::shared_ptr<const ModelMap> models = models_.load(std::memory_order_acquire);
  auto it = models->find(servable->key);
  if (it != models->end() && !Outdated(*it->second, *servable)) return it->second;
  return StartLoad(caller, servable, /*replace_failed=*/false);
}

std::shared_ptr<Model> ModelManager::StartLoad(
    const Caller& caller, const std::shared_ptr<const ResolvedServable>& servable,
    bool replace_failed) {
  std::shared_ptr<Model> model, replaced;
  {
    std::lock_guard lock(control_mutex_);
    std::shared_ptr<const ModelMap> models = models_.load();
    auto it = models->find(servable->key);
    if (it != models->end()) {
      if (Outdated(*it->second, *servable)) {
        replaced = it->second;
      } else if (!(replace_failed && (it->second->state() == ModelState::kFailed ||
                                      it->second->GaveUp()))) {
        return it->second;  // loaded or loading meanwhile
      } else {
        replaced = it->second;  // an explicit load starts it afresh
      }
    }
    Model::Options model_options;
    model_options.instances = InstancesFor(*servable);
    model_options.max_queue = options_.max_queue;
    model_options.warmup = options_.warmup;
    model_options.cache = cache_;
    model_options.on_settled = [this](Model& settled) { Settle(settled); };
    model = std::make_shared<Model>(servable, model_options);
    ModelMap next = *models;
    next[servable->key] = model;
    Publish(std::move(next));
    if (replaced) {
      LogInfo(replace_failed ? "loading " + servable->key + " afresh: " + replaced->reason()
                             : "serving settings of " + servable->key +
                                   " changed: replacing its loaded model");
    }
  }
  // Outside control_mutex_ (budget_mutex_ is never taken under it).
  if (replaced) {
    CancelWaiting(replaced);  // at once: a replaced load must not be admitted meanwhile
    UnloadLater(replaced);
  }
  Admit(model, caller);
  return model;
}

int ModelManager::InstancesFor(const ResolvedServable& servable) const {
  auto configured = servable.manifest.config.find("instances");
  if (configured != servable.manifest.config.end() && configured->is_number_integer()) {
    return std::clamp(configured->get<int>(), 1, kMaxInstances);
  }
  return options_.instances;
}

LoadContext ModelManager::ContextFor(const ResolvedServable& servable) {
  LoadContext context = ContextFor(servable.manifest, servable.info.name, servable.key);
  context.output = OutputFor(servable.key);
  return context;
}

std::shared_ptr<OutputRing> ModelManager::OutputFor(const std::string& key) {
  std::lock_guard lock(outputs_mutex_);
  std::shared_ptr<OutputRing>& ring = outputs_[key];
  if (!ring) ring = std::make_shared<OutputRing>();
  return ring;
}

std::shared_ptr<const OutputRing> ModelManager::Output(const std::string& key) const {
  std::lock_guard lock(outputs_mutex_);
  auto it = outputs_.find(key);
  return it == outputs_.end() ? nullptr : it->second;
}

LoadContext ModelManager::ContextFor(const Manifest& manifest, const QualifiedName& servable,
                                     std::string label) const {
  std::string owner = servable.ToString();
  LoadContext context;
  context.manifest = &manifest;
  context.tenant = servable.tenant;
  context.label = std::move(label);
  context.allow_network = ConfigFlag(manifest, "network") && options_.network.count(owner) > 0;
  context.trusted = options_.trusted.count(owner) > 0;
  context.sandbox = &options_.sandbox;
  return context;
}

void ModelManager::RunLoad(std::shared_ptr<Model> model, Caller caller) {
  const ResolvedServable& servable = model->servable();
  const Manifest& manifest = servable.manifest;
  if (manifest.backend == "pipeline") return model->LoadComposite(LoadPipeline(servable));
  Backend* backend = FindBackend(manifest.backend);
  Result<std::filesystem::path> dir =
      repository_.Materialize(caller, servable.info.name, VersionRef{servable.info.version, ""});
  LoadContext context = ContextFor(servable);
  if (dir.ok()) context.dir = *dir;
  if (backend == nullptr || !dir.ok()) {
    // A Backend that fails every load, so the model records the reason.
    class Refuse final : public Backend {
     public:
      explicit Refuse(Status status) : status_(std::move(status)) {}
      bool InProcess(const LoadContext&) const override { return true; }
      Result<std::unique_ptr<Instance>> Load(const LoadContext&) override { return status_; }

     private:
      Status status_;
    } refuse(dir.ok() ? Unprocessable("backend '" + manifest.backend +
                                      "' is not available in this build")
                      : dir.status());
    model->Load(refuse, context);
    return;
  }
  model->Load(*backend, context);  // Settle()s the budget through Options::on_settled
}

Result<std::unique_ptr<Composite>> ModelManager::LoadPipeline(const ResolvedServable& servable) {
  Caller owner;
  owner.tenant_id = servable.info.tenant_id;
  owner.tenant = servable.info.name.tenant;
  owner.role = Role::kReader;
  ASSIGN_OR_RETURN(
      std::unique_ptr<Pipeline> pipeline,
      Pipeline::Create(servable, std::make_unique<OwnerSteps>(*this, owner), &fanout_));
  return std::unique_ptr<Composite>(std::move(pipeline));
}

std::shared_ptr<Model> ModelManager::Load(
    const Caller& caller, const std::shared_ptr<const ResolvedServable>& servable) {
  return StartLoad(caller, servable, /*replace_failed=*/true);
}

Status ModelManager::Unload(const std::string& key) {
  std::shared_ptr<Model> model;
  {
    std::lock_guard lock(control_mutex_);
    std::shared_ptr<const ModelMap> models = models_.load();
    auto it = models->find(key);
    if (it == models->end()) return NotFound("servable " + key + " is not loaded");
    model = it->second;
    ModelMap next = *models;
    next.erase(key);
    Publish(std::move(next));
  }
  CancelWaiting(model);  // at once: an unloaded load must not be admitted meanwhile
  UnloadLater(std::move(model));
  return Status::Ok();
}

void ModelManager::ForgetDeleted(const QualifiedName& servable, int64_t version) {
  std::string prefix = servable.ToString() + ":";
  auto deleted = [&](std::string_view key) {
    return version == 0 ? key.rfind(prefix, 0) == 0 : key == prefix + std::to_string(version);
  };
  std::vector<std::shared_ptr<Model>> gone;
  {
    std::lock_guard lock(control_mutex_);
    std::shared_ptr<const ModelMap> models = models_.load();
    ModelMap next = *models;
    for (const auto& [key, model] : *models) {
      if (!deleted(key)) continue;
      gone.push_back(model);
      next.erase(key);
    }
    if (!gone.empty()) Publish(std::move(next));
  }
  cache_->EraseVersions(deleted);  // versions not loaded now may still have entries
  {
    std::lock_guard lock(outputs_mutex_);
    std::erase_if(outputs_, [&](const auto& entry) { return deleted(entry.first); });
  }
  for (std::shared_ptr<Model>& model : gone) {
    CancelWaiting(model);
    // Requests in flight may insert answers until the unload has waited
    // for them: erase the version's entries again afterwards.
    std::string key = model->key();
    UnloadLater(std::move(model), [this, key] {
      cache_->EraseVersions([&](std::string_view entry) { return entry == key; });
    });
  }
  if (!gone.empty()) {
    LogInfo("serving: unloading " + std::to_string(gone.size()) + " deleted version(s) of " +
            servable.ToString());
  }
}

bool ModelManager::Detach(const std::shared_ptr<Model>& model) {
  std::lock_guard lock(control_mutex_);
  std::shared_ptr<const ModelMap> models = models_.load();
  auto it = models->find(model->key());
  if (it == models->end() || it->second != model) return false;
  ModelMap next = *models;
  next.erase(it->first);
  Publish(std::move(next));
  return true;
}

void ModelManager::UnloadLater(std::shared_ptr<Model> model, std::function<void()> then) {
  loads_.Post([this, model, then = std::move(then)] {
    CancelWaiting(model);
    model->Unload();
    FlushUsage({model}, /*forget=*/true);
    if (then) then();
    // A model unloaded while it loads returns at once; its load then fails
    // and Settle releases its charge.
    if (model->state() == ModelState::kUnloaded) Release(*model);
  });
}

std::shared_ptr<Model> ModelManager::Find(const std::string& key) const {
  std::shared_ptr<const ModelMap> models = models_.load(std::memory_order_acquire);
  auto it = models->find(key);
  return it == models->end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Model>> ModelManager::Models() const {
  std::shared_ptr<const ModelMap> models = models_.load(std::memory_order_acquire);
  std::vector<std::shared_ptr<Model>> out;
  for (const auto& [key, model] : *models) out.push_back(model);
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a->key() < b->key(); });
  return out;
}

void ModelManager::Publish(ModelMap map) {
  models_.store(std::make_shared<const ModelMap>(std::move(map)), std::memory_order_release);
}

}  // namespace orrery
