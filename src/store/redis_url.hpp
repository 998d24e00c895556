// The address of a Redis server, as `store = "redis://..."` in server.toml names it.
//
// Accepted, and nothing else: redis://[:password@]host[:port][/db]
//   host      a DNS name (letters, digits, '-', '.'), an IPv4 address or an [IPv6] address
//   port      1-65535, default 6379
//   db        the database SELECTed on connect, 0-2147483647, default 0 ("/" alone is 0 too)
//   password  sent with AUTH on connect; percent-encoded where it holds '@', ':', '/' or '%'
// Refused with a reason: other schemes (rediss:// TLS, unix sockets), a user name (ACL users),
// an empty password, query strings and fragments, bad ports and databases, stray characters.
//
//   auto url = parse_redis_url("redis://:s3cret@10.0.0.7:6380/2");
//   if (!url) throw ConfigError("store: " + url.error());
//   url->display();   // "redis://:***@10.0.0.7:6380/2": never the password
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

namespace dynaseal::store {

struct RedisUrl {
  std::string host;  // as written; an IPv6 address without its brackets
  std::uint16_t port = 6379;
  std::optional<std::string> password;  // decoded
  std::int64_t db = 0;

  // The URL for logs and errors, with the password masked.
  std::string display() const;
  bool operator==(const RedisUrl&) const = default;
};

// The URL, or why it is refused (one line, never containing the password).
tl::expected<RedisUrl, std::string> parse_redis_url(std::string_view text);

}  // namespace dynaseal::store
