#include "cli/infer_io.h"

#include <charconv>
#include <set>

#include "cli/output.h"
#include "core/files.h"
#include "tensor/npy.h"

namespace orrery::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() > suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// Sets parameters[key] of a request or output object.
Status SetParameter(json& object, const char* key, json value, const std::string& where) {
  json& parameters = object["parameters"];
  if (!parameters.is_null() && !parameters.is_object()) {
    return InvalidArgument(where + ": \"parameters\" is not an object");
  }
  parameters[key] = std::move(value);
  return Status::Ok();
}

// Applies --output, --save and --timeout-ms to a request object.
Status ApplyOptions(json& request, const RequestOptions& options, const std::string& where) {
  if (!options.outputs.empty()) {
    request["outputs"] = json::array();
    for (const std::string& name : options.outputs) request["outputs"].push_back({{"name", name}});
  }
  if (options.binary_outputs) {
    if (request.contains("outputs") && request["outputs"].is_array()) {
      for (json& output : request["outputs"]) {
        if (output.is_object()) RETURN_IF_ERROR(SetParameter(output, "binary_data", true, where));
      }
    }
    RETURN_IF_ERROR(SetParameter(request, "binary_data_output", true, where));
  }
  if (options.timeout_us)
    RETURN_IF_ERROR(SetParameter(request, "timeout", *options.timeout_us, where));
  return Status::Ok();
}

std::string StringField(const json& object, const char* key) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_string()) return "";
  return object[key].get<std::string>();
}

// parameters.binary_data_size of an output: nullopt when absent.
Result<std::optional<uint64_t>> BinarySize(const json& output) {
  if (!output.is_object() || !output.contains("parameters")) return std::optional<uint64_t>();
  const json& parameters = output["parameters"];
  if (!parameters.is_object() || !parameters.contains("binary_data_size")) {
    return std::optional<uint64_t>();
  }
  const json& size = parameters["binary_data_size"];
  if (!size.is_number_unsigned() && !(size.is_number_integer() && size.get<int64_t>() >= 0)) {
    return Internal("output " + StringField(output, "name") +
                    ": binary_data_size is not a byte count");
  }
  return std::optional<uint64_t>(size.get<uint64_t>());
}

// Name, datatype and shape of an output object; the data comes separately.
Result<Tensor> TensorMeta(const json& output) {
  Tensor tensor;
  tensor.name = StringField(output, "name");
  if (tensor.name.empty()) return Internal("an output of the inference answer has no name");
  std::optional<DataType> type = ParseDataType(StringField(output, "datatype"));
  if (!type) return Internal("output " + tensor.name + ": unknown datatype");
  tensor.datatype = *type;
  const json shape = output.value("shape", json());
  if (!shape.is_array()) return Internal("output " + tensor.name + ": no shape");
  for (const json& dim : shape) {
    if (!dim.is_number_integer()) return Internal("output " + tensor.name + ": bad shape");
    tensor.shape.push_back(dim.get<int64_t>());
  }
  return tensor;
}

Result<size_t> ParseHeaderLength(std::string_view text, size_t body_size) {
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) {
    return Internal("the answer's Inference-Header-Content-Length is not a number");
  }
  if (value > body_size) {
    return Internal("the answer's Inference-Header-Content-Length " + std::string(text) +
                    " is past the end of its " + std::to_string(body_size) + "-byte body");
  }
  return static_cast<size_t>(value);
}

// The BYTES tensor's elements (uint32 LE length, then the bytes) as strings.
Result<json> BytesElements(const Tensor& tensor) {
  json strings = json::array();
  std::string_view data = tensor.data;
  while (!data.empty()) {
    if (data.size() < 4) return Internal("output " + tensor.name + ": truncated BYTES data");
    uint32_t length = 0;
    for (int i = 3; i >= 0; --i) length = (length << 8) | static_cast<uint8_t>(data[i]);
    if (data.size() - 4 < length)
      return Internal("output " + tensor.name + ": truncated BYTES data");
    strings.push_back(std::string(data.substr(4, length)));
    data.remove_prefix(4 + length);
  }
  return strings;
}

// bfloat16 is the top half of a float32, so widening is exact.
Tensor WidenBf16(const Tensor& tensor) {
  Tensor wide{tensor.name, DataType::kFp32, tensor.shape, {}};
  wide.data.reserve(tensor.data.size() * 2);
  for (size_t i = 0; i + 1 < tensor.data.size(); i += 2) {
    wide.data += std::string(2, '\0') + tensor.data.substr(i, 2);
  }
  return wide;
}

// The file contents for one output and the extension it goes under.
Result<std::pair<std::string, std::string>> OutputFile(const AnswerOutput& output) {
  if (!output.tensor) return std::make_pair(DumpJson(output.json, 2) + "\n", std::string(".json"));
  const Tensor& tensor = *output.tensor;
  if (tensor.datatype == DataType::kBytes) {
    ASSIGN_OR_RETURN(json strings, BytesElements(tensor));
    json object = {{"name", tensor.name},
                   {"datatype", "BYTES"},
                   {"shape", tensor.shape},
                   {"data", std::move(strings)}};
    return std::make_pair(DumpJson(object, 2) + "\n", std::string(".json"));
  }
  Result<std::string> npy =
      EncodeNpy(tensor.datatype == DataType::kBf16 ? WidenBf16(tensor) : tensor);
  if (!npy.ok()) return Internal("output " + tensor.name + ": " + npy.status().message());
  return std::make_pair(std::move(*npy), std::string(".npy"));
}

}  // namespace

Result<InputSpec> ParseInputSpec(std::string_view text) {
  auto bad = [text](const std::string& why) {
    return InvalidArgument("--input " + std::string(text) + ": " + why);
  };
  InputSpec spec;
  std::string_view file = text;
  size_t equals = text.find('=');
  if (equals != std::string_view::npos) {
    spec.name = std::string(text.substr(0, equals));
    file = text.substr(equals + 1);
    if (spec.name.empty()) return bad("the input name before '=' is empty");
  }
  if (EndsWith(file, ".json")) {
    if (!spec.name.empty()) return bad("a .json file is a whole request; give it without NAME=");
    spec.kind = InputSpec::Kind::kRequestJson;
  } else if (!EndsWith(file, ".npy")) {
    return bad("expected request.json, file.npy or NAME=file.npy");
  }
  spec.file = std::string(file);
  return spec;
}

Status CheckInputSpecs(const std::vector<InputSpec>& specs) {
  if (specs.empty()) return InvalidArgument("give at least one --input");
  std::set<std::string> names;
  for (const InputSpec& spec : specs) {
    std::string what = "--input " + spec.file.string();
    if (specs.size() > 1 && spec.kind == InputSpec::Kind::kRequestJson) {
      return InvalidArgument(what + ": a whole request (.json) must be the only --input");
    }
    if (specs.size() > 1 && spec.name.empty()) {
      return InvalidArgument(what + ": with several inputs, name each one (NAME=file.npy)");
    }
    if (!spec.name.empty() && !names.insert(spec.name).second) {
      return InvalidArgument("two --input values for input " + spec.name);
    }
    std::error_code error;
    if (!fs::is_regular_file(spec.file, error)) return InvalidArgument(what + ": no such file");
  }
  return Status::Ok();
}

Result<InferBody> JsonRequestBody(std::string_view text, const std::string& source,
                                  const RequestOptions& options) {
  json request = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded()) return InvalidArgument(source + ": not valid JSON");
  if (!request.is_object() || !request.contains("inputs") || !request["inputs"].is_array()) {
    return InvalidArgument(source + ": not an inference request (an object with \"inputs\")");
  }
  RETURN_IF_ERROR(ApplyOptions(request, options, source));
  return InferBody{DumpJson(request), std::nullopt};
}

Result<InferBody> BinaryRequestBody(const std::vector<Tensor>& inputs,
                                    const RequestOptions& options) {
  json header = {{"inputs", json::array()}};
  for (const Tensor& tensor : inputs) {
    header["inputs"].push_back({{"name", tensor.name},
                                {"datatype", std::string(DataTypeName(tensor.datatype))},
                                {"shape", tensor.shape},
                                {"parameters", {{"binary_data_size", tensor.data.size()}}}});
  }
  RETURN_IF_ERROR(ApplyOptions(header, options, "request"));
  InferBody body{DumpJson(header), std::nullopt};
  body.json_length = body.body.size();
  for (const Tensor& tensor : inputs) body.body += tensor.data;
  return body;
}

Result<Tensor> LoadNpy(const fs::path& file, std::string name) {
  Result<std::string> bytes = ReadFile(file);
  if (!bytes.ok()) return InvalidArgument(bytes.status().message());
  Result<Tensor> tensor = DecodeNpy(*bytes, std::move(name));
  if (!tensor.ok()) return InvalidArgument(file.string() + ": " + tensor.status().message());
  return tensor;
}

Result<InferAnswer> SplitInferAnswer(std::string_view body, std::string_view header_length) {
  size_t json_end = body.size();
  if (!header_length.empty()) {
    ASSIGN_OR_RETURN(json_end, ParseHeaderLength(header_length, body.size()));
  }
  InferAnswer answer;
  answer.header = json::parse(body.substr(0, json_end), nullptr, /*allow_exceptions=*/false);
  if (!answer.header.is_object()) return Internal("the inference answer is not a JSON object");
  const json outputs = answer.header.value("outputs", json::array());
  if (!outputs.is_array()) return Internal("the inference answer's \"outputs\" is not an array");
  size_t offset = json_end;
  for (const json& output : outputs) {
    AnswerOutput part{output, std::nullopt};
    ASSIGN_OR_RETURN(std::optional<uint64_t> size, BinarySize(output));
    if (size) {
      ASSIGN_OR_RETURN(part.tensor, TensorMeta(output));
      if (*size > body.size() - offset) {
        return Internal("output " + part.tensor->name + ": binary data past the answer's end");
      }
      part.tensor->data = std::string(body.substr(offset, *size));
      offset += *size;
    }
    answer.outputs.push_back(std::move(part));
  }
  if (offset != body.size()) {
    return Internal("the inference answer has " + std::to_string(body.size() - offset) +
                    " bytes after its outputs' binary data");
  }
  return answer;
}

Result<std::vector<fs::path>> SaveOutputs(const InferAnswer& answer, const fs::path& dir) {
  RETURN_IF_ERROR(EnsureDir(dir));
  std::vector<fs::path> written;
  for (const AnswerOutput& output : answer.outputs) {
    std::string name = StringField(output.json, "name");
    if (name.empty() || name == "." || name == ".." ||
        name.find_first_of(std::string("/\0", 2)) != std::string::npos) {
      return Internal("output name \"" + name + "\" cannot be a file name");
    }
    ASSIGN_OR_RETURN(auto file, OutputFile(output));
    fs::path path = dir / (name + file.second);
    RETURN_IF_ERROR(WriteFileAtomic(path, file.first));
    written.push_back(std::move(path));
  }
  return written;
}

}  // namespace orrery::cli
