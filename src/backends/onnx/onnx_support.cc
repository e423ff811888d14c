#include "backends/onnx/onnx_support.h"

#include "backends/backend_util.h"

#include <algorithm>
#include <cctype>
#include <sstream>
#include <system_error>

namespace orrery::onnx {
namespace {

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

std::string ShapeText(const std::vector<int64_t>& dims) {
  std::string out = "[";
  for (size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
  return out + "]";
}


// The text between `open` and the next `close` after `from`; npos-safe.
std::string Between(std::string_view text, size_t from, std::string_view open,
                    std::string_view close) {
  size_t start = text.find(open, from);
  if (start == std::string_view::npos) return "";
  start += open.size();
  size_t end = text.find(close, start);
  return end == std::string_view::npos ? "" : std::string(text.substr(start, end - start));
}

}  // namespace

Result<Options> ParseOptions(const LoadContext& context) {
  Options options;
  ASSIGN_OR_RETURN(options.threads, ConfigThreads(context, "onnx"));
  ASSIGN_OR_RETURN(options.file, FindModelFile(context, "onnx", {".onnx"}));
  return options;
}

Result<std::vector<std::string>> Bind(const std::vector<TensorSpec>& specs,
                                      const std::vector<std::string>& graph_names,
                                      const std::string& role, const std::string& file) {
  std::vector<std::string> declared;
  declared.reserve(specs.size());
  for (const TensorSpec& spec : specs) declared.push_back(spec.name);
  if (declared.size() != graph_names.size()) {
    return Unprocessable("onnx: " + file + " has " + std::to_string(graph_names.size()) + " " +
                         role + " (" + Join(graph_names) + ") but the signature declares " +
                         std::to_string(declared.size()) + " (" + Join(declared) + ")");
  }
  std::vector<std::string> sorted_declared = declared, sorted_graph = graph_names;
  std::sort(sorted_declared.begin(), sorted_declared.end());
  std::sort(sorted_graph.begin(), sorted_graph.end());
  return sorted_declared == sorted_graph ? declared : graph_names;
}

Status LoadError(std::string_view what, const std::string& file) {
  size_t at = what.find("Can't create layer \"");
  if (at != std::string_view::npos) {
    std::string layer = Between(what, at, "layer \"", "\"");
    std::string type = Between(what, at, "of type \"", "\"");
    if (layer.rfind("onnx_node!", 0) == 0) layer.erase(0, 10);
    if (!type.empty()) {
      return Unprocessable("onnx: operator '" + CleanMessage(type) +
                           "' is not supported by the OpenCV DNN runtime (layer '" +
                           CleanMessage(layer) + "')");
    }
  }
  return Unprocessable("cannot load " + file + ": " + CleanMessage(what));
}

std::string CleanMessage(std::string_view what) {
  std::string text;
  std::istringstream lines{std::string(what)};
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("> ", 0) == 0) line.erase(0, 2);
    // "OpenCV(4.6.0) ./modules/x.cpp:12: error: (-215:Assertion failed) cond in function 'f'"
    for (size_t start; (start = line.find("OpenCV(")) != std::string::npos;) {
      size_t code = line.find("error: (", start);
      size_t end = code == std::string::npos ? std::string::npos : line.find(") ", code);
      if (end == std::string::npos) break;
      bool assertion = line.compare(code, end - code, "error: (-215:Assertion failed") == 0;
      line.replace(start, end + 2 - start, assertion ? "assertion failed: " : "");
    }
    for (size_t start; (start = line.find("in function '")) != std::string::npos;) {
      size_t end = line.find('\'', start + 13);
      if (start > 0 && line[start - 1] == ' ') --start;
      line.erase(start, end == std::string::npos ? std::string::npos : end + 1 - start);
    }
    if (line.find_first_not_of(' ') == std::string::npos) continue;
    text += (text.empty() ? "" : " ") + line;
  }
  std::string out = PrintableText(text);
  return out.empty() ? "unknown error" : out;
}

Result<std::vector<int64_t>> FitShape(const TensorSpec& spec, const std::vector<int64_t>& shape) {
  bool fits = shape.size() == spec.shape.size();
  for (size_t i = 0; fits && i < shape.size(); ++i) {
    fits = spec.shape[i] == -1 || spec.shape[i] == shape[i];
  }
  if (fits) return shape;
  int64_t count = 1, fixed = 1;
  for (int64_t d : shape) count *= d;
  std::vector<int64_t> out = spec.shape;
  auto variable = std::find(out.begin(), out.end(), -1);
  for (int64_t d : out) fixed *= d == -1 ? 1 : d;
  if (std::count(out.begin(), out.end(), -1) <= 1) {
    if (variable != out.end() && fixed > 0 && count % fixed == 0) *variable = count / fixed;
    if (variable != out.end() ? fixed > 0 && count % fixed == 0 : fixed == count) return out;
  }
  return Internal("onnx: output '" + spec.name + "' has shape " + ShapeText(shape) +
                  " but the signature says " + ShapeText(spec.shape));
}

}  // namespace orrery::onnx
