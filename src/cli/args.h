// Parsing of command-line values: object references, kinds and durations.
//
// These are pure functions, checked before any request is sent so that a
// typo is reported as a usage error (exit status 2) instead of a 400.
// Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "repository/names.h"

namespace orrery::cli {

// "tenant/name[:version]" or "name[:version]" as typed by the user.
struct ObjectRef {
  std::string tenant;  // empty for a bare name: the token's tenant
  std::string name;
  std::optional<VersionRef> version;  // set when ":version" was given

  // "tenant/name" or "tenant/name:version"; `tenant` must be filled in.
  std::string ToString() const;
};

// Splits at the last ':' and validates each part with the rules of
// repository/names.h. `allow_version` false refuses a ":version" suffix.
Result<ObjectRef> ParseObjectRef(std::string_view text, bool allow_version);

// The API's collection name ("servables" / "datasets") for any of
// "servable", "servables", "dataset", "datasets". Empty in, empty out.
Result<std::string> PluralKind(std::string_view kind);
// "servable" / "dataset" for the same inputs.
Result<std::string> SingularKind(std::string_view kind);


}  // namespace orrery::cli
