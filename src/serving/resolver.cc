#include "serving/resolver.h"

#include "serving/model_manager.h"

namespace orrery {

Result<std::pair<QualifiedName, VersionRef>> CatalogResolver::Parse(const Caller& caller,
                                                                    const ModelTarget& target) {
  ASSIGN_OR_RETURN(VersionRef version,
                   ParseVersionRef(target.has_version() ? target.version : std::string("latest")));
  ASSIGN_OR_RETURN(QualifiedName name, ParseQualifiedName(target.model, caller.tenant));
  return std::make_pair(std::move(name), std::move(version));
}

Result<std::shared_ptr<const ResolvedServable>> CatalogResolver::Resolve(
    const Caller& caller, const ModelTarget& target) {
  ASSIGN_OR_RETURN(auto parsed, Parse(caller, target));
  return models_.Resolve(caller, parsed.first, parsed.second);
}

}  // namespace orrery
