// The gRPC inference messages (proto/inference.proto) to and from the
// codec's InferRequest / InferResponse (tensor/infer_codec.h), so that gRPC
// requests take the same path as REST ones (serving/inference_service.h).
//
// Decoding is strict, as REST's: a malformed request is kInvalidArgument
// naming the field or tensor at fault. Tensors arrive either as typed
// contents (the field of their datatype, one value per element; FP16 and
// BF16 have none) or as raw_input_contents (one entry per input, in input
// order, little-endian row-major bytes, BYTES elements length-prefixed);
// not both. The request parameters mean what they mean over REST:
// `priority` and `timeout` (non-negative integers), `binary_data_output`
// (a boolean, of no effect here: answers are raw), the rest passed on.
// Shared memory is refused. Answers carry every output as raw contents.
//
// Thread-safety: free functions over values.
#pragma once

#include "core/status.h"
#include "inference.pb.h"
#include "tensor/infer_codec.h"

namespace orrery {

Result<InferRequest> DecodeGrpcRequest(const inference::ModelInferRequest& request);

// Fills `out` from `response` (outputs moved into raw_output_contents).
void EncodeGrpcResponse(InferResponse& response, inference::ModelInferResponse* out);

// A parameter map as JSON (a value per key); kInvalidArgument for a
// parameter that holds no value.
Result<nlohmann::json> GrpcParameters(
    const google::protobuf::Map<std::string, inference::InferParameter>& parameters,
    const std::string& where);

}  // namespace orrery
