// The "xgboost" backend: gradient-boosted trees run in process through
// XGBoost's C API (libxgboost 1.7), on the calling thread.
//
// Manifest config (all optional):
//   file: model.ubj    the model (UBJSON, JSON or the legacy binary format);
//                      `model_file` is accepted as a synonym; default: the
//                      first .ubj/.json/.model among `files`
//   threads: 1         XGBoost's nthread for this booster
//
// Signature: one input, FP32 or FP64, [batch, features] (FP64 is passed to
// XGBoost as is); one output, FP32 or FP64. XGBoost's prediction (e.g.
// [batch, classes] probabilities for multi:softprob, [batch] for
// regression) is reshaped to the signature's output: its first dimension is
// the batch, and at most one other dimension may be -1. Load runs one
// prediction on a row of zeros to check that the result fits.
//
// NaN inputs are missing values to XGBoost; Inf passes through prediction.
//
// XGBoost 1.7 trusts model files: a corrupt one can crash it while loading
// or predicting. Load therefore checks the file (UBJSON/JSON) or the loaded
// model (legacy binary) first: model_check.h lists what is checked.
#include <xgboost/c_api.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "backends/backend.h"
#include "backends/xgboost/model_check.h"
#include "backends/backend_util.h"
#include "backends/xgboost/xgboost_support.h"
#include "core/files.h"

namespace orrery {
namespace {

// The inplace-prediction config: normal (transformed) predictions, all
// trees, NaN = missing. XGBoost 1.7 refuses it without "cache_id": 0.
constexpr char kPredictConfig[] =
    R"({"type": 0, "training": false, "iteration_begin": 0, "iteration_end": 0, )"
    R"("strict_shape": false, "cache_id": 0, "missing": NaN})";

// One booster handle. Owns it (XGBoosterFree on destruction); as
// thread-safe as the booster, i.e. one caller at a time.
class Booster {
 public:
  Booster() = default;
  Booster(const Booster&) = delete;
  Booster& operator=(const Booster&) = delete;
  ~Booster() {
    if (handle_) XGBoosterFree(handle_);
  }
  BoosterHandle* out() { return &handle_; }
  BoosterHandle get() const { return handle_; }

 private:
  BoosterHandle handle_ = nullptr;
};

// A prediction: XGBoost's row-major result and its shape. `values` points
// into the booster's buffer, valid until the next call on that booster.
struct Prediction {
  std::vector<int64_t> shape;
  const float* values = nullptr;
  size_t count = 0;
};

Result<Prediction> Predict(BoosterHandle booster, const void* data, DataType type, int64_t rows,
                           int64_t cols) {
  char array[160];
  std::snprintf(array, sizeof array,
                R"({"data": [%llu, true], "shape": [%lld, %lld], "typestr": "%s", "version": 3})",
                static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(data)),
                static_cast<long long>(rows), static_cast<long long>(cols),
                type == DataType::kFp64 ? "<f8" : "<f4");
  const bst_ulong* shape = nullptr;
  bst_ulong dims = 0;
  Prediction prediction;
  if (XGBoosterPredictFromDense(booster, array, kPredictConfig, nullptr, &shape, &dims,
                                &prediction.values) != 0) {
    return InvalidArgument("xgboost: " + xgboost::CleanMessage(XGBGetLastError(), "", ""));
  }
  prediction.count = 1;
  for (bst_ulong i = 0; i < dims; ++i) {
    prediction.shape.push_back(static_cast<int64_t>(shape[i]));
    prediction.count *= shape[i];
  }
  return prediction;
}

// One loaded booster.
// Ownership: owns its booster handle.
// Thread-safety: Infer from one thread at a time (XGBoost's prediction
// buffer belongs to the booster); MemoryBytes from any thread.
class XGBoostInstance final : public Instance {
 public:
  static Result<std::unique_ptr<Instance>> Create(const LoadContext& context,
                                                  const xgboost::Options& options) {
    ASSIGN_OR_RETURN(xgboost::Signature signature, xgboost::CheckSignature(*context.manifest));
    auto instance = std::unique_ptr<XGBoostInstance>(new XGBoostInstance(std::move(signature)));
    RETURN_IF_ERROR(instance->LoadModel(context, options));  // checks the file first
    RETURN_IF_ERROR(instance->Probe(options.file));
    return std::unique_ptr<Instance>(std::move(instance));
  }

  Result<std::vector<Tensor>> Infer(const std::vector<Tensor>& inputs, Deadline) override {
    // The deadline is not checked: a prediction cannot be interrupted.
    const Tensor& input = inputs.at(0);
    int64_t rows = input.shape.at(0);
    if (rows == 0) return Outputs(rows, nullptr, 0);
    // XGBoost reads the elements as float/double: copy when not aligned
    // (a std::string's heap block is 16-aligned; reserve makes it one).
    const void* data = input.data.data();
    std::string aligned;
    if (reinterpret_cast<uintptr_t>(data) % DataTypeSize(input.datatype) != 0) {
      aligned.reserve(input.data.size() + 16);
      aligned.assign(input.data);
      data = aligned.data();
    }
    ASSIGN_OR_RETURN(Prediction prediction,
                     Predict(booster_.get(), data, input.datatype, rows, input.shape.at(1)));
    return Outputs(rows, prediction.values, prediction.count);
  }

  uint64_t MemoryBytes() const override { return memory_bytes_; }

 private:
  explicit XGBoostInstance(xgboost::Signature signature) : signature_(std::move(signature)) {}

  Status LoadModel(const LoadContext& context, const xgboost::Options& options) {
    std::string path = (context.dir / options.file).string();
    ASSIGN_OR_RETURN(xgboost::ModelFormat format, CheckFile(path, options.file));
    if (XGBoosterCreate(nullptr, 0, booster_.out()) != 0) {
      return Internal("xgboost: " + xgboost::CleanMessage(XGBGetLastError(), "", ""));
    }
    std::string threads = std::to_string(options.threads);
    bst_ulong features = 0;
    if (XGBoosterLoadModel(booster_.get(), path.c_str()) != 0 ||
        XGBoosterSetParam(booster_.get(), "nthread", threads.c_str()) != 0 ||
        XGBoosterGetNumFeature(booster_.get(), &features) != 0) {
      return Unprocessable("cannot load " + options.file + ": " +
                           xgboost::CleanMessage(XGBGetLastError(), path, options.file));
    }
    if (format == xgboost::ModelFormat::kLegacyBinary) RETURN_IF_ERROR(CheckLoaded(options.file));
    features_ = static_cast<int64_t>(features);
    int64_t declared = signature_.input.shape.at(1);
    if (declared != -1 && declared != features_) {
      return Unprocessable("xgboost: " + options.file + " expects " + std::to_string(features_) +
                           " features but input '" + signature_.input.name + "' has " +
                           std::to_string(declared));
    }
    return Status::Ok();
  }

  // Reads the file to check it before XGBoost parses it (model_check.h says
  // why) and to size the memory estimate.
  Result<xgboost::ModelFormat> CheckFile(const std::string& path, const std::string& file) {
    auto bytes = ReadFile(path);
    if (!bytes.ok()) return Unprocessable("cannot load " + file + ": cannot read the file");
    xgboost::ModelFormat format = xgboost::DetectFormat(path, *bytes);
    Status valid = xgboost::CheckModelBytes(format, *bytes);
    if (!valid.ok()) {
      return Unprocessable("cannot load " + file + ": " + PrintableText(valid.message()));
    }
    memory_bytes_ = xgboost::EstimateMemory(file, bytes->size());
    return format;
  }

  // The legacy binary format cannot be checked before loading: check the
  // loaded model, saved as UBJSON, before anything predicts with it.
  Status CheckLoaded(const std::string& file) {
    bst_ulong size = 0;
    const char* data = nullptr;
    if (XGBoosterSaveModelToBuffer(booster_.get(), R"({"format": "ubj"})", &size, &data) != 0) {
      return Unprocessable("cannot load " + file + ": " +
                           xgboost::CleanMessage(XGBGetLastError(), "", ""));
    }
    Status valid = xgboost::CheckModelBytes(xgboost::ModelFormat::kUbjson, {data, size});
    if (!valid.ok()) {
      return Unprocessable("cannot load " + file + ": " + PrintableText(valid.message()));
    }
    return Status::Ok();
  }

  // Predicts one row of zeros and checks that the result fits the signature.
  Status Probe(const std::string& file) {
    std::vector<float> zeros(static_cast<size_t>(std::max<int64_t>(features_, 1)), 0.0f);
    auto prediction = Predict(booster_.get(), zeros.data(), DataType::kFp32, 1, features_);
    if (!prediction.ok()) {
      return Unprocessable("xgboost: " + file +
                           " cannot predict: " + prediction.status().message());
    }
    per_row_ = static_cast<int64_t>(prediction->count);
    auto shape = xgboost::OutputShape(signature_.output, 1, per_row_);
    if (!shape.ok()) return Unprocessable(shape.status().message());
    return Status::Ok();
  }

  Result<std::vector<Tensor>> Outputs(int64_t rows, const float* values, size_t count) const {
    if (count != static_cast<size_t>(rows * per_row_)) {
      return Internal("xgboost: the model returned " + std::to_string(count) + " values for " +
                      std::to_string(rows) + " rows, expected " + std::to_string(rows * per_row_));
    }
    ASSIGN_OR_RETURN(std::vector<int64_t> shape,
                     xgboost::OutputShape(signature_.output, rows, per_row_));
    Tensor out{signature_.output.name, signature_.output_type, std::move(shape), {}};
    if (out.datatype == DataType::kFp32) {
      out.data.assign(reinterpret_cast<const char*>(values), count * sizeof(float));
    } else {
      out.data.resize(count * sizeof(double));
      for (size_t i = 0; i < count; ++i) {
        double v = values[i];
        std::memcpy(out.data.data() + i * sizeof(double), &v, sizeof(double));
      }
    }
    return std::vector<Tensor>{std::move(out)};
  }

  xgboost::Signature signature_;
  Booster booster_;
  int64_t features_ = 0;
  int64_t per_row_ = 0;  // values XGBoost returns per input row
  uint64_t memory_bytes_ = 0;
};

// Ownership: stateless.
// Thread-safety: Load may run on several load threads at once.
class XGBoostBackend final : public Backend {
 public:
  bool InProcess(const LoadContext&) const override { return true; }

  Result<std::unique_ptr<Instance>> Load(const LoadContext& context) override {
    if (context.manifest == nullptr) return Internal("xgboost: no manifest");
    ASSIGN_OR_RETURN(xgboost::Options options, xgboost::ParseOptions(context));
    return XGBoostInstance::Create(context, options);
  }
};

}  // namespace

ORRERY_REGISTER_BACKEND("xgboost", XGBoostBackend);

}  // namespace orrery
