// Resolver: turns the model name and version a request carries (the Open
// Inference Protocol's strings, whatever the transport) into the servable
// version that answers it, as the caller may see it.
//
// CatalogResolver is today's resolution: "tenant/name" or a bare "name"
// (the caller's tenant), and a version number, an alias or "" (latest),
// looked up in the catalog through the ModelManager. The model-less
// selector (a task and its needs -> one variant) will be another Resolver.
//
// An object the caller cannot see resolves exactly like an absent one
// (kNotFound with the same message).
// Thread-safety: Resolve is called concurrently from every request thread.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "repository/repository.h"
#include "serving/model.h"

namespace orrery {

class ModelManager;

// What a request names: the protocol's model_name and model_version.
struct ModelTarget {
  std::string model;    // "tenant/name" or "name"
  std::string version;  // "" = the server's choice (the latest version)
  bool has_version() const { return !version.empty(); }
};

class Resolver {
 public:
  virtual ~Resolver() = default;
  virtual Result<std::shared_ptr<const ResolvedServable>> Resolve(const Caller& caller,
                                                                  const ModelTarget& target) = 0;
};

class CatalogResolver final : public Resolver {
 public:
  explicit CatalogResolver(ModelManager& models) : models_(models) {}  // borrowed
  Result<std::shared_ptr<const ResolvedServable>> Resolve(const Caller& caller,
                                                          const ModelTarget& target) override;

  // The name and version `target` spells, checked (kInvalidArgument).
  static Result<std::pair<QualifiedName, VersionRef>> Parse(const Caller& caller,
                                                            const ModelTarget& target);

 private:
  ModelManager& models_;
};

}  // namespace orrery
