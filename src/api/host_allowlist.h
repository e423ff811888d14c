// The names a hub answers to in the Host header: a defence against DNS
// rebinding, where a web page on an attacker's domain (resolved to 127.0.0.1
// after the page loaded) sends requests to a loopback hub from the browser.
// Such a request carries the attacker's name in Host, so the transport
// refuses a request whose Host is not on this list (400), before routing.
//
// The list: the address the server listens on and "localhost"; when it
// listens on every address (0.0.0.0 or ::), each address of the host's
// interfaces and the host's name; and the names the operator adds with
// `orrery serve --allowed-host NAME` (repeatable; "*" turns the check off,
// e.g. behind a reverse proxy that checks Host itself). A request without a
// Host field (HTTP/1.0 and raw tools; browsers always send one) is allowed.
//
// Thread-safety: immutable after construction; Allows is const.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace orrery {

class HostAllowList {
 public:
  // For a server bound to `bind_address`, plus the operator's `extra` names.
  static HostAllowList For(const std::string& bind_address, const std::vector<std::string>& extra);

  // Whether a request whose Host field is `host_field` ("name", "name:port",
  // "[v6]:port", "" when absent) may be answered. Names compare
  // case-insensitively, without a trailing dot.
  bool Allows(std::string_view host_field) const;

  // "any" or the names, comma-separated, for the start-up log.
  std::string Describe() const;

 private:
  bool any_ = false;
  std::set<std::string> names_;  // lower case, no port, no brackets
};

}  // namespace orrery
