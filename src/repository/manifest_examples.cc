// Manifest examples: input and output tensors checked against the signature
// (names, datatypes, shapes, element counts and element types) and stored as
// JSON {datatype, shape, data} with `data` flattened in row-major order, the
// form an Open Inference Protocol request takes, so `verify` can replay them.
#include <algorithm>
#include <cstdint>

#include "repository/manifest_internal.h"

namespace orrery::manifest_internal {
namespace {

using nlohmann::json;

struct IntegerRange {
  int64_t min;
  uint64_t max;
};

const std::map<std::string, IntegerRange>& IntegerRanges() {
  static const std::map<std::string, IntegerRange> ranges = {
      {"INT8", {INT8_MIN, INT8_MAX}},    {"INT16", {INT16_MIN, INT16_MAX}},
      {"INT32", {INT32_MIN, INT32_MAX}}, {"INT64", {INT64_MIN, INT64_MAX}},
      {"UINT8", {0, UINT8_MAX}},         {"UINT16", {0, UINT16_MAX}},
      {"UINT32", {0, UINT32_MAX}},       {"UINT64", {0, UINT64_MAX}}};
  return ranges;
}

// Converts one data element to the JSON type its datatype calls for, so that
// `verify` can build a request from it without guessing.
Result<json> ExampleElement(const YAML::Node& node, const std::string& field,
                            const std::string& datatype) {
  if (!node.IsScalar()) return FieldError(field, "must be a value");
  if (datatype == "BYTES") return json(node.Scalar());
  json value = ScalarToJson(node);
  if (datatype == "BOOL") {
    if (!value.is_boolean()) return FieldError(field, "must be true or false (BOOL)");
    return value;
  }
  auto range = IntegerRanges().find(datatype);
  if (range == IntegerRanges().end()) {  // FP16, FP32, FP64, BF16
    if (!value.is_number()) return FieldError(field, "must be a number (" + datatype + ")");
    return json(value.get<double>());
  }
  bool fits = false;
  if (value.is_number_unsigned()) {
    fits = value.get<uint64_t>() <= range->second.max;
  } else if (value.is_number_integer()) {
    int64_t v = value.get<int64_t>();
    fits = v >= range->second.min && (v < 0 || static_cast<uint64_t>(v) <= range->second.max);
  }
  if (!fits) return FieldError(field, "must be an integer in the range of " + datatype);
  return value;
}

// Appends the scalars of `node` (a value or nested lists) to `out`.
Status FlattenData(const YAML::Node& node, const std::string& field, const std::string& datatype,
                   Budget& budget, int depth, json& out) {
  RETURN_IF_ERROR(budget.Spend(field, depth));
  if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) {
      RETURN_IF_ERROR(FlattenData(node[i], field, datatype, budget, depth + 1, out));
    }
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(json value, ExampleElement(node, Item(field, out.size()), datatype));
  out.push_back(std::move(value));
  return Status::Ok();
}

// One example tensor, stored as {datatype, shape, data (flat, row-major)}.
Result<json> ParseExampleTensor(const YAML::Node& node, const std::string& field,
                                const TensorSpec& spec, Budget& budget) {
  ASSIGN_OR_RETURN(auto map, FieldMap::Open(node, field, {"datatype", "shape", "data"}));
  ASSIGN_OR_RETURN(std::string datatype, map.String("datatype", false));
  if (!datatype.empty() && datatype != spec.datatype) {
    return FieldError(map.Path("datatype"),
                      "is " + datatype + " but the signature says " + spec.datatype);
  }
  auto shape_node = map.Get("shape");
  if (!shape_node) return FieldError(map.Path("shape"), "required");
  if (!shape_node->IsSequence()) return FieldError(map.Path("shape"), "must be a list");
  if (shape_node->size() != spec.shape.size()) {
    return FieldError(map.Path("shape"),
                      "must have " + std::to_string(spec.shape.size()) + " dimensions");
  }
  json shape = json::array();
  int64_t count = 1;
  for (size_t d = 0; d < spec.shape.size(); ++d) {
    std::string dim_field = Item(map.Path("shape"), d);
    ASSIGN_OR_RETURN(int64_t dim, ToInteger((*shape_node)[d], dim_field));
    if (dim < 0) return FieldError(dim_field, "must be >= 0");
    if (spec.shape[d] != -1 && dim != spec.shape[d]) {
      return FieldError(dim_field, "must be " + std::to_string(spec.shape[d]));
    }
    if (__builtin_mul_overflow(count, dim, &count)) return FieldError(dim_field, "too large");
    shape.push_back(dim);
  }
  auto data_node = map.Get("data");
  if (!data_node) return FieldError(map.Path("data"), "required");
  json data = json::array();
  RETURN_IF_ERROR(FlattenData(*data_node, map.Path("data"), spec.datatype, budget, 0, data));
  if (static_cast<int64_t>(data.size()) != count) {
    return FieldError(map.Path("data"), "has " + std::to_string(data.size()) +
                                            " values but the shape needs " + std::to_string(count));
  }
  return json{{"datatype", spec.datatype}, {"shape", shape}, {"data", std::move(data)}};
}

// `inputs` must name every signature input (the example must be runnable);
// `outputs` names at least one signature output.
Result<json> ParseExampleTensors(const FieldMap& example, std::string_view key,
                                 const std::vector<TensorSpec>& specs, Budget& budget) {
  auto node = example.Get(key);
  std::string field = example.Path(key);
  if (!node) return FieldError(field, "required");
  if (!node->IsMap()) return FieldError(field, "must be a mapping");
  json tensors = json::object();
  for (auto it = node->begin(); it != node->end(); ++it) {
    if (!it->first.IsScalar()) return FieldError(field, "keys must be strings");
    const std::string& name = it->first.Scalar();
    auto spec = std::find_if(specs.begin(), specs.end(),
                             [&](const TensorSpec& s) { return s.name == name; });
    if (spec == specs.end()) return FieldError(Child(field, name), "not in the signature");
    if (tensors.contains(name)) return FieldError(Child(field, name), "duplicate key");
    ASSIGN_OR_RETURN(tensors[name],
                     ParseExampleTensor(it->second, Child(field, name), *spec, budget));
  }
  if (key == "inputs") {
    for (const TensorSpec& spec : specs) {
      if (!tensors.contains(spec.name)) return FieldError(Child(field, spec.name), "required");
    }
  }
  if (tensors.empty()) return FieldError(field, "must name at least one tensor");
  return tensors;
}

}  // namespace

Result<nlohmann::json> ParseExamples(const FieldMap& top, const Manifest& manifest,
                                     Budget& budget) {
  ASSIGN_OR_RETURN(auto items, top.List("examples", false));
  json examples = json::array();
  for (size_t i = 0; i < items.size(); ++i) {
    std::string field = Item("examples", i);
    ASSIGN_OR_RETURN(auto map, FieldMap::Open(items[i], field, {"inputs", "outputs", "tolerance"}));
    json example = json::object();
    ASSIGN_OR_RETURN(example["inputs"],
                     ParseExampleTensors(map, "inputs", manifest.inputs, budget));
    ASSIGN_OR_RETURN(example["outputs"],
                     ParseExampleTensors(map, "outputs", manifest.outputs, budget));
    if (auto tolerance = map.Get("tolerance")) {
      ASSIGN_OR_RETURN(double value, ToNumber(*tolerance, map.Path("tolerance")));
      if (value < 0) return FieldError(map.Path("tolerance"), "must be >= 0");
      example["tolerance"] = value;
    }
    examples.push_back(std::move(example));
  }
  return examples;
}

}  // namespace orrery::manifest_internal
