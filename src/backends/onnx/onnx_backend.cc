// The "onnx" backend: runs an ONNX graph in process with OpenCV 4.6's DNN
// module, on the calling thread. OpenCV DNN is not a general ONNX runtime:
// a graph with an operator it cannot run fails to load with a message that
// names the operator.
//
// Manifest config (all optional):
//   file: model.onnx   the graph; default: the first .onnx among `files`
//   threads: 1         OpenCV's thread count. OpenCV has one process-wide
//                      setting: the backend sets it to 1 when created, and
//                      an instance asking for more raises it for every
//                      OpenCV user in the process to the largest value asked.
//
// Binding: signature inputs are set on the graph input of the same name
// when the signature's input names are exactly the graph's (in any order);
// otherwise by position, in graph order. Outputs likewise. Load reads the
// graph's input and output names from the file (onnx_graph.h), checks the
// counts, and runs one forward pass on zeros of the signature's shapes (-1
// as 1), so that layers OpenCV can create but not run fail at load too.
//
// Datatypes: FP32 or FP64 inputs and outputs. OpenCV DNN computes in FP32:
// FP64 inputs are converted to FP32 (precision is lost), outputs to the
// signature's type.
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "backends/backend.h"
#include "backends/onnx/onnx_graph.h"
#include "backends/onnx/onnx_support.h"
#include "core/files.h"

namespace orrery {
namespace {

Result<DataType> FloatType(const TensorSpec& spec, const char* role) {
  if (spec.datatype == "FP32") return DataType::kFp32;
  if (spec.datatype == "FP64") return DataType::kFp64;
  return Unprocessable(std::string("onnx: ") + role + " '" + spec.name + "' is " + spec.datatype +
                       "; the OpenCV DNN runtime takes and returns FP32 or FP64");
}

// Raises OpenCV's process-wide thread count to `threads` if it is lower.
void RaiseOpenCvThreads(int threads) {
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  if (cv::getNumThreads() < threads) cv::setNumThreads(threads);
}

cv::Mat ToMat(const Tensor& tensor) {
  std::vector<int> sizes(tensor.shape.begin(), tensor.shape.end());
  if (sizes.empty()) sizes = {1};
  cv::Mat mat(static_cast<int>(sizes.size()), sizes.data(), CV_32F);
  if (tensor.datatype == DataType::kFp32) {
    std::memcpy(mat.data, tensor.data.data(), tensor.data.size());
  } else {  // FP64: OpenCV DNN computes in FP32
    auto* out = reinterpret_cast<float*>(mat.data);
    for (size_t i = 0; i < tensor.data.size() / sizeof(double); ++i) {
      double v;
      std::memcpy(&v, tensor.data.data() + i * sizeof(double), sizeof(double));
      out[i] = static_cast<float>(v);
    }
  }
  return mat;
}

Result<Tensor> FromMat(const cv::Mat& mat, const TensorSpec& spec, DataType type) {
  std::vector<int64_t> shape(mat.size.p, mat.size.p + mat.dims);
  ASSIGN_OR_RETURN(shape, onnx::FitShape(spec, shape));
  cv::Mat converted;
  mat.convertTo(converted, type == DataType::kFp64 ? CV_64F : CV_32F);
  if (!converted.isContinuous()) converted = converted.clone();
  Tensor out{spec.name, type, std::move(shape), {}};
  out.data.assign(reinterpret_cast<const char*>(converted.data),
                  converted.total() * converted.elemSize());
  return out;
}

// One loaded graph.
// Ownership: owns its cv::dnn::Net (weights and intermediate blobs).
// Thread-safety: Infer from one thread at a time (a Net keeps its inputs
// and blobs between calls); MemoryBytes from any thread.
class OnnxInstance final : public Instance {
 public:
  static Result<std::unique_ptr<Instance>> Create(const LoadContext& context,
                                                  const onnx::Options& options) {
    auto instance = std::unique_ptr<OnnxInstance>(new OnnxInstance());
    RETURN_IF_ERROR(instance->CheckTypes(*context.manifest));
    RETURN_IF_ERROR(instance->LoadNet(context, options.file));
    RETURN_IF_ERROR(instance->DryRun(options.file));
    if (options.threads > 1) RaiseOpenCvThreads(options.threads);
    return std::unique_ptr<Instance>(std::move(instance));
  }

  Result<std::vector<Tensor>> Infer(const std::vector<Tensor>& inputs, Deadline) override {
    // The deadline is not checked: a forward pass cannot be interrupted.
    for (const Tensor& input : inputs) {
      if (input.ElementCount() == 0) return EmptyOutputs();
    }
    std::vector<cv::Mat> results;
    Status run = Forward(inputs, results);
    if (!run.ok()) return InvalidArgument("onnx: the model failed on this input: " + run.message());
    std::vector<Tensor> outputs;
    try {
      for (size_t i = 0; i < output_specs_.size(); ++i) {
        ASSIGN_OR_RETURN(Tensor out, FromMat(results.at(i), output_specs_[i], output_types_[i]));
        outputs.push_back(std::move(out));
      }
    } catch (const std::exception& e) {
      return Internal("onnx: cannot convert the model's outputs: " + onnx::CleanMessage(e.what()));
    }
    return outputs;
  }

  uint64_t MemoryBytes() const override { return memory_bytes_; }

 private:
  OnnxInstance() = default;

  // OpenCV DNN cannot run empty tensors: an empty batch gives empty outputs
  // when the batch is the only variable dimension of each output.
  Result<std::vector<Tensor>> EmptyOutputs() const {
    std::vector<Tensor> outputs;
    for (size_t i = 0; i < output_specs_.size(); ++i) {
      Tensor out{output_specs_[i].name, output_types_[i], output_specs_[i].shape, {}};
      for (size_t d = 0; d < out.shape.size(); ++d) {
        if (out.shape[d] != -1) continue;
        if (d != 0) return InvalidArgument("onnx: the OpenCV DNN runtime cannot run empty inputs");
        out.shape[d] = 0;
      }
      outputs.push_back(std::move(out));
    }
    return outputs;
  }

  // Sets the inputs and runs the graph; the error is OpenCV's, cleaned.
  Status Forward(const std::vector<Tensor>& inputs, std::vector<cv::Mat>& results) {
    try {
      for (size_t i = 0; i < inputs.size(); ++i) net_.setInput(ToMat(inputs[i]), input_names_[i]);
      net_.forward(results, output_names_);
    } catch (const std::exception& e) {
      return Internal(onnx::CleanMessage(e.what()));
    }
    return Status::Ok();
  }

  Status CheckTypes(const Manifest& manifest) {
    for (const TensorSpec& spec : manifest.inputs) {
      RETURN_IF_ERROR(FloatType(spec, "input").status());
      input_specs_.push_back(spec);
    }
    for (const TensorSpec& spec : manifest.outputs) {
      ASSIGN_OR_RETURN(DataType type, FloatType(spec, "output"));
      output_specs_.push_back(spec);
      output_types_.push_back(type);
    }
    return Status::Ok();
  }

  Status LoadNet(const LoadContext& context, const std::string& file) {
    auto bytes = ReadFile(context.dir / file);
    if (!bytes.ok()) return Unprocessable("cannot load " + file + ": cannot read the file");
    file_size_ = bytes->size();
    try {
      net_ = cv::dnn::readNetFromONNX(bytes->data(), bytes->size());
    } catch (const std::exception& e) {
      return onnx::LoadError(e.what(), file);
    }
    ASSIGN_OR_RETURN(onnx::OnnxGraph graph, onnx::ReadOnnxGraph(*bytes));
    ASSIGN_OR_RETURN(input_names_, onnx::Bind(input_specs_, graph.inputs, "inputs", file));
    ASSIGN_OR_RETURN(output_names_, onnx::Bind(output_specs_, graph.outputs, "outputs", file));
    return Status::Ok();
  }

  // One forward pass on zeros (-1 dimensions as 1): OpenCV creates most
  // layers' internals on the first pass. Also measures the memory.
  Status DryRun(const std::string& file) {
    std::vector<Tensor> zeros;
    std::vector<cv::dnn::MatShape> shapes;
    for (const TensorSpec& spec : input_specs_) {
      Tensor zero{spec.name, DataType::kFp32, {}, {}};
      for (int64_t d : spec.shape) zero.shape.push_back(d == -1 ? 1 : d);
      zero.data.assign(*zero.ElementCount() * sizeof(float), '\0');
      shapes.emplace_back(zero.shape.begin(), zero.shape.end());
      zeros.push_back(std::move(zero));
    }
    std::vector<cv::Mat> results;
    Status run = Forward(zeros, results);
    if (!run.ok()) {
      return Unprocessable("onnx: " + file +
                           " does not run in the OpenCV DNN runtime: " + run.message());
    }
    memory_bytes_ = 2 * file_size_;
    try {
      size_t weights = 0, blobs = 0;
      net_.getMemoryConsumption(shapes, weights, blobs);
      if (weights + blobs > 0) memory_bytes_ = weights + blobs;
    } catch (const std::exception&) {
      // Keep the estimate from the file size.
    }
    return Status::Ok();
  }

  cv::dnn::Net net_;
  std::vector<TensorSpec> input_specs_;
  std::vector<std::string> input_names_;  // graph input per signature input
  std::vector<TensorSpec> output_specs_;
  std::vector<DataType> output_types_;
  std::vector<cv::String> output_names_;  // graph output per signature output
  uint64_t file_size_ = 0;
  uint64_t memory_bytes_ = 0;  // weights + blobs at batch 1, else 2 x file size
};

// Ownership: stateless.
// Thread-safety: Load may run on several load threads at once.
class OnnxBackend final : public Backend {
 public:
  // Created during static initialisation (the registry does it). One thread
  // per instance: with OpenCV's default (all cores) batch 1 was slower here,
  // and much slower on a request thread pinned to one core.
  OnnxBackend() {
    try {
      cv::setNumThreads(1);
    } catch (const std::exception&) {
      // Keep OpenCV's default: registration must not throw.
    }
  }

  bool InProcess(const LoadContext&) const override { return true; }

  Result<std::unique_ptr<Instance>> Load(const LoadContext& context) override {
    if (context.manifest == nullptr) return Internal("onnx: no manifest");
    ASSIGN_OR_RETURN(onnx::Options options, onnx::ParseOptions(context));
    return OnnxInstance::Create(context, options);
  }
};

}  // namespace

ORRERY_REGISTER_BACKEND("onnx", OnnxBackend);

}  // namespace orrery
