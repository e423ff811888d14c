#include "serving/signature.h"

#include <cmath>
#include <cstring>
#include <map>

namespace orrery {
namespace {

Status CheckShape(const TensorSpec& spec, const Tensor& tensor) {
  bool fits = spec.shape.size() == tensor.shape.size();
  for (size_t i = 0; fits && i < spec.shape.size(); ++i) {
    fits = spec.shape[i] == -1 || spec.shape[i] == tensor.shape[i];
  }
  if (fits) return Status::Ok();
  return InvalidArgument("input '" + spec.name + "' has shape " + ShapeString(tensor.shape) +
                         ", the servable expects " + ShapeString(spec.shape));
}

// {"inputs": [...]} built from a {name: {datatype, shape, data}} map, so
// that the protocol codec turns example data into tensors.
Result<std::vector<Tensor>> DecodeTensorMap(const nlohmann::json& map, const std::string& what) {
  if (!map.is_object() || map.empty()) return InvalidArgument("example " + what + " missing");
  nlohmann::json request = {{"inputs", nlohmann::json::array()}};
  for (const auto& [name, tensor] : map.items()) {
    nlohmann::json entry = tensor;
    entry["name"] = name;
    request["inputs"].push_back(std::move(entry));
  }
  ASSIGN_OR_RETURN(InferRequest decoded, DecodeInferRequest(request.dump(), std::nullopt));
  return std::move(decoded.inputs);
}

bool Close(double actual, double expected, double tolerance) {
  if (std::isnan(expected)) return std::isnan(actual);
  if (std::isinf(expected)) return actual == expected;
  return std::fabs(actual - expected) <= tolerance * std::max(1.0, std::fabs(expected));
}

nlohmann::json CompareTensor(const Tensor& actual, const Tensor& expected, double tolerance) {
  nlohmann::json result = {{"name", expected.name}, {"ok", false}};
  if (actual.shape != expected.shape) {
    result["message"] =
        "shape " + ShapeString(actual.shape) + ", expected " + ShapeString(expected.shape);
    return result;
  }
  if (expected.datatype == DataType::kBytes || actual.datatype == DataType::kBytes) {
    result["ok"] = actual.data == expected.data && actual.datatype == expected.datatype;
    if (!result["ok"]) result["message"] = "BYTES differ";
    return result;
  }
  std::vector<double> got = TensorValues(actual), want = TensorValues(expected);
  double max_error = 0;
  bool ok = got.size() == want.size();
  for (size_t i = 0; ok && i < got.size(); ++i) {
    if (!std::isnan(got[i]) || !std::isnan(want[i])) {
      max_error = std::max(max_error, std::fabs(got[i] - want[i]));
    }
    ok = Close(got[i], want[i], tolerance);
  }
  result["ok"] = ok;
  result["max_abs_error"] = std::isfinite(max_error) ? max_error : -1.0;
  if (!ok) result["message"] = "values differ beyond tolerance " + std::to_string(tolerance);
  return result;
}

}  // namespace

Result<std::vector<Tensor>> BindInputs(const Manifest& manifest, std::vector<Tensor> inputs) {
  std::map<std::string, Tensor*> by_name;
  for (Tensor& tensor : inputs) {
    if (!by_name.emplace(tensor.name, &tensor).second) {
      return InvalidArgument("input '" + tensor.name + "' is given twice");
    }
    bool known = false;
    for (const TensorSpec& spec : manifest.inputs) known = known || spec.name == tensor.name;
    if (!known) {
      std::string names;
      for (const TensorSpec& spec : manifest.inputs)
        names += (names.empty() ? "" : ", ") + spec.name;
      return InvalidArgument("unknown input '" + tensor.name +
                             "' (the servable's inputs: " + names + ")");
    }
  }
  std::vector<Tensor> bound;
  bound.reserve(manifest.inputs.size());
  for (const TensorSpec& spec : manifest.inputs) {
    auto it = by_name.find(spec.name);
    if (it == by_name.end()) return InvalidArgument("missing input '" + spec.name + "'");
    Tensor& tensor = *it->second;
    std::string_view datatype = DataTypeName(tensor.datatype);
    if (datatype != spec.datatype) {
      return InvalidArgument("input '" + spec.name + "' has datatype " + std::string(datatype) +
                             ", the servable expects " + spec.datatype);
    }
    RETURN_IF_ERROR(CheckShape(spec, tensor));
    bound.push_back(std::move(tensor));
  }
  return bound;
}

Result<std::vector<size_t>> SelectOutputs(const Manifest& manifest,
                                          const std::vector<RequestedOutput>& requested) {
  std::vector<size_t> indexes;
  if (requested.empty()) {
    for (size_t i = 0; i < manifest.outputs.size(); ++i) indexes.push_back(i);
    return indexes;
  }
  for (const RequestedOutput& output : requested) {
    size_t i = 0;
    while (i < manifest.outputs.size() && manifest.outputs[i].name != output.name) ++i;
    if (i == manifest.outputs.size()) {
      std::string names;
      for (const TensorSpec& spec : manifest.outputs)
        names += (names.empty() ? "" : ", ") + spec.name;
      return InvalidArgument("unknown output '" + output.name +
                             "' (the servable's outputs: " + names + ")");
    }
    indexes.push_back(i);
  }
  return indexes;
}

Status CheckOutputs(const Manifest& manifest, const std::vector<Tensor>& outputs) {
  if (outputs.size() != manifest.outputs.size()) {
    return Internal("the servable returned " + std::to_string(outputs.size()) +
                    " outputs, its signature has " + std::to_string(manifest.outputs.size()));
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    const TensorSpec& spec = manifest.outputs[i];
    if (outputs[i].name != spec.name || DataTypeName(outputs[i].datatype) != spec.datatype ||
        outputs[i].shape.size() != spec.shape.size()) {
      return Internal("the servable's output '" + outputs[i].name + "' (" +
                      std::string(DataTypeName(outputs[i].datatype)) + " " +
                      ShapeString(outputs[i].shape) + ") does not match its signature (" +
                      spec.name + ": " + spec.datatype + " " + ShapeString(spec.shape) + ")");
    }
    RETURN_IF_ERROR(ValidateTensor(outputs[i]));
  }
  return Status::Ok();
}

Result<std::vector<Tensor>> ExampleInputs(const Manifest& manifest, const nlohmann::json& example) {
  if (!example.is_object()) return InvalidArgument("example is not an object");
  ASSIGN_OR_RETURN(std::vector<Tensor> inputs,
                   DecodeTensorMap(example.value("inputs", nlohmann::json()), "inputs"));
  return BindInputs(manifest, std::move(inputs));
}

nlohmann::json CompareExample(const Manifest& manifest, const nlohmann::json& example,
                              const std::vector<Tensor>& outputs) {
  nlohmann::json report = {{"ok", false}, {"outputs", nlohmann::json::array()}};
  Result<std::vector<Tensor>> expected =
      DecodeTensorMap(example.value("outputs", nlohmann::json()), "outputs");
  if (!expected.ok()) {
    report["message"] = expected.status().message();
    return report;
  }
  double tolerance = example.value("tolerance", 1e-6);
  bool all = true;
  for (const Tensor& want : *expected) {
    const Tensor* got = nullptr;
    for (const Tensor& output : outputs) got = output.name == want.name ? &output : got;
    nlohmann::json result =
        got ? CompareTensor(*got, want, tolerance)
            : nlohmann::json{{"name", want.name}, {"ok", false}, {"message", "output missing"}};
    all = all && result["ok"].get<bool>();
    report["outputs"].push_back(std::move(result));
  }
  report["ok"] = all;
  return report;
}

}  // namespace orrery
