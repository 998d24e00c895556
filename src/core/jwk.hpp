// Ed25519 keys as JSON Web Keys (RFC 8037 "OKP") identified by their RFC 7638 thumbprints.
//
// A key id (`kid`) is always the thumbprint, so a key's id cannot be chosen to collide with
// another key's. Parsing is strict: kty "OKP", crv "Ed25519", canonical 32-byte "x"; optional
// "kid" must equal the thumbprint; optional "alg" must be EdDSA or Ed25519 and "use" "sig".
// Public-key readers refuse a JWK carrying "d": private material never belongs in a JWKS.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "core/crypto.hpp"
#include "core/error.hpp"

namespace dynaseal {

struct PublicJwk {
  PublicKey key;
  std::string kid;  // RFC 7638 thumbprint of key
};

// The RFC 7638 thumbprint: base64url(SHA-256('{"crv":"Ed25519","kty":"OKP","x":"<x>"}')).
std::string jwk_thumbprint(const PublicKey& key);

PublicJwk make_public_jwk(const PublicKey& key);

// {"crv":"Ed25519","kid":...,"kty":"OKP","x":...}
std::string public_jwk_json(const PublicKey& key);
// The public members plus "d"; the caller must keep the result secret.
std::string private_jwk_json(const SigningKey& key);

// One public JWK (an object without "d"), or Error::key_invalid.
Result<PublicJwk> parse_public_jwk(const boost::json::object& jwk);

// Reads either one public JWK or a JWKS ({"keys":[...]}, at least one key). Every key must be
// an Ed25519 public JWK; any other key is an error, not skipped, so that a misconfigured file
// is noticed at start rather than as unexplained kid_unknown rejections.
Result<std::vector<PublicJwk>> parse_jwks(std::string_view text);

// A private JWK with "d" (and "x", which must match "d"), or Error::key_invalid.
Result<SigningKey> parse_private_jwk(std::string_view text);

// {"keys":[<public jwk>, ...]}
std::string jwks_json(const std::vector<PublicJwk>& keys);

}  // namespace dynaseal
