// The claim set of a dynamic key (DESIGN §3) and its JSON form.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "core/error.hpp"
#include "core/scope.hpp"

namespace dynaseal {

// Time claims are bounded to [0, 9999-12-31T23:59:59Z] so that no arithmetic on them can
// overflow and every one of them has an RFC 3339 form.
inline constexpr std::int64_t kMaxTime = 253402300799;

inline constexpr std::size_t kMaxIssBytes = 256;
inline constexpr std::size_t kMaxSubBytes = 256;
inline constexpr std::size_t kMaxCtxBytes = 1024;
inline constexpr std::size_t kMaxModels = 64;
inline constexpr std::size_t kMaxModelBytes = 256;
inline constexpr std::size_t kMaxAudiences = 16;

struct Claims {
  std::string iss;
  std::vector<std::string> aud;  // one or more server ids
  std::string sub;
  std::string jti;
  std::int64_t iat = 0;
  std::int64_t exp = 0;
  std::optional<std::int64_t> nbf;
  Scope dks;
  std::optional<std::string> ctx;
  std::optional<std::string> cnf_jkt;  // proof-of-possession key thumbprint (reserved)
};

// Reads and checks a payload: types, required members, sizes, the jti alphabet, the scope
// (unknown scope members are rejected: ignoring a restriction we do not understand would fail
// open), exp > iat. Unknown top-level claims are ignored. Error::claims_malformed otherwise.
// Time against a clock, audience and TTL policy are the verifier's business, not this one's.
Result<Claims> read_claims(const boost::json::object& payload);

// The payload JSON of `claims`, members in a fixed order, defaults written out except
// `endpoints` when both are allowed. Does not check the claims; mint_key does.
std::string claims_json(const Claims& claims);

// True for 16-128 characters of [A-Za-z0-9_-].
bool valid_jti(std::string_view jti);

// A backend id as servers register it and backends name themselves: 1-128 characters of
// [A-Za-z0-9._-]. It is a path segment of the admin API, the `iss` of every key the backend
// mints and a part of log lines, so nothing else is accepted. (A key's iss is only bounded by
// kMaxIssBytes; an iss outside this set names no registered backend.)
bool valid_backend_id(std::string_view id);

}  // namespace dynaseal
