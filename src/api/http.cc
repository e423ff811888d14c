#include "api/http.h"

namespace orrery {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) {
        return InvalidArgument("malformed percent-encoding in URL");
      }
      int high = HexValue(text[i + 1]);
      int low = HexValue(text[i + 2]);
      if (high < 0 || low < 0) return InvalidArgument("malformed percent-encoding in URL");
      out += static_cast<char>(high * 16 + low);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

const std::string& RouteParams::Get(std::string_view name) const {
  static const std::string kNone;
  for (const auto& [key, value] : values_) {
    if (key == name) return value;
  }
  return kNone;
}

bool RouteParams::Has(std::string_view name) const {
  for (const auto& [key, value] : values_) {
    if (key == name) return true;
  }
  return false;
}

Result<std::vector<std::string>> SplitPath(std::string_view path) {
  std::vector<std::string> segments;
  size_t start = path.starts_with('/') ? 1 : 0;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (end == start) {  // "//": collapsing it would answer for another path
      return InvalidArgument("the request path has an empty segment ('//')");
    }
    ASSIGN_OR_RETURN(std::string segment, PercentDecode(path.substr(start, end - start), false));
    segments.push_back(std::move(segment));
    start = end + 1;
  }
  return segments;
}

Result<std::map<std::string, std::string>> ParseQuery(std::string_view query) {
  std::map<std::string, std::string> values;
  size_t start = 0;
  while (start < query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    std::string_view pair = query.substr(start, end - start);
    if (!pair.empty()) {
      size_t equals = pair.find('=');
      std::string_view key = pair.substr(0, equals);
      std::string_view value = equals == std::string_view::npos ? "" : pair.substr(equals + 1);
      ASSIGN_OR_RETURN(std::string k, PercentDecode(key, true));
      ASSIGN_OR_RETURN(std::string v, PercentDecode(value, true));
      values[k] = v;
    }
    start = end + 1;
  }
  return values;
}

}  // namespace orrery
