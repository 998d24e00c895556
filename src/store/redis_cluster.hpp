// What the Redis use store needs to talk to a Redis Cluster: which slot a key lives in, and
// what a redirection reply asks for (https://redis.io/docs/reference/cluster-spec/).
//
// Slot: CRC16 (XMODEM) of the key, modulo 16384; when the key holds "{...}" with at least one
// byte between its first '{' and the next '}', only those bytes are hashed (the hash tag). Every
// key of one issuer carries the same tag (redis_keys.hpp), so all of them share one slot.
//
// Redirections: "MOVED <slot> <host>:<port>" (the slot lives on that node from now on) and
// "ASK <slot> <host>:<port>" (this one command goes there, after ASKING, during a migration).
// The host may be empty ("MOVED 3999 :6380": the node that answered); an IPv6 address keeps its
// colons, so the port is what follows the last one.
//
//   const std::uint16_t slot = redis_slot(key);
//   if (auto r = parse_redis_redirect(error_text)) reconnect(r->host, r->port);
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dynaseal::store {

inline constexpr std::uint16_t kRedisSlots = 16384;

std::uint16_t redis_slot(std::string_view key);

struct RedisRedirect {
  bool ask = false;  // ASK: this command only; MOVED: the slot's new home
  std::uint16_t slot = 0;
  std::string host;  // empty: the node that sent the redirection
  std::uint16_t port = 0;
};

// The redirection an error reply's text asks for; nothing when it is not one (or malformed).
std::optional<RedisRedirect> parse_redis_redirect(std::string_view error);

}  // namespace dynaseal::store
