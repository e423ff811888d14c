#include "backends/torchscript/torchscript_support.h"

#include "backends/backend_util.h"

#include <algorithm>
#include <cctype>
#include <system_error>

namespace orrery::torchscript {
namespace {

}  // namespace

Result<Options> ParseOptions(const LoadContext& context) {
  const nlohmann::json& config = context.manifest->config;
  Options options;
  if (config.contains("in_process") && config["in_process"] != true) {
    return Unprocessable(
        "torchscript: config.in_process: false is not supported (TorchScript servables "
        "run in the server process; see README \"Where model code runs\")");
  }
  ASSIGN_OR_RETURN(options.threads, ConfigThreads(context, "torchscript"));
  ASSIGN_OR_RETURN(options.file, FindModelFile(context, "torchscript", {".pt", ".pth"}));
  return options;
}

Status CheckOutputShape(const TensorSpec& spec, const std::vector<int64_t>& shape) {
  bool fits = shape.size() == spec.shape.size();
  for (size_t i = 0; fits && i < shape.size(); ++i) {
    fits = spec.shape[i] == -1 || spec.shape[i] == shape[i];
  }
  if (fits) return Status::Ok();
  auto text = [](const std::vector<int64_t>& dims) {
    std::string out = "[";
    for (size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
    return out + "]";
  };
  return Internal("torchscript: output '" + spec.name + "' has shape " + text(shape) +
                  " but the signature says " + text(spec.shape));
}

}  // namespace orrery::torchscript
