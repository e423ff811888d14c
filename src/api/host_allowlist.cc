#include "api/host_allowlist.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <unistd.h>

#include "core/text.h"

namespace orrery {
namespace {

// Lower case, without a trailing dot ("Example.ORG." -> "example.org").
std::string Normalized(std::string_view name) {
  std::string out = AsciiLowercase(name);
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

// The host part of a Host field value: "[::1]:7070" -> "::1",
// "example.org:7070" -> "example.org", "example.org" -> itself.
std::string_view HostPart(std::string_view field) {
  if (field.starts_with('[')) {
    size_t close = field.find(']');
    return close == std::string_view::npos ? field : field.substr(1, close - 1);
  }
  size_t colon = field.find(':');
  return colon == std::string_view::npos ? field : field.substr(0, colon);
}

bool IsWildcard(const std::string& address) {
  return address.empty() || address == "0.0.0.0" || address == "::";
}

// Every address of the host's interfaces, as text.
std::vector<std::string> InterfaceAddresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* it = list; it != nullptr; it = it->ifa_next) {
    if (it->ifa_addr == nullptr) continue;
    char text[INET6_ADDRSTRLEN] = {};
    if (it->ifa_addr->sa_family == AF_INET) {
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(it->ifa_addr)->sin_addr, text,
                  sizeof text);
    } else if (it->ifa_addr->sa_family == AF_INET6) {
      ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(it->ifa_addr)->sin6_addr, text,
                  sizeof text);
    }
    if (text[0] != '\0') out.emplace_back(text);
  }
  ::freeifaddrs(list);
  return out;
}

}  // namespace

HostAllowList HostAllowList::For(const std::string& bind_address,
                                 const std::vector<std::string>& extra) {
  HostAllowList list;
  list.names_.insert("localhost");
  if (IsWildcard(bind_address)) {
    for (const std::string& address : InterfaceAddresses()) list.names_.insert(Normalized(address));
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) == 0 && name[0] != '\0') {
      list.names_.insert(Normalized(name));
    }
  } else {
    list.names_.insert(Normalized(bind_address));
  }
  for (const std::string& name : extra) {
    if (name == "*") list.any_ = true;
    list.names_.insert(Normalized(HostPart(name)));
  }
  return list;
}

bool HostAllowList::Allows(std::string_view host_field) const {
  if (any_ || host_field.empty()) return true;
  return names_.count(Normalized(HostPart(host_field))) > 0;
}

std::string HostAllowList::Describe() const {
  if (any_) return "any";
  std::string out;
  for (const std::string& name : names_) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace orrery
