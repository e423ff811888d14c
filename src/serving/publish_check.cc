#include "serving/publish_check.h"

#include "serving/signature.h"

namespace orrery {
namespace {

// A short rendering of an output for a message: its values, at most 8.
std::string Brief(const Tensor& tensor) {
  std::string out = tensor.name + " = [";
  if (tensor.datatype == DataType::kBytes) {
    out += "...";
  } else {
    std::vector<double> values = TensorValues(tensor);
    for (size_t i = 0; i < values.size() && i < 8; ++i) {
      char number[32];
      std::snprintf(number, sizeof number, "%s%.6g", i == 0 ? "" : ", ", values[i]);
      out += number;
    }
    if (values.size() > 8) out += ", ...";
  }
  return out + "] (" + std::string(DataTypeName(tensor.datatype)) + " " +
         ShapeString(tensor.shape) + ")";
}

std::string ExampleLabel(size_t index) {
  return "example " + std::to_string(index + 1);
}

}  // namespace

Status CheckServablePackage(const LoadContext& context, std::chrono::milliseconds timeout) {
  const Manifest& manifest = *context.manifest;
  Backend* backend = FindBackend(manifest.backend);
  if (backend == nullptr) return Unprocessable("no backend '" + manifest.backend + "' here");
  Result<std::unique_ptr<Instance>> instance = backend->Load(context);
  if (!instance.ok()) {
    return Unprocessable("the servable does not load: " + instance.status().message());
  }
  for (size_t i = 0; i < manifest.examples.size(); ++i) {
    const nlohmann::json& example = manifest.examples[i];
    Result<std::vector<Tensor>> inputs = ExampleInputs(manifest, example);
    if (!inputs.ok()) {
      return Unprocessable(ExampleLabel(i) + ": " + inputs.status().message());
    }
    Result<std::vector<Tensor>> outputs =
        (*instance)->Infer(*inputs, std::chrono::steady_clock::now() + timeout);
    if (!outputs.ok())
      return Unprocessable(ExampleLabel(i) + " fails: " + outputs.status().message());
    Status promised = CheckOutputs(manifest, *outputs);
    if (!promised.ok()) return Unprocessable(ExampleLabel(i) + ": " + promised.message());
    nlohmann::json report = CompareExample(manifest, example, *outputs);
    if (report["ok"].get<bool>()) continue;
    std::string why = report.value("message", "");
    for (size_t o = 0; o < report["outputs"].size(); ++o) {
      const nlohmann::json& output = report["outputs"][o];
      if (output["ok"].get<bool>()) continue;
      why = "output '" + output["name"].get<std::string>() +
            "': " + output.value("message", std::string("differs"));
      for (const Tensor& tensor : *outputs) {
        if (tensor.name == output["name"]) why += "; it gave " + Brief(tensor);
      }
      break;
    }
    return Unprocessable(ExampleLabel(i) + " does not reproduce: " + why);
  }
  return Status::Ok();
}

}  // namespace orrery
