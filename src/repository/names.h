// Names of tenants, servables/datasets, aliases and version references.
//
// Rules (each violation is kInvalidArgument naming the rule):
//   tenant  : 1-63 chars, [a-z0-9-], starts with a letter or digit
//   object  : 1-128 chars, [A-Za-z0-9._-], starts with a letter or digit,
//             never contains ".."
//   alias   : like an object name, at most 64 chars, not all digits (those are
//             version numbers) and not "latest" (maintained by the hub)
// A name never contains '/', spaces or path separators, so it is safe to log
// and to use in URLs; it is still never used as a file path.
// Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace orrery {

constexpr size_t kMaxTenantNameLength = 63;
constexpr size_t kMaxObjectNameLength = 128;
constexpr size_t kMaxAliasLength = 64;

Status ValidateTenantName(std::string_view name);
Status ValidateObjectName(std::string_view name);
Status ValidateAliasName(std::string_view name);

// "tenant/name".
struct QualifiedName {
  std::string tenant;
  std::string name;
  std::string ToString() const { return tenant + "/" + name; }
};

// Parses "tenant/name" (both parts validated). When `default_tenant` is
// non-empty, a bare "name" means default_tenant/name.
Result<QualifiedName> ParseQualifiedName(std::string_view text,
                                         std::string_view default_tenant = {});

// A version reference: a number ("3") or an alias ("latest", "prod").
struct VersionRef {
  int64_t number = 0;  // > 0 when numeric
  std::string alias;   // non-empty when an alias
  bool is_number() const { return number > 0; }
  std::string ToString() const { return is_number() ? std::to_string(number) : alias; }
};

// Accepts a positive decimal number (no sign, no leading zeros, fits int64)
// or a valid alias name or "latest".
Result<VersionRef> ParseVersionRef(std::string_view text);

}  // namespace orrery
