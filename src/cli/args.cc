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


}  // namespace orrery::cli
