// The structure checks of model_check.h, on the model as nlohmann::json.
// XGBoost 1.7's JSON schema: {"learner": {"learner_model_param": {...},
// "gradient_booster": {"name": "gbtree" | "dart" | "gblinear", ...}}}; see
// xgboost/src/tree/tree_model.cc (RegTree::LoadModel) and
// src/predictor/cpu_predictor.cc for what is read unchecked.
#include "backends/xgboost/model_check.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <vector>

namespace orrery::xgboost {
namespace {

using nlohmann::json;

constexpr int kMaxJsonDepth = 128;
constexpr int64_t kMaxCategory = 1 << 24;  // XGBoost sizes a bitset by the largest category

Status Error(const std::string& path, const std::string& problem) {
  return Unprocessable(path + ": " + problem);
}

Result<const json*> Member(const json& object, const std::string& path, const char* key) {
  if (!object.is_object()) return Error(path, "not an object");
  auto it = object.find(key);
  if (it == object.end()) return Error(path, std::string("no '") + key + "'");
  return &*it;
}

// XGBoost writes parameters as strings ("num_nodes": "15") and arrays as numbers.
Result<int64_t> Integer(const json& value, const std::string& path) {
  if (value.is_number_integer()) return value.get<int64_t>();
  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    int64_t out = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    if (ec == std::errc() && end == text.data() + text.size()) return out;
  }
  return Error(path, "not an integer");
}

Result<int64_t> IntegerMember(const json& object, const std::string& path, const char* key,
                              int64_t min, int64_t max) {
  ASSIGN_OR_RETURN(const json* value, Member(object, path, key));
  ASSIGN_OR_RETURN(int64_t n, Integer(*value, path + "." + key));
  if (n < min || n > max) {
    return Error(path + "." + key, std::to_string(n) + " is outside [" + std::to_string(min) +
                                       ", " + std::to_string(max) + "]");
  }
  return n;
}

// The integers of array `key`, which must have `size` entries (any size when -1).
Result<std::vector<int64_t>> Integers(const json& object, const std::string& path, const char* key,
                                      int64_t size) {
  ASSIGN_OR_RETURN(const json* array, Member(object, path, key));
  std::string where = path + "." + key;
  if (!array->is_array()) return Error(where, "not an array");
  if (size >= 0 && static_cast<int64_t>(array->size()) != size) {
    return Error(where, "has " + std::to_string(array->size()) + " entries, expected " +
                            std::to_string(size));
  }
  std::vector<int64_t> out;
  out.reserve(array->size());
  for (const json& v : *array) {
    if (!v.is_number_integer()) return Error(where, "holds a value that is not an integer");
    out.push_back(v.get<int64_t>());
  }
  return out;
}

Status CheckArraySize(const json& tree, const std::string& path, const char* key, int64_t n) {
  ASSIGN_OR_RETURN(const json* array, Member(tree, path, key));
  if (!array->is_array() || static_cast<int64_t>(array->size()) != n) {
    return Error(path + "." + key,
                 "must be an array of num_nodes (" + std::to_string(n) + ") entries");
  }
  return Status::Ok();
}

Status CheckCategories(const json& tree, const std::string& path, int64_t n) {
  ASSIGN_OR_RETURN(auto categories, Integers(tree, path, "categories", -1));
  ASSIGN_OR_RETURN(auto nodes, Integers(tree, path, "categories_nodes", -1));
  ASSIGN_OR_RETURN(auto segments, Integers(tree, path, "categories_segments", nodes.size()));
  ASSIGN_OR_RETURN(auto sizes, Integers(tree, path, "categories_sizes", nodes.size()));
  for (int64_t c : categories) {
    if (c < 0 || c > kMaxCategory)
      return Error(path, "category " + std::to_string(c) + " out of range");
  }
  for (size_t k = 0; k < nodes.size(); ++k) {
    bool inside = nodes[k] >= 0 && nodes[k] < n && segments[k] >= 0 && sizes[k] >= 0 &&
                  segments[k] + sizes[k] <= static_cast<int64_t>(categories.size());
    if (!inside)
      return Error(path, "categorical split " + std::to_string(k) + " points outside its arrays");
  }
  return Status::Ok();
}

// Children form a tree rooted at 0 (so prediction ends), within range.
Status CheckNodes(const std::vector<int64_t>& left, const std::vector<int64_t>& right,
                  const std::vector<int64_t>& features, int64_t num_feature,
                  const std::string& path) {
  int64_t n = static_cast<int64_t>(left.size());
  std::vector<char> seen(n, 0);
  std::vector<int64_t> stack = {0};
  while (!stack.empty()) {
    int64_t node = stack.back();
    stack.pop_back();
    if (seen[node]) return Error(path, "node " + std::to_string(node) + " has two parents");
    seen[node] = 1;
    if (left[node] == -1) continue;  // a leaf
    for (int64_t child : {left[node], right[node]}) {
      if (child < 0 || child >= n)
        return Error(path, "child " + std::to_string(child) + " of node " + std::to_string(node) +
                               " is not a node");
      stack.push_back(child);
    }
    if (features[node] < 0 || features[node] >= num_feature) {
      return Error(
          path, "split_indices[" + std::to_string(node) + "] = " + std::to_string(features[node]) +
                    " is not a feature (the model has " + std::to_string(num_feature) + ")");
    }
  }
  return Status::Ok();
}

Status CheckTree(const json& tree, const std::string& path, int64_t num_feature) {
  ASSIGN_OR_RETURN(const json* param, Member(tree, path, "tree_param"));
  ASSIGN_OR_RETURN(int64_t n,
                   IntegerMember(*param, path + ".tree_param", "num_nodes", 1, INT32_MAX - 1));
  if (param->contains("size_leaf_vector")) {
    RETURN_IF_ERROR(IntegerMember(*param, path + ".tree_param", "size_leaf_vector", 0, 0).status());
  }
  for (const char* key :
       {"split_conditions", "default_left", "base_weights", "loss_changes", "sum_hessian"}) {
    RETURN_IF_ERROR(CheckArraySize(tree, path, key, n));
  }
  ASSIGN_OR_RETURN(auto left, Integers(tree, path, "left_children", n));
  ASSIGN_OR_RETURN(auto right, Integers(tree, path, "right_children", n));
  ASSIGN_OR_RETURN(auto parents, Integers(tree, path, "parents", n));
  ASSIGN_OR_RETURN(auto features, Integers(tree, path, "split_indices", n));
  for (int64_t node = 1; node < n; ++node) {
    if (parents[node] < 0 || parents[node] >= n) {
      return Error(path, "parents[" + std::to_string(node) +
                             "] = " + std::to_string(parents[node]) + " is not a node");
    }
  }
  if (tree.contains("split_type")) RETURN_IF_ERROR(CheckArraySize(tree, path, "split_type", n));
  if (tree.contains("categories_nodes")) RETURN_IF_ERROR(CheckCategories(tree, path, n));
  return CheckNodes(left, right, features, num_feature, path);
}

Status CheckTrees(const json& model, const std::string& path, int64_t groups, int64_t num_feature) {
  ASSIGN_OR_RETURN(const json* trees, Member(model, path, "trees"));
  if (!trees->is_array()) return Error(path + ".trees", "not an array");
  int64_t count = static_cast<int64_t>(trees->size());
  ASSIGN_OR_RETURN(const json* param, Member(model, path, "gbtree_model_param"));
  std::string param_path = path + ".gbtree_model_param";
  RETURN_IF_ERROR(IntegerMember(*param, param_path, "num_trees", count, count).status());
  if (param->contains("num_parallel_tree")) {
    RETURN_IF_ERROR(IntegerMember(*param, param_path, "num_parallel_tree", 1, INT32_MAX).status());
  }
  ASSIGN_OR_RETURN(auto groups_of_trees, Integers(model, path, "tree_info", count));
  for (int64_t group : groups_of_trees) {
    if (group < 0 || group >= groups) {
      return Error(path + ".tree_info",
                   "output group " + std::to_string(group) + " of " + std::to_string(groups));
    }
  }
  for (int64_t i = 0; i < count; ++i) {
    RETURN_IF_ERROR(CheckTree((*trees)[i], "tree " + std::to_string(i), num_feature));
  }
  return Status::Ok();
}

Status CheckBooster(const json& booster, int64_t groups, int64_t num_feature) {
  std::string path = "learner.gradient_booster";
  ASSIGN_OR_RETURN(const json* name, Member(booster, path, "name"));
  if (*name == "dart") {
    ASSIGN_OR_RETURN(const json* gbtree, Member(booster, path, "gbtree"));
    ASSIGN_OR_RETURN(const json* model, Member(*gbtree, path + ".gbtree", "model"));
    ASSIGN_OR_RETURN(const json* trees, Member(*model, path + ".gbtree.model", "trees"));
    ASSIGN_OR_RETURN(const json* drops, Member(booster, path, "weight_drop"));
    if (!drops->is_array() || !trees->is_array() || drops->size() != trees->size()) {
      return Error(path + ".weight_drop", "must have one weight per tree");
    }
    return CheckTrees(*model, path + ".gbtree.model", groups, num_feature);
  }
  ASSIGN_OR_RETURN(const json* model, Member(booster, path, "model"));
  if (*name == "gbtree") return CheckTrees(*model, path + ".model", groups, num_feature);
  if (*name == "gblinear") {
    ASSIGN_OR_RETURN(const json* weights, Member(*model, path + ".model", "weights"));
    if (!weights->is_array() ||
        static_cast<int64_t>(weights->size()) != (num_feature + 1) * groups) {
      return Error(path + ".model.weights", "must have (num_feature + 1) x groups entries");
    }
    return Status::Ok();
  }
  return Error(path + ".name", "unknown booster " + name->dump());
}

Status CheckJsonDepth(std::string_view bytes) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < bytes.size(); ++i) {
    char c = bytes[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth) {
        return Unprocessable("JSON nested deeper than " + std::to_string(kMaxJsonDepth) +
                             " levels at byte " + std::to_string(i));
      }
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return Status::Ok();
}

}  // namespace

ModelFormat DetectFormat(const std::string& path, std::string_view bytes) {
  // XGBoost takes what follows the path's last '.', lowercased.
  size_t dot = path.rfind('.');
  std::string ext = dot == std::string::npos ? "" : path.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (ext == "ubj") return ModelFormat::kUbjson;
  if (ext == "json" || (!bytes.empty() && bytes[0] == '{')) return ModelFormat::kJson;
  return ModelFormat::kLegacyBinary;
}

Status CheckModelBytes(ModelFormat format, std::string_view bytes) {
  if (format == ModelFormat::kLegacyBinary) return Status::Ok();
  RETURN_IF_ERROR(format == ModelFormat::kUbjson ? CheckUbjsonBytes(bytes) : CheckJsonDepth(bytes));
  json model;
  try {
    model = format == ModelFormat::kUbjson ? json::from_ubjson(bytes, /*strict=*/false)
                                           : json::parse(bytes);
  } catch (const json::exception& e) {
    return Unprocessable(std::string("not a valid model: ") + e.what());
  }
  return CheckModelJson(model);
}

Status CheckModelJson(const nlohmann::json& model) {
  ASSIGN_OR_RETURN(const json* learner, Member(model, "model", "learner"));
  ASSIGN_OR_RETURN(const json* param, Member(*learner, "learner", "learner_model_param"));
  std::string path = "learner.learner_model_param";
  ASSIGN_OR_RETURN(int64_t num_feature, IntegerMember(*param, path, "num_feature", 0, INT32_MAX));
  int64_t groups = 1;
  for (const char* key : {"num_class", "num_target"}) {
    if (!param->contains(key)) continue;
    ASSIGN_OR_RETURN(int64_t n, IntegerMember(*param, path, key, 0, 1 << 20));
    groups = std::max(groups, n);
  }
  ASSIGN_OR_RETURN(const json* booster, Member(*learner, "learner", "gradient_booster"));
  return CheckBooster(*booster, groups, num_feature);
}

}  // namespace orrery::xgboost
