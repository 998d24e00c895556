// Dynamic key v1 (DESIGN §3): mint and verify the Ed25519-signed JWT that scopes one user's
// access to the LLM server.
//
// Verification is a pure function of the token, the issuer registry, the server id, the clock
// and the policy, and checks in the order of DESIGN §3 so that garbage costs little:
//   size -> shape and base64url -> header -> issuer and kid known -> signature -> claims ->
//   audience -> TTL -> time.
// Consuming a use and the scope check against the request come after, outside this function.
//
//   IssuerRegistry registry;  // iss -> public keys
//   auto claims = verify_key(token, registry, "llm-1", unix_now(), VerifyPolicy{});
//   if (!claims) reject(claims.error());   // 401 codes of DESIGN §4
//
//   auto token = mint_key(claims, signing_key);  // the backend side
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "core/claims.hpp"
#include "core/crypto.hpp"
#include "core/issuer_registry.hpp"

namespace dynaseal {

inline constexpr std::size_t kMaxTokenBytes = 8 * 1024;
inline constexpr std::string_view kKeyType = "dk+jwt";

struct VerifyPolicy {
  std::int64_t max_ttl = 3600;  // seconds; exp - iat above this is ttl_too_long
  std::int64_t leeway = 30;     // seconds of clock skew tolerated on exp, nbf and iat
  // Keys bound to a device key (cnf) need proof of possession, which callers must enforce
  // themselves; until they say they do, such keys are refused (claims_malformed).
  bool accept_cnf = false;
};

// A verified key: its claims and the id of the key that signed it.
struct VerifiedKey {
  Claims claims;
  std::string kid;
};

// Verifies `token` for the server `server_id` at unix time `now`. Returns the claims or the
// precise 401 code: token_too_large, token_malformed (shape, base64url, header), alg_not_allowed,
// claims_malformed, issuer_unknown, kid_unknown, signature_invalid, audience_mismatch,
// ttl_too_long, token_expired, token_not_yet_valid. Never throws on any input.
Result<VerifiedKey> verify_key(std::string_view token, const IssuerRegistry& registry,
                               std::string_view server_id, std::int64_t now,
                               const VerifyPolicy& policy = {});

// Signs `claims` with `key` (header kid = the key's thumbprint). Refuses claims that a
// verifier would reject as malformed (Error::claims_malformed), so a backend cannot mint junk.
Result<std::string> mint_key(const Claims& claims, const SigningKey& key);

// The decoded header and payload, without any verification (for `dynaseal key inspect`).
// Still strict: the token must have our shape and both parts must be strict JSON objects.
struct DecodedKey {
  boost::json::object header;
  boost::json::object payload;
};
Result<DecodedKey> decode_key_unverified(std::string_view token);

// 22 characters of base64url from 128 random bits: a fresh jti.
std::string random_jti();

}  // namespace dynaseal
