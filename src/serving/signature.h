// Checks of inference inputs and outputs against a servable's signature,
// and the manifest examples that warm-up and `verify` run.
//
// Thread-safe (pure functions).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "repository/manifest.h"
#include "tensor/infer_codec.h"
#include "tensor/tensor.h"

namespace orrery {

// Orders `inputs` as the signature's inputs, checking names (unknown,
// missing, duplicated), datatypes and shapes (rank equal; -1 matches any
// size). kInvalidArgument naming the tensor otherwise.
Result<std::vector<Tensor>> BindInputs(const Manifest& manifest, std::vector<Tensor> inputs);

// Indexes into the signature's outputs of what `request` asks for (all when
// it names none). kInvalidArgument for an unknown output name.
Result<std::vector<size_t>> SelectOutputs(const Manifest& manifest,
                                          const std::vector<RequestedOutput>& requested);

// Checks that a backend returned what the signature promises (count, names,
// datatypes, ranks); kInternal naming the servable's fault otherwise.
Status CheckOutputs(const Manifest& manifest, const std::vector<Tensor>& outputs);

// The inputs of one manifest example ({"inputs": {name: {datatype, shape,
// data}}, ...}) bound to the signature.
Result<std::vector<Tensor>> ExampleInputs(const Manifest& manifest, const nlohmann::json& example);

// Compares `outputs` (signature order) with the example's expected outputs:
// {"ok": bool, "outputs": [{"name", "ok", "max_abs_error"?, "message"?}]}.
// Numbers match when |actual - expected| <= tolerance * max(1, |expected|)
// (tolerance from the example, default 1e-6); NaN matches NaN; shapes must
// be equal; BYTES must be equal.
nlohmann::json CompareExample(const Manifest& manifest, const nlohmann::json& example,
                              const std::vector<Tensor>& outputs);

}  // namespace orrery
