// yaml-cpp adapter helpers for the manifest parser (see manifest_internal.h).
//
// YAML scalars are untyped text. We type them like the YAML 1.2 core schema
// so that `config` and `examples` keep ints as ints and floats as floats in
// JSON; yaml-cpp marks quoted scalars with the non-specific tag "!", which
// keeps `'2'` a string.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>

#include "repository/manifest_internal.h"

namespace orrery::manifest_internal {

using nlohmann::json;

Status FieldError(const std::string& field, const std::string& message) {
  return Unprocessable("manifest: " + field + ": " + message);
}

namespace {
Status SubjectError(std::string_view subject, const std::string& field, const std::string& message) {
  return Unprocessable(std::string(subject) + ": " + (field.empty() ? "document" : field) + ": " +
                       message);
}
}  // namespace

std::string Child(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

std::string Item(const std::string& parent, size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

namespace {

bool IsQuoted(const YAML::Node& node) {
  return node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str";
}

template <typename T>
bool ParseWhole(std::string_view text, T& value) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return false;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size();
}

// Decimal notation only: from_chars would also take "inf" and "nan", which
// JSON cannot carry.
bool ParseFloat(std::string_view text, double& value) {
  std::string_view body = text;
  if (!body.empty() && (body.front() == '-' || body.front() == '+')) body.remove_prefix(1);
  if (body.empty()) return false;
  if (!std::isdigit(static_cast<unsigned char>(body.front())) && body.front() != '.') return false;
  return ParseWhole(text, value);
}

}  // namespace

json ScalarToJson(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  if (IsQuoted(node)) return text;
  int64_t integer = 0;
  if (ParseWhole(text, integer)) return integer;
  uint64_t unsigned_integer = 0;
  if (ParseWhole(text, unsigned_integer)) return unsigned_integer;
  double real = 0;
  if (ParseFloat(text, real)) return real;
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  return text;
}

Status Budget::Spend(const std::string& field, int depth) {
  if (depth > kMaxDepth) return FieldError(field, "nested too deeply");
  if (nodes_left == 0) return FieldError(field, "too many values");
  --nodes_left;
  return Status::Ok();
}

Result<json> ToJsonValue(const YAML::Node& node, const std::string& field, Budget& budget,
                         int depth, std::string_view subject) {
  RETURN_IF_ERROR(budget.Spend(field, depth));
  if (node.IsScalar()) return ScalarToJson(node);
  if (node.IsSequence()) {
    json array = json::array();
    for (size_t i = 0; i < node.size(); ++i) {
      ASSIGN_OR_RETURN(json value,
                       ToJsonValue(node[i], Item(field, i), budget, depth + 1, subject));
      array.push_back(std::move(value));
    }
    return array;
  }
  if (node.IsMap()) {
    json object = json::object();
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!it->first.IsScalar()) return SubjectError(subject, field, "keys must be strings");
      const std::string& key = it->first.Scalar();
      if (object.contains(key)) return SubjectError(subject, Child(field, key), "duplicate key");
      ASSIGN_OR_RETURN(json value,
                       ToJsonValue(it->second, Child(field, key), budget, depth + 1, subject));
      object[key] = std::move(value);
    }
    return object;
  }
  return json();  // null
}

Result<int64_t> ToInteger(const YAML::Node& node, const std::string& field) {
  if (node.IsScalar()) {
    json value = ScalarToJson(node);
    if (value.is_number_integer() && !value.is_number_unsigned()) return value.get<int64_t>();
    if (value.is_number_unsigned() &&
        value.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return static_cast<int64_t>(value.get<uint64_t>());
    }
  }
  return FieldError(field, "must be an integer");
}

Result<int64_t> IntegerIn(const FieldMap& map, std::string_view key, int64_t min, int64_t max,
                          int64_t fallback) {
  auto node = map.Get(key);
  if (!node) return fallback;
  ASSIGN_OR_RETURN(int64_t value, ToInteger(*node, map.Path(key)));
  if (value < min || value > max) {
    return FieldError(map.Path(key), "must be " + std::to_string(min) + ".." + std::to_string(max));
  }
  return value;
}

Result<double> ToNumber(const YAML::Node& node, const std::string& field) {
  if (node.IsScalar()) {
    json value = ScalarToJson(node);
    if (value.is_number()) return value.get<double>();
  }
  return FieldError(field, "must be a number");
}

Result<FieldMap> FieldMap::Open(const YAML::Node& node, const std::string& field,
                                std::initializer_list<std::string_view> allowed) {
  if (!node.IsMap()) return FieldError(field.empty() ? "document" : field, "must be a mapping");
  FieldMap map(field);
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar()) return FieldError(map.Path("?"), "keys must be strings");
    const std::string& key = it->first.Scalar();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return FieldError(map.Path(key), "unknown key");
    }
    if (!map.values_.emplace(key, it->second).second) {
      return FieldError(map.Path(key), "duplicate key");
    }
  }
  return map;
}

std::optional<YAML::Node> FieldMap::Get(std::string_view key) const {
  auto it = values_.find(std::string(key));
  if (it == values_.end() || it->second.IsNull()) return std::nullopt;
  return it->second;
}

Result<std::string> FieldMap::String(std::string_view key, bool required) const {
  auto node = Get(key);
  if (!node) {
    if (required) return FieldError(Path(key), "required");
    return std::string();
  }
  if (!node->IsScalar()) return FieldError(Path(key), "must be a string");
  if (required && node->Scalar().empty()) return FieldError(Path(key), "must not be empty");
  return node->Scalar();
}

Result<bool> FieldMap::Bool(std::string_view key, bool fallback) const {
  auto node = Get(key);
  if (!node) return fallback;
  if (node->IsScalar() && !IsQuoted(*node)) {
    const std::string& text = node->Scalar();
    if (text == "true" || text == "True" || text == "TRUE") return true;
    if (text == "false" || text == "False" || text == "FALSE") return false;
  }
  return FieldError(Path(key), "must be true or false");
}

Result<std::vector<YAML::Node>> FieldMap::List(std::string_view key, bool required) const {
  auto node = Get(key);
  std::vector<YAML::Node> items;
  if (!node) {
    if (required) return FieldError(Path(key), "required");
    return items;
  }
  if (!node->IsSequence()) return FieldError(Path(key), "must be a list");
  for (size_t i = 0; i < node->size(); ++i) items.push_back((*node)[i]);
  if (required && items.empty()) return FieldError(Path(key), "must not be empty");
  return items;
}

}  // namespace orrery::manifest_internal
