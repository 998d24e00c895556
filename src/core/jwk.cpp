#include "core/jwk.hpp"

#include <sodium.h>

#include "core/base64url.hpp"
#include "core/json.hpp"

namespace dynaseal {
namespace {

namespace json = boost::json;

constexpr JsonLimits kJwkLimits{.max_bytes = 64 * 1024, .max_depth = 4};
constexpr std::size_t kMaxJwksKeys = 64;

Result<std::array<std::uint8_t, 32>> decode_32(std::string_view text) {
  std::array<std::uint8_t, 32> out{};
  if (text.size() != base64url_encoded_size(32)) return Unexpected(Error::key_invalid);
  if (!base64url_decode_into(text, out)) return Unexpected(Error::key_invalid);
  return out;
}

// Checks every member we know and refuses members whose meaning would change how the key is
// used (key_ops, x5c, ...): a key is only ever used to verify Ed25519 signatures.
Result<PublicJwk> read_jwk(const json::object& jwk, bool allow_d) {
  for (const auto& kv : jwk) {
    const std::string_view name(kv.key().data(), kv.key().size());
    const bool known = name == "kty" || name == "crv" || name == "x" || name == "kid" ||
                       name == "alg" || name == "use" || (allow_d && name == "d");
    if (!known) return Unexpected(Error::key_invalid);
    if (!kv.value().is_string()) return Unexpected(Error::key_invalid);
  }
  if (string_member(jwk, "kty") != "OKP") return Unexpected(Error::key_invalid);
  if (string_member(jwk, "crv") != "Ed25519") return Unexpected(Error::key_invalid);
  if (auto alg = string_member(jwk, "alg"); alg && *alg != "EdDSA" && *alg != "Ed25519") {
    return Unexpected(Error::key_invalid);
  }
  if (auto use = string_member(jwk, "use"); use && *use != "sig") {
    return Unexpected(Error::key_invalid);
  }
  auto x_text = string_member(jwk, "x");
  if (!x_text) return Unexpected(Error::key_invalid);
  auto x = decode_32(*x_text);
  if (!x) return Unexpected(x.error());
  PublicJwk out = make_public_jwk(*x);
  if (auto kid = string_member(jwk, "kid"); kid && *kid != out.kid) {
    return Unexpected(Error::key_invalid);
  }
  return out;
}

}  // namespace

std::string jwk_thumbprint(const PublicKey& key) {
  // RFC 7638 §3: the required members only, sorted, no whitespace.
  std::string canonical = R"({"crv":"Ed25519","kty":"OKP","x":")";
  base64url_append(canonical, key);
  canonical += "\"}";
  return base64url_encode(sha256(as_bytes(canonical)));
}

PublicJwk make_public_jwk(const PublicKey& key) { return {key, jwk_thumbprint(key)}; }

std::string public_jwk_json(const PublicKey& key) {
  std::string out = R"({"crv":"Ed25519","kid":")" + jwk_thumbprint(key) + R"(","kty":"OKP","x":")";
  base64url_append(out, key);
  out += "\"}";
  return out;
}

std::string private_jwk_json(const SigningKey& key) {
  Seed seed = key.seed();
  std::string out = R"({"crv":"Ed25519","d":")";
  base64url_append(out, seed);
  sodium_memzero(seed.data(), seed.size());
  out += R"(","kid":")" + jwk_thumbprint(key.public_key()) + R"(","kty":"OKP","x":")";
  base64url_append(out, key.public_key());
  out += "\"}";
  return out;
}

Result<PublicJwk> parse_public_jwk(const json::object& jwk) { return read_jwk(jwk, false); }

Result<std::vector<PublicJwk>> parse_jwks(std::string_view text) {
  auto doc = parse_json(text, kJwkLimits);
  if (!doc || !doc->is_object()) return Unexpected(Error::key_invalid);
  const json::object& root = doc->get_object();
  std::vector<PublicJwk> keys;
  if (!root.contains("keys")) {
    auto one = parse_public_jwk(root);
    if (!one) return Unexpected(one.error());
    keys.push_back(std::move(*one));
    return keys;
  }
  if (root.size() != 1) return Unexpected(Error::key_invalid);
  const json::value& list = root.at("keys");
  if (!list.is_array() || list.get_array().empty() || list.get_array().size() > kMaxJwksKeys) {
    return Unexpected(Error::key_invalid);
  }
  for (const json::value& entry : list.get_array()) {
    if (!entry.is_object()) return Unexpected(Error::key_invalid);
    auto key = parse_public_jwk(entry.get_object());
    if (!key) return Unexpected(key.error());
    for (const PublicJwk& seen : keys) {
      if (seen.kid == key->kid) return Unexpected(Error::key_invalid);
    }
    keys.push_back(std::move(*key));
  }
  return keys;
}

Result<SigningKey> parse_private_jwk(std::string_view text) {
  auto doc = parse_json(text, kJwkLimits);
  if (!doc || !doc->is_object()) return Unexpected(Error::key_invalid);
  const json::object& jwk = doc->get_object();
  auto pub = read_jwk(jwk, true);
  if (!pub) return Unexpected(pub.error());
  auto d_text = string_member(jwk, "d");
  if (!d_text) return Unexpected(Error::key_invalid);
  auto d = decode_32(*d_text);
  if (!d) return Unexpected(d.error());
  SigningKey key = SigningKey::from_seed(*d);
  sodium_memzero(d->data(), d->size());
  // A JWK whose "x" does not belong to its "d" would sign under someone else's kid.
  if (key.public_key() != pub->key) return Unexpected(Error::key_invalid);
  return key;
}

std::string jwks_json(const std::vector<PublicJwk>& keys) {
  std::string out = R"({"keys":[)";
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i) out.push_back(',');
    out += public_jwk_json(keys[i].key);
  }
  out += "]}";
  return out;
}

}  // namespace dynaseal
