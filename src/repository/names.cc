// Name validation. Names end up in URLs, log lines, SQL parameters and
// search indexes, so the character sets are deliberately small; none of them
// is ever used to build a file path (blobs are content-addressed).
#include "repository/names.h"

#include <charconv>

namespace orrery {
namespace {

bool IsLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
bool IsAlnum(char c) {
  return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z');
}
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

bool AllDigits(std::string_view text) {
  for (char c : text) {
    if (!IsDigit(c)) return false;
  }
  return !text.empty();
}

// Shared by object and alias names: [A-Za-z0-9._-], first char alphanumeric,
// no "..". `what` names the kind of name in messages.
Status ValidateDottedName(std::string_view name, size_t max_length, const char* what) {
  if (name.empty()) return InvalidArgument(std::string(what) + " name must not be empty");
  if (name.size() > max_length) {
    return InvalidArgument(std::string(what) + " name is longer than " +
                           std::to_string(max_length) + " characters");
  }
  if (!IsAlnum(name.front())) {
    return InvalidArgument(std::string(what) + " name must start with a letter or digit");
  }
  for (char c : name) {
    if (!IsAlnum(c) && c != '.' && c != '_' && c != '-') {
      return InvalidArgument(std::string(what) +
                             " name may only contain letters, digits, '.', '_' and '-'");
    }
  }
  if (name.find("..") != std::string_view::npos) {
    return InvalidArgument(std::string(what) + " name must not contain '..'");
  }
  return Status::Ok();
}

}  // namespace

Status ValidateTenantName(std::string_view name) {
  if (name.empty()) return InvalidArgument("tenant name must not be empty");
  if (name.size() > kMaxTenantNameLength) {
    return InvalidArgument("tenant name is longer than " + std::to_string(kMaxTenantNameLength) +
                           " characters");
  }
  if (!IsLowerAlnum(name.front())) {
    return InvalidArgument("tenant name must start with a lowercase letter or digit");
  }
  for (char c : name) {
    if (!IsLowerAlnum(c) && c != '-') {
      return InvalidArgument("tenant name may only contain lowercase letters, digits and '-'");
    }
  }
  return Status::Ok();
}

Status ValidateObjectName(std::string_view name) {
  return ValidateDottedName(name, kMaxObjectNameLength, "object");
}

Status ValidateAliasName(std::string_view name) {
  RETURN_IF_ERROR(ValidateDottedName(name, kMaxAliasLength, "alias"));
  // All-digit aliases would be ambiguous with version numbers in URLs.
  if (AllDigits(name)) return InvalidArgument("alias name must not be all digits");
  if (name == "latest") return InvalidArgument("alias 'latest' is maintained by the hub");
  return Status::Ok();
}

Result<QualifiedName> ParseQualifiedName(std::string_view text, std::string_view default_tenant) {
  QualifiedName result;
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    if (default_tenant.empty()) {
      return InvalidArgument("expected 'tenant/name'");
    }
    result.tenant = std::string(default_tenant);
    result.name = std::string(text);
  } else {
    result.tenant = std::string(text.substr(0, slash));
    result.name = std::string(text.substr(slash + 1));
  }
  // A second '/' ends up in the name part and is refused by its character set.
  RETURN_IF_ERROR(ValidateTenantName(result.tenant));
  RETURN_IF_ERROR(ValidateObjectName(result.name));
  return result;
}

Result<VersionRef> ParseVersionRef(std::string_view text) {
  VersionRef ref;
  if (AllDigits(text)) {
    // Leading zeros are refused so that every version has one spelling.
    if (text.front() == '0') {
      return InvalidArgument("version number must be positive, without leading zeros");
    }
    int64_t number = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (error != std::errc() || end != text.data() + text.size()) {
      return InvalidArgument("version number is too large");
    }
    ref.number = number;
    return ref;
  }
  if (text != "latest") RETURN_IF_ERROR(ValidateAliasName(text));
  ref.alias = std::string(text);
  return ref;
}

}  // namespace orrery
