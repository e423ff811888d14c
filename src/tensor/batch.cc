#include "tensor/batch.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>

namespace orrery {
namespace {

// Why `a` and `b` (two tensors at the same input position) cannot share a
// batch, or nullopt when they can.
std::optional<std::string> TensorIncompatibility(const Tensor& a, const Tensor& b) {
  if (a.name != b.name) return "name '" + a.name + "' vs '" + b.name + "'";
  if (a.datatype != b.datatype) {
    return "datatype " + std::string(DataTypeName(a.datatype)) + " vs " +
           std::string(DataTypeName(b.datatype));
  }
  if (a.shape.empty() || b.shape.empty()) return std::string("a scalar has no batch dimension");
  if (a.shape.size() != b.shape.size() ||
      !std::equal(a.shape.begin() + 1, a.shape.end(), b.shape.begin() + 1)) {
    return "shape " + ShapeString(a.shape) + " vs " + ShapeString(b.shape);
  }
  return std::nullopt;
}

// An InvalidArgument naming the first position where `request` cannot join
// a batch with `first` (request 0), or OK.
Status CheckJoins(const std::vector<Tensor>& first, const std::vector<Tensor>& request,
                  size_t index) {
  if (first.size() != request.size()) {
    return InvalidArgument("cannot batch request " + std::to_string(index) + " (" +
                           std::to_string(request.size()) + " inputs) with request 0 (" +
                           std::to_string(first.size()) + " inputs)");
  }
  for (size_t j = 0; j < first.size(); ++j) {
    if (auto why = TensorIncompatibility(first[j], request[j])) {
      return InvalidArgument("cannot batch input '" + request[j].name + "' of request " +
                             std::to_string(index) + " with request 0: " + *why);
    }
  }
  return Status::Ok();
}

// The batch tensor for input position `j`; the requests are known compatible.
Result<Tensor> ConcatPosition(const std::vector<const std::vector<Tensor>*>& requests, size_t j) {
  const Tensor& head = (*requests[0])[j];
  int64_t batch_rows = 0;
  size_t bytes = 0;
  for (const std::vector<Tensor>* request : requests) {
    const Tensor& t = (*request)[j];
    if (t.shape[0] < 0 || __builtin_add_overflow(batch_rows, t.shape[0], &batch_rows) ||
        __builtin_add_overflow(bytes, t.data.size(), &bytes)) {
      return InvalidArgument("input '" + head.name + "': batch dimension is negative or overflows");
    }
  }
  Tensor out{head.name, head.datatype, head.shape, {}};
  out.shape[0] = batch_rows;
  out.data.reserve(bytes);
  // Row-major data with the batch dimension first: concatenation is the
  // batch, for BYTES too (its elements are self-delimiting).
  for (const std::vector<Tensor>* request : requests) out.data.append((*request)[j].data);
  return out;
}

// Request i's rows of one output are its data's bytes [cuts[i], cuts[i + 1]).
using Cuts = std::vector<size_t>;

// Cuts for a fixed-size datatype; `count` (elements) already matches the data.
Cuts FixedCuts(const std::vector<int64_t>& rows, int64_t per_row, size_t element_size) {
  Cuts cuts;
  cuts.reserve(rows.size() + 1);
  cuts.push_back(0);
  size_t elements = 0;  // never exceeds the (overflow-checked) count
  for (int64_t r : rows) {
    elements += static_cast<size_t>(r) * static_cast<size_t>(per_row);
    cuts.push_back(elements * element_size);
  }
  return cuts;
}

// Cuts for BYTES: walks the u32-length-prefixed elements once, cutting after
// every request's rows x per_row elements; the data must hold exactly
// sum(rows) x per_row well-formed elements.
Result<Cuts> BytesCuts(const Tensor& t, const std::vector<int64_t>& rows, int64_t per_row) {
  const std::string& data = t.data;
  Cuts cuts;
  cuts.reserve(rows.size() + 1);
  cuts.push_back(0);
  size_t offset = 0;
  int64_t walked = 0;
  for (int64_t r : rows) {
    for (int64_t e = r * per_row; e > 0; --e, ++walked) {  // r * per_row <= count: no overflow
      if (offset == data.size()) {
        return Internal("output '" + t.name + "': BYTES data holds " + std::to_string(walked) +
                        " elements, shape " + ShapeString(t.shape) + " needs more");
      }
      if (data.size() - offset < 4) {
        return Internal("output '" + t.name + "': BYTES element runs past the data");
      }
      uint32_t length = 0;
      std::memcpy(&length, data.data() + offset, 4);  // little-endian host (x86_64)
      offset += 4;
      if (data.size() - offset < length) {
        return Internal("output '" + t.name + "': BYTES element runs past the data");
      }
      offset += length;
    }
    cuts.push_back(offset);
  }
  if (offset != data.size()) {
    return Internal("output '" + t.name + "': BYTES data holds more than the " +
                    std::to_string(walked) + " elements of shape " + ShapeString(t.shape));
  }
  return cuts;
}

// Checks output `t` against the batch contract and returns where each
// request's rows start and end in its data.
Result<Cuts> CutOutput(const Tensor& t, const std::vector<int64_t>& rows, int64_t total_rows) {
  auto fail = [&t](const std::string& why) { return Internal("output '" + t.name + "': " + why); };
  if (t.shape.empty()) return fail("a scalar has no batch dimension");
  if (t.shape[0] != total_rows) {
    return fail("batch dimension " + std::to_string(t.shape[0]) + " is not the " +
                std::to_string(total_rows) + " rows batched");
  }
  int64_t per_row = 1;  // elements per row: product of shape[1:]
  for (size_t d = 1; d < t.shape.size(); ++d) {
    if (t.shape[d] < 0 || __builtin_mul_overflow(per_row, t.shape[d], &per_row)) {
      return fail("shape " + ShapeString(t.shape) + " has a negative dimension or overflows");
    }
  }
  int64_t count = 0;
  if (__builtin_mul_overflow(total_rows, per_row, &count)) {
    return fail("shape " + ShapeString(t.shape) + " overflows");
  }
  if (t.datatype == DataType::kBytes) return BytesCuts(t, rows, per_row);
  size_t element_size = DataTypeSize(t.datatype);
  size_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<size_t>(count), element_size, &bytes) ||
      bytes != t.data.size()) {
    return fail(std::to_string(t.data.size()) + " bytes do not match shape " +
                ShapeString(t.shape) + " of " + std::string(DataTypeName(t.datatype)));
  }
  return FixedCuts(rows, per_row, element_size);
}

}  // namespace

bool BatchCompatible(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t j = 0; j < a.size(); ++j) {
    if (TensorIncompatibility(a[j], b[j])) return false;
  }
  return true;
}

Result<std::vector<Tensor>> ConcatBatch(const std::vector<const std::vector<Tensor>*>& requests) {
  if (requests.empty()) return InvalidArgument("cannot batch an empty list of requests");
  for (size_t i = 0; i < requests.size(); ++i) {
    if (requests[i] == nullptr) {
      return InvalidArgument("request " + std::to_string(i) + " of the batch is null");
    }
    // Request 0 is checked against itself too: that catches its scalars.
    RETURN_IF_ERROR(CheckJoins(*requests[0], *requests[i], i));
  }
  std::vector<Tensor> batch;
  batch.reserve(requests[0]->size());
  for (size_t j = 0; j < requests[0]->size(); ++j) {
    ASSIGN_OR_RETURN(Tensor tensor, ConcatPosition(requests, j));
    batch.push_back(std::move(tensor));
  }
  return batch;
}

Result<std::vector<std::vector<Tensor>>> SplitBatch(const std::vector<Tensor>& outputs,
                                                    const std::vector<int64_t>& rows) {
  int64_t total_rows = 0;
  for (int64_t r : rows) {
    if (r < 0 || __builtin_add_overflow(total_rows, r, &total_rows)) {
      return Internal("batch rows are negative or overflow");
    }
  }
  std::vector<std::vector<Tensor>> answers(rows.size());
  for (std::vector<Tensor>& answer : answers) answer.reserve(outputs.size());
  for (const Tensor& t : outputs) {
    ASSIGN_OR_RETURN(Cuts cuts, CutOutput(t, rows, total_rows));
    for (size_t i = 0; i < rows.size(); ++i) {
      Tensor part{t.name, t.datatype, t.shape, t.data.substr(cuts[i], cuts[i + 1] - cuts[i])};
      part.shape[0] = rows[i];
      answers[i].push_back(std::move(part));
    }
  }
  return answers;
}

}  // namespace orrery
