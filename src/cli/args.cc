#include "cli/args.h"

#include <charconv>
#include <limits>

namespace orrery::cli {

std::string ObjectRef::ToString() const {
  std::string text = tenant + "/" + name;
  if (version) text += ":" + version->ToString();
  return text;
}

Result<ObjectRef> ParseObjectRef(std::string_view text, bool allow_version) {
  ObjectRef ref;
  std::string_view name_part = text;
  size_t colon = text.rfind(':');
  if (colon != std::string_view::npos) {
    if (!allow_version) return InvalidArgument("'" + std::string(text) + "': no version expected");
    ASSIGN_OR_RETURN(ref.version, ParseVersionRef(text.substr(colon + 1)));
    name_part = text.substr(0, colon);
  }
  if (name_part.find('/') == std::string_view::npos) {
    RETURN_IF_ERROR(ValidateObjectName(name_part));
    ref.name = std::string(name_part);
    return ref;
  }
  ASSIGN_OR_RETURN(QualifiedName qualified, ParseQualifiedName(name_part));
  ref.tenant = std::move(qualified.tenant);
  ref.name = std::move(qualified.name);
  return ref;
}

namespace {

// "servable" or "dataset", or empty when `kind` is neither (in either number).
std::string KindStem(std::string_view kind) {
  if (kind == "servable" || kind == "servables") return "servable";
  if (kind == "dataset" || kind == "datasets") return "dataset";
  return "";
}

// Seconds per unit suffix; 0 for an unknown suffix.
int64_t UnitSeconds(char suffix) {
  switch (suffix) {
    case 's': return 1;
    case 'm': return 60;
    case 'h': return 3600;
    case 'd': return 86400;
    default: return 0;
  }
}

}  // namespace

Result<std::string> SingularKind(std::string_view kind) {
  if (kind.empty()) return std::string();
  std::string stem = KindStem(kind);
  if (stem.empty()) {
    return InvalidArgument("unknown kind '" + std::string(kind) + "' (servable or dataset)");
  }
  return stem;
}

Result<std::string> PluralKind(std::string_view kind) {
  ASSIGN_OR_RETURN(std::string singular, SingularKind(kind));
  return singular.empty() ? singular : singular + "s";
}

Result<int64_t> ParseDuration(std::string_view text) {
  std::string_view digits = text;
  int64_t unit = 1;
  if (!text.empty() && (text.back() < '0' || text.back() > '9')) {
    unit = UnitSeconds(text.back());
    digits.remove_suffix(1);
  }
  int64_t count = 0;
  auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), count);
  if (unit == 0 || digits.empty() || error != std::errc() || end != digits.data() + digits.size() ||
      count <= 0 || count > std::numeric_limits<int64_t>::max() / unit) {
    return InvalidArgument("bad duration '" + std::string(text) +
                           "' (a positive number of seconds, or e.g. 90m, 12h, 30d)");
  }
  return count * unit;
}

}  // namespace orrery::cli
