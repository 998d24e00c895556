// A fixed issuer ("acme") with a deterministic key, registered for the server "llm-1", and a
// way to sign arbitrary header and payload text (for hostile keys).
#pragma once

#include <string>
#include <string_view>

#include "core/base64url.hpp"
#include "core/dynamic_key.hpp"

namespace dynaseal::testing {

inline constexpr std::int64_t kIat = 1700000000;  // 2023-11-14T22:13:20Z
inline constexpr std::string_view kServer = "llm-1";

inline SigningKey seeded_key(std::uint8_t fill) {
  Seed seed;
  seed.fill(fill);
  return SigningKey::from_seed(seed);
}

// header.payload.signature over exactly these bytes, whatever they say.
inline std::string craft(std::string_view header, std::string_view payload, const SigningKey& key) {
  std::string token = base64url_encode(header) + "." + base64url_encode(payload);
  token += "." + base64url_encode(key.sign(as_bytes(token)));
  return token;
}

// Our header for `key`, as mint_key writes it.
inline std::string header_for(const SigningKey& key) {
  return R"({"alg":"EdDSA","kid":")" + jwk_thumbprint(key.public_key()) + R"(","typ":"dk+jwt"})";
}

struct KeyFixture {
  SigningKey key = seeded_key(1);
  IssuerRegistry registry;

  KeyFixture() { registry.set_issuer("acme", {make_public_jwk(key.public_key())}); }

  // iss acme, aud llm-1, valid from kIat for 300 s, model "demo", 256 tokens.
  static Claims claims() {
    Claims c;
    c.iss = "acme";
    c.aud = {std::string(kServer)};
    c.sub = "user-42";
    c.jti = "AAAAAAAAAAAAAAAAAAAAAA";
    c.iat = kIat;
    c.exp = kIat + 300;
    c.dks.models = {"demo"};
    c.dks.max_tokens = 256;
    return c;
  }

  std::string mint(const Claims& c = claims()) const { return *mint_key(c, key); }

  Result<VerifiedKey> verify(std::string_view token, std::int64_t now = kIat + 10,
                             const VerifyPolicy& policy = {}) const {
    return verify_key(token, registry, kServer, now, policy);
  }

  // The payload of claims() as JSON text, for tests that edit it by hand.
  static std::string payload() { return claims_json(claims()); }
};

}  // namespace dynaseal::testing
