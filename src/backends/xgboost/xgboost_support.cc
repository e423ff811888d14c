#include "backends/xgboost/xgboost_support.h"

#include "backends/backend_util.h"

#include <algorithm>
#include <cctype>
#include <system_error>

namespace orrery::xgboost {
namespace {

std::string Extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return ext;
}


std::string ShapeText(const std::vector<int64_t>& dims) {
  std::string out = "[";
  for (size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
  return out + "]";
}

Result<DataType> FloatType(const TensorSpec& spec, const char* role) {
  if (spec.datatype == "FP32") return DataType::kFp32;
  if (spec.datatype == "FP64") return DataType::kFp64;
  return Unprocessable(std::string("xgboost: ") + role + " '" + spec.name + "' is " +
                       spec.datatype + "; this backend takes and returns FP32 or FP64");
}

}  // namespace

Result<Options> ParseOptions(const LoadContext& context) {
  Options options;
  ASSIGN_OR_RETURN(options.threads, ConfigThreads(context, "xgboost"));
  ASSIGN_OR_RETURN(options.file,
                   FindModelFile(context, "xgboost", {".ubj", ".json", ".model"}, {"model_file"}));
  return options;
}

Result<Signature> CheckSignature(const Manifest& manifest) {
  if (manifest.inputs.size() != 1 || manifest.outputs.size() != 1) {
    return Unprocessable("xgboost: the signature must have one input and one output (it has " +
                         std::to_string(manifest.inputs.size()) + " and " +
                         std::to_string(manifest.outputs.size()) + ")");
  }
  Signature signature{manifest.inputs[0], DataType::kFp32, manifest.outputs[0], DataType::kFp32};
  ASSIGN_OR_RETURN(signature.input_type, FloatType(signature.input, "input"));
  ASSIGN_OR_RETURN(signature.output_type, FloatType(signature.output, "output"));
  if (signature.input.shape.size() != 2) {
    return Unprocessable("xgboost: input '" + signature.input.name +
                         "' must be [batch, features], not " + ShapeText(signature.input.shape));
  }
  const std::vector<int64_t>& out = signature.output.shape;
  if (out.empty() || std::count(out.begin() + 1, out.end(), -1) > 1) {
    return Unprocessable("xgboost: output '" + signature.output.name +
                         "' must be [batch, ...] with at "
                         "most one more -1, not " +
                         ShapeText(out));
  }
  return signature;
}

Result<std::vector<int64_t>> OutputShape(const TensorSpec& spec, int64_t rows, int64_t per_row) {
  std::vector<int64_t> shape = spec.shape;
  bool fits = !shape.empty() && (shape[0] == -1 || shape[0] == rows);
  int64_t fixed = 1;
  size_t variable = 0;
  for (size_t i = 1; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      variable = i;
    } else {
      fixed *= shape[i];
    }
  }
  if (fits && variable != 0) {
    fits = fixed > 0 && per_row % fixed == 0;
    if (fits) shape[variable] = per_row / fixed;
  } else if (fits) {
    fits = fixed == per_row;
  }
  if (!fits) {
    return Internal("xgboost: the model returns " + std::to_string(per_row) +
                    " values per row, which do not fit output '" + spec.name + "' " +
                    ShapeText(spec.shape));
  }
  shape[0] = rows;
  return shape;
}

std::string CleanMessage(std::string_view message, const std::string& path,
                         const std::string& file) {
  std::string text(message.substr(0, message.find('\n')));
  // "[03:51:10] ./src/c_api/c_api.cc:1073: Check failed: ..."
  if (!text.empty() && text[0] == '[') {
    size_t time_end = text.find("] ");
    if (time_end != std::string::npos) text.erase(0, time_end + 2);
    size_t location = text.find(": ");
    if (location != std::string::npos &&
        text.substr(0, location).find(".cc:") != std::string::npos) {
      text.erase(0, location + 2);
    }
  }
  for (size_t at; !path.empty() && (at = text.find(path)) != std::string::npos;) {
    text.replace(at, path.size(), file);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == ':')) text.pop_back();
  return text.empty() ? "unknown error" : PrintableText(text);
}


uint64_t EstimateMemory(const std::string& file, uint64_t file_size) {
  std::string ext = Extension(file);
  bool text_like = ext == ".ubj" || ext == ".json";
  return text_like ? file_size + file_size / 2 : 2 * file_size;
}

}  // namespace orrery::xgboost
