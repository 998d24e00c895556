// What a backend registration may name: its id (valid_backend_id, core/claims.hpp) and its
// callback URL. The admin API and the
// configuration both apply these, so a registration refused one way is refused the other.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/claims.hpp"  // valid_backend_id

namespace dynaseal::server {

// Why `url` cannot receive usage callbacks, or nothing when it can: http:// or https:// with a
// host and an optional port and path (no credentials, query or fragment); not a link-local
// address (169.254.0.0/16, fe80::/10) nor a cloud metadata name (metadata.google.internal,
// metadata, instance-data) unless `allow_link_local` — the server would post signed requests
// wherever an admin pointed it, and the metadata service is the classic target of such a
// request. Loopback and private addresses are allowed (a backend on the same host or network).
// Only literal addresses and those names are checked: a DNS name that resolves to a
// link-local address is the operator's to avoid (docs/server.md).
std::optional<std::string> callback_url_problem(std::string_view url, bool allow_link_local);

}  // namespace dynaseal::server
