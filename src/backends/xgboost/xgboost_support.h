// Parts of the xgboost backend that do not call XGBoost: its manifest
// config, the signature rules, output shaping, error text and the memory
// estimate. Separate so that each can be tested on its own.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.h"

namespace orrery::xgboost {

// The manifest's `config` for this backend.
struct Options {
  std::string file;  // config.file / config.model_file, else the first .ubj/.json/.model
  int threads = 1;   // config.threads: XGBoost's nthread, 1..64
};

// kUnprocessable for a bad config, no model file, or an absent file
// ("cannot load model.ubj: file not found").
Result<Options> ParseOptions(const LoadContext& context);

// The signature as this backend needs it: one FP32/FP64 input of rank 2,
// one FP32/FP64 output whose first dimension is the batch.
struct Signature {
  TensorSpec input;
  DataType input_type = DataType::kFp32;
  TensorSpec output;
  DataType output_type = DataType::kFp32;
};
Result<Signature> CheckSignature(const Manifest& manifest);

// The shape of `rows` rows of `per_row` values each, laid out as `spec`
// says: dimension 0 is the batch, the others are fixed or (one of them) -1.
// kInternal when the values do not fit.
Result<std::vector<int64_t>> OutputShape(const TensorSpec& spec, int64_t rows, int64_t per_row);

// XGBGetLastError() text as one line: without the "[12:00:00] file.cc:12: "
// prefix and the stack trace, with `path` replaced by `file`.
std::string CleanMessage(std::string_view message, const std::string& path,
                         const std::string& file);



// Estimated bytes a loaded booster holds: 1.5x the file size for UBJSON and
// JSON, 2x for the legacy binary format (measured: RSS per booster of the
// digits model, 600 trees, was 1.2-1.5x its UBJSON/JSON size and 1.9x its
// binary size).
uint64_t EstimateMemory(const std::string& file, uint64_t file_size);

}  // namespace orrery::xgboost
