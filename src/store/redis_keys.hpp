// The names of the Redis use store's keys (docs/server.md, "Redis key layout").
//
//   <prefix>:{<tag>}:k:<jti>   a key's state: a hash (uses, reserved, spent, revoked, deadline)
//   <prefix>:{<tag>}:s:<sub>   a subject's revocation: a hash (at, until)
//   <prefix>:{<tag>}:j:        the issuer's journal: a hash, "<jti>.<use>" -> "<unix s> <event>"
//                              (store/async_use_store.hpp; consume writes, settle removes)
//
// <tag> is base64url(iss) without padding, or "~" for an empty iss; <jti> and <sub> are the raw
// bytes. Every key an operation touches (consume: the key and its subject) carries the same
// Redis Cluster hash tag, so each script runs on one node. The names are unambiguous whatever
// the bytes of iss, jti and sub ('{', '}', ':', NUL...): the prefix has no '{', the tag (base64url
// or "~") has no '}', and k/s with its ':' ends at a fixed place, so distinct (iss, kind, name)
// give distinct keys and one issuer's names can never reach another's keys. The journal's field
// names are webhook-ids: the use, in decimal, follows the last '.'.
//
// <prefix> (default "dks") separates deployments or tests that share one Redis database: 1 to
// 64 characters of [A-Za-z0-9_.-].
#pragma once

#include <string>
#include <string_view>

namespace dynaseal::store {

bool valid_redis_key_prefix(std::string_view prefix);

// The hash tag's content for an issuer: base64url(iss), or "~" when iss is empty (an empty tag
// would make Redis Cluster hash whole key names, splitting an operation's keys across nodes).
std::string redis_key_tag(std::string_view iss);

std::string redis_jti_key(std::string_view prefix, std::string_view iss, std::string_view jti);
std::string redis_sub_key(std::string_view prefix, std::string_view iss, std::string_view sub);
std::string redis_journal_key(std::string_view prefix, std::string_view iss);

}  // namespace dynaseal::store
