// The backend registry: a name -> Backend map filled during static
// initialisation by ORRERY_REGISTER_BACKEND, read afterwards.
#include "backends/backend.h"

#include <map>
#include <mutex>

namespace orrery {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, std::unique_ptr<Backend>, std::less<>> backends;  // GUARDED_BY(mutex)
};

// A function-local static: registration runs from other translation units'
// static initialisers, whose order is unspecified.
Registry& GetRegistry() {
  static Registry* registry = new Registry();  // never destroyed: used until exit
  return *registry;
}

}  // namespace

bool RegisterBackend(const std::string& name, BackendFactory factory) {
  Registry& registry = GetRegistry();
  std::lock_guard lock(registry.mutex);
  return registry.backends.emplace(name, factory()).second;
}

Backend* FindBackend(std::string_view name) {
  Registry& registry = GetRegistry();
  std::lock_guard lock(registry.mutex);
  auto it = registry.backends.find(name);
  return it == registry.backends.end() ? nullptr : it->second.get();
}

std::vector<std::string> RegisteredBackends() {
  Registry& registry = GetRegistry();
  std::lock_guard lock(registry.mutex);
  std::vector<std::string> names;
  for (const auto& [name, backend] : registry.backends) names.push_back(name);
  return names;
}

}  // namespace orrery
