// The publish-time checks of a pipeline servable (backend `pipeline`) that
// need the catalog; the manifest parser checked its structure already
// (manifest.h: names, references, no cycles).
//
// Thread-safe (uses only the Repository's thread-safe public methods).
#pragma once

#include "repository/repository.h"

namespace orrery {

// Resolves every step of `manifest` as `caller` (the publisher) sees it and
// pins it: `servable` becomes "tenant/name" and `version` the number its
// alias named, so the stored manifest never moves with an alias. Checks
// that each step's servable version exists and is visible to the caller,
// is not itself a pipeline, that every step input is mapped to a tensor
// the step's signature has, and that connected tensors agree in datatype
// and shape (-1 matches any size) — pipeline inputs into steps, step
// outputs into steps, step outputs into the pipeline's outputs.
// kUnprocessable naming the step and the tensor otherwise.
Status PinPipelineSteps(Repository& repository, const Caller& caller, Manifest& manifest);

}  // namespace orrery
