// Test support for the serving core's unit tests: a resolved servable
// version made by hand, without a catalog.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "serving/model.h"

namespace orrery::testing {

// "lab/<name>:1" with the given signature; the manifest is otherwise empty.
inline std::shared_ptr<ResolvedServable> TestServable(const std::string& name,
                                                      std::vector<TensorSpec> inputs,
                                                      std::vector<TensorSpec> outputs) {
  auto servable = std::make_shared<ResolvedServable>();
  servable->key = "lab/" + name + ":1";
  servable->info.name = {"lab", name};
  servable->info.version = 1;
  servable->manifest.inputs = std::move(inputs);
  servable->manifest.outputs = std::move(outputs);
  return servable;
}

}  // namespace orrery::testing
