// Checks of an XGBoost model before libxgboost loads or runs it.
//
// XGBoost 1.7 trusts its model files. Its UBJSON reader does no bounds
// checks (a truncated .ubj makes it read past the buffer, or allocate what a
// corrupt length claims); its JSON reader recurses once per nesting level;
// RegTree::LoadModel indexes nodes by the stored parent ids, and prediction
// follows stored child ids, feature indices and tree groups without range
// checks. A bit-flipped file therefore crashes the process. These checks
// walk the bytes as XGBoost's readers will and then check the model's
// structure, so that what passes them loads and predicts in bounds:
// - every tree array (left/right_children, parents, split_indices, ...) has
//   num_nodes entries; child ids form a tree rooted at node 0; parent ids
//   are node ids; split features are < num_feature; categorical splits
//   point inside `categories`;
// - tree_info (the output group of each tree) is < the number of groups;
//   num_trees, dart's weight_drop and gblinear's weights have their sizes.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace orrery::xgboost {

// The reader XGBoosterLoadModel picks for `path`: UBJSON for a ".ubj"
// extension, JSON text for ".json" or content that starts with '{', else
// the legacy binary format.
enum class ModelFormat { kUbjson, kJson, kLegacyBinary };
ModelFormat DetectFormat(const std::string& path, std::string_view bytes);

// Checks UBJSON and JSON files (bytes, then structure); the legacy binary
// format cannot be read here and passes (check it after loading with
// CheckModelJson on the booster saved as UBJSON). kUnprocessable naming the
// problem, e.g. "malformed UBJSON at byte 96: string of 16 bytes runs past
// the end of the file", "tree 3: left_children[5] = 99 is not a node".
Status CheckModelBytes(ModelFormat format, std::string_view bytes);

// The structure checks above on a parsed model ({"learner": ..., "version": ...}).
Status CheckModelJson(const nlohmann::json& model);

// The bounds and nesting checks of a UBJSON document alone.
Status CheckUbjsonBytes(std::string_view bytes);

}  // namespace orrery::xgboost
