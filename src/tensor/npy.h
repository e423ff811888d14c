// NumPy's .npy array files as Tensors, for examples and test data.
//
// Reads format versions 1.0, 2.0 and 3.0 holding C-ordered arrays of
// little-endian (or native, or byte-order-free) b1, i1, i2, i4, i8, u1, u2,
// u4, u8, f2, f4 and f8; writes version 1.0 (2.0 when the header needs it)
// in numpy.save's layout (NumPy reads it back; readers accept any padding).
//
// Thread-safety: free functions over values.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"
#include "tensor/tensor.h"

namespace orrery {

// The array in `bytes` as a tensor called `name`. kInvalidArgument naming
// the problem for a bad magic or version, a malformed header, fortran_order
// True, big-endian data, object, string or structured dtypes, and data that
// is shorter or longer than the shape says.
Result<Tensor> DecodeNpy(std::string_view bytes, std::string name);

// The .npy file for `tensor`. kInvalidArgument for BYTES and BF16 (NumPy
// has no such dtype) and for a tensor that fails ValidateTensor.
Result<std::string> EncodeNpy(const Tensor& tensor);

}  // namespace orrery
