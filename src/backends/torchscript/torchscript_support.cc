#include "backends/torchscript/torchscript_support.h"

#include <algorithm>
#include <cctype>
#include <system_error>

namespace orrery::torchscript {
namespace {

bool HasModelExtension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return ext == ".pt" || ext == ".pth";
}

Result<std::string> ModelFile(const LoadContext& context) {
  const nlohmann::json& config = context.manifest->config;
  std::string file;
  if (config.contains("file")) {
    if (!config["file"].is_string())
      return Unprocessable("torchscript: config.file must be a path");
    file = config["file"].get<std::string>();
    Status valid = ValidatePackagePath(file);
    if (!valid.ok()) return Unprocessable("torchscript: config.file: " + valid.message());
  } else {
    for (const ManifestFile& f : context.manifest->files) {
      if (HasModelExtension(f.path)) {
        file = f.path;
        break;
      }
    }
    if (file.empty()) {
      return Unprocessable(
          "torchscript: no .pt or .pth file among the package files "
          "(name one with config.file)");
    }
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(context.dir / file, ec)) {
    return Unprocessable("cannot load " + file + ": file not found");
  }
  return file;
}

}  // namespace

Result<Options> ParseOptions(const LoadContext& context) {
  const nlohmann::json& config = context.manifest->config;
  Options options;
  if (config.contains("in_process") && config["in_process"] != true) {
    return Unprocessable(
        "torchscript: config.in_process: running TorchScript out of process "
        "is not implemented yet");
  }
  if (config.contains("threads")) {
    const nlohmann::json& threads = config["threads"];
    if (!threads.is_number_integer() || threads.get<int64_t>() < 1 || threads.get<int64_t>() > 64) {
      return Unprocessable("torchscript: config.threads must be an integer from 1 to 64");
    }
    options.threads = threads.get<int>();
  }
  ASSIGN_OR_RETURN(options.file, ModelFile(context));
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

std::string Printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : text) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace orrery::torchscript
