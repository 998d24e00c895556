#include "core/dynamic_key.hpp"

#include <array>

#include <boost/json/monotonic_resource.hpp>

#include "core/base64url.hpp"
#include "core/json.hpp"

namespace dynaseal {
namespace {

namespace json = boost::json;

// Our header is about 110 characters; anything much longer is not ours (a huge kid, extra
// members) and is refused before any decoding work.
constexpr std::size_t kMaxHeaderChars = 512;
constexpr std::size_t kSignatureChars = base64url_encoded_size(64);
constexpr JsonLimits kHeaderLimits{.max_bytes = base64url_decoded_size(kMaxHeaderChars),
                                   .max_depth = 1};
// claims -> dks -> models -> string is depth 3; one more level leaves room for nothing else.
constexpr JsonLimits kPayloadLimits{.max_bytes = kMaxTokenBytes, .max_depth = 4};

struct Segments {
  std::string_view header;
  std::string_view payload;
  std::string_view signature;
  std::string_view signing_input;  // header.payload: the bytes the signature covers
};

Result<Segments> split(std::string_view token) {
  if (token.size() > kMaxTokenBytes) return Unexpected(Error::token_too_large);
  const std::size_t d1 = token.find('.');
  if (d1 == std::string_view::npos) return Unexpected(Error::token_malformed);
  const std::size_t d2 = token.find('.', d1 + 1);
  if (d2 == std::string_view::npos) return Unexpected(Error::token_malformed);
  if (token.find('.', d2 + 1) != std::string_view::npos) return Unexpected(Error::token_malformed);
  Segments s{token.substr(0, d1), token.substr(d1 + 1, d2 - d1 - 1), token.substr(d2 + 1),
             token.substr(0, d2)};
  if (s.header.empty() || s.payload.empty() || s.header.size() > kMaxHeaderChars) {
    return Unexpected(Error::token_malformed);
  }
  return s;
}

// Decodes one base64url segment (not canonical: token_malformed) and strictly parses it as a
// JSON object (not one: `on_error`, as the caller knows whether this is header or claims).
Result<json::object> decode_object(std::string_view segment, const JsonLimits& limits,
                                   json::storage_ptr storage, Error on_error) {
  std::array<std::uint8_t, base64url_decoded_size(kMaxTokenBytes)> bytes;
  auto n = base64url_decode_into(segment, bytes);
  if (!n) return Unexpected(Error::token_malformed);
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), *n);
  auto value = parse_json(text, limits, std::move(storage));
  if (!value || !value->is_object()) return Unexpected(on_error);
  return std::move(value->get_object());
}

// Exactly {"alg","kid","typ"}. alg is checked first so that a token announcing another
// algorithm ("none", "HS256", any case variant) is named for what it is, whatever else is
// wrong with it. The algorithm used to verify is never taken from here: every registered key is
// an Ed25519 key, and an Ed25519 key verifies with Ed25519 only.
Result<std::string_view> check_header(const json::object& header) {
  const json::value* alg = member(header, "alg");
  if (alg == nullptr || !alg->is_string()) return Unexpected(Error::token_malformed);
  const std::string_view alg_name = as_view(alg->get_string());
  if (alg_name != "EdDSA" && alg_name != "Ed25519") return Unexpected(Error::alg_not_allowed);
  // Anything else — crit, jku, jwk, x5u, x5c, b64, zip, cty — would ask the verifier to fetch
  // keys, trust embedded keys, or change how the payload is read. None of it is accepted.
  if (header.size() != 3) return Unexpected(Error::token_malformed);
  auto typ = string_member(header, "typ");
  auto kid = string_member(header, "kid");
  if (!typ || *typ != kKeyType || !kid || kid->empty()) return Unexpected(Error::token_malformed);
  return *kid;
}

}  // namespace

Result<VerifiedKey> verify_key(std::string_view token, const IssuerRegistry& registry,
                               std::string_view server_id, std::int64_t now,
                               const VerifyPolicy& policy) {
  auto seg = split(token);
  if (!seg) return Unexpected(seg.error());

  // Header and payload trees live in this arena: no heap traffic for a typical key.
  alignas(std::max_align_t) unsigned char arena[4096];
  json::monotonic_resource memory(arena, sizeof arena);
  const json::storage_ptr storage(&memory);

  auto header = decode_object(seg->header, kHeaderLimits, storage, Error::token_malformed);
  if (!header) return Unexpected(header.error());
  auto kid = check_header(*header);
  if (!kid) return Unexpected(kid.error());

  auto payload = decode_object(seg->payload, kPayloadLimits, storage, Error::claims_malformed);
  if (!payload) return Unexpected(payload.error());
  auto iss = string_member(*payload, "iss");
  if (!iss) return Unexpected(Error::claims_malformed);
  if (!registry.has_issuer(*iss)) return Unexpected(Error::issuer_unknown);
  const PublicJwk* key = registry.find_key(*iss, *kid);
  if (key == nullptr) return Unexpected(Error::kid_unknown);

  Signature sig;
  if (seg->signature.size() != kSignatureChars || !base64url_decode_into(seg->signature, sig)) {
    return Unexpected(Error::signature_invalid);
  }
  if (!ed25519_verify(sig, as_bytes(seg->signing_input), key->key)) {
    return Unexpected(Error::signature_invalid);
  }

  // Authenticated from here on: the rest tells the issuer what is wrong with its key.
  auto claims = read_claims(*payload);
  if (!claims) return Unexpected(claims.error());
  if (claims->cnf_jkt && !policy.accept_cnf) return Unexpected(Error::claims_malformed);
  bool for_us = false;
  for (const std::string& aud : claims->aud) for_us = for_us || aud == server_id;
  if (!for_us) return Unexpected(Error::audience_mismatch);
  if (claims->exp - claims->iat > policy.max_ttl) return Unexpected(Error::ttl_too_long);
  if (now >= claims->exp + policy.leeway) return Unexpected(Error::token_expired);
  // An iat in the future would let a key outlive max_ttl from the moment it is first used.
  if (now + policy.leeway < claims->iat) return Unexpected(Error::token_not_yet_valid);
  if (claims->nbf && now + policy.leeway < *claims->nbf) {
    return Unexpected(Error::token_not_yet_valid);
  }
  return VerifiedKey{std::move(*claims), std::string(*kid)};
}

Result<std::string> mint_key(const Claims& claims, const SigningKey& key) {
  const std::string payload = claims_json(claims);
  const std::string header = R"({"alg":"EdDSA","kid":")" + jwk_thumbprint(key.public_key()) +
                             R"(","typ":")" + std::string(kKeyType) + "\"}";
  const std::size_t size = base64url_encoded_size(header.size()) +
                           base64url_encoded_size(payload.size()) + kSignatureChars + 2;
  if (size > kMaxTokenBytes) return Unexpected(Error::token_too_large);
  // Read back what we are about to sign: a minted key is exactly one a verifier accepts.
  auto parsed = parse_json(payload, kPayloadLimits);
  if (!parsed || !parsed->is_object() || !read_claims(parsed->get_object())) {
    return Unexpected(Error::claims_malformed);
  }
  std::string token;
  token.reserve(size);
  base64url_append(token, as_bytes(header));
  token.push_back('.');
  base64url_append(token, as_bytes(payload));
  const Signature sig = key.sign(as_bytes(token));
  token.push_back('.');
  base64url_append(token, sig);
  return token;
}

Result<DecodedKey> decode_key_unverified(std::string_view token) {
  auto seg = split(token);
  if (!seg) return Unexpected(seg.error());
  auto header = decode_object(seg->header, kHeaderLimits, {}, Error::token_malformed);
  if (!header) return Unexpected(header.error());
  auto payload = decode_object(seg->payload, kPayloadLimits, {}, Error::claims_malformed);
  if (!payload) return Unexpected(payload.error());
  return DecodedKey{std::move(*header), std::move(*payload)};
}

std::string random_jti() {
  std::array<std::uint8_t, 16> bytes;
  random_bytes(bytes);
  return base64url_encode(bytes);
}

}  // namespace dynaseal
