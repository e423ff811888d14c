// Dynamic batching's tensor work (the throughput issue): the inputs of
// several requests joined along the first (batch) dimension, and a batch's
// outputs split back into one answer per request. Every datatype, BYTES
// included (a BYTES tensor's data is its elements, each a u32 length and the
// bytes, so concatenation keeps it well formed; splitting walks them).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "tensor/tensor.h"

namespace orrery {

// True when two requests' inputs (signature order) may share a batch: the
// same number of tensors, and per position the same name, datatype and rank
// (>= 1), and equal dimensions after the first.
bool BatchCompatible(const std::vector<Tensor>& a, const std::vector<Tensor>& b);

// The batch of `requests` (each one request's inputs in signature order,
// all BatchCompatible): per input position, shape[0] is the sum of the
// requests' shape[0] and the data is theirs concatenated in request order.
// kInvalidArgument naming the tensor when two requests are not compatible;
// kInvalidArgument for an empty list.
Result<std::vector<Tensor>> ConcatBatch(const std::vector<const std::vector<Tensor>*>& requests);

// Splits a batch's outputs into one vector per request, request i getting
// rows[i] rows of every output (rows[i] >= 0), in order. Each output must
// have rank >= 1, shape[0] == sum(rows), and data consistent with its shape
// and datatype (BYTES: exactly the shape's element count of well-formed
// elements). kInternal naming the output otherwise: the model broke the
// batching contract (a batch of n rows in, n rows out).
Result<std::vector<std::vector<Tensor>>> SplitBatch(const std::vector<Tensor>& outputs,
                                                    const std::vector<int64_t>& rows);

}  // namespace orrery
