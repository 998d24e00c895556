#include "core/jwk.hpp"

#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "core/base64url.hpp"
#include "core/json.hpp"
#include "test_support.hpp"

namespace dynaseal {
namespace {

// RFC 8037 Appendix A.1/A.3: the example key and its RFC 7638 thumbprint.
constexpr std::string_view kRfcPrivate =
    R"({"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})";
constexpr std::string_view kRfcPublic =
    R"({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})";
constexpr std::string_view kRfcThumbprint = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";

TEST(Jwk, ComputesTheRfc8037Thumbprint) {
  auto keys = parse_jwks(kRfcPublic);
  ASSERT_TRUE(keys);
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ(keys->front().kid, kRfcThumbprint);
}

TEST(Jwk, ReadsThePrivateKeyOfRfc8037) {
  auto key = parse_private_jwk(kRfcPrivate);
  ASSERT_TRUE(key);
  EXPECT_EQ(base64url_encode(key->public_key()), "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
}

TEST(Jwk, RoundTripsOurOwnJson) {
  const SigningKey key = SigningKey::generate();
  auto back = parse_private_jwk(private_jwk_json(key));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->public_key(), key.public_key());
  auto pub = parse_jwks(public_jwk_json(key.public_key()));
  ASSERT_TRUE(pub);
  EXPECT_EQ(pub->front().key, key.public_key());
  EXPECT_EQ(pub->front().kid, jwk_thumbprint(key.public_key()));
  auto set = parse_jwks(jwks_json(
      {make_public_jwk(key.public_key()), make_public_jwk(SigningKey::generate().public_key())}));
  ASSERT_TRUE(set);
  EXPECT_EQ(set->size(), 2u);
}

TEST(Jwk, RefusesKeysThatAreNotOurs) {
  const std::string x = R"("x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")";
  for (
      const std::string& bad : {
          std::string(R"({"kty":"RSA","crv":"Ed25519",)") + x + "}",
          std::string(R"({"kty":"OKP","crv":"X25519",)") + x + "}",
          std::string(R"({"kty":"OKP","crv":"Ed448",)") + x + "}",
          std::string(R"({"kty":"OKP","crv":"Ed25519"})"),
          std::string(
              R"({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURp"})"),
          std::string(
              R"({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHUR"})"),
          std::string(R"({"kty":"OKP","crv":"Ed25519","kid":"other",)") + x + "}",
          std::string(R"({"kty":"OKP","crv":"Ed25519","alg":"ES256",)") + x + "}",
          std::string(R"({"kty":"OKP","crv":"Ed25519","use":"enc",)") + x + "}",
          std::string(R"({"kty":"OKP","crv":"Ed25519","key_ops":["verify"],)") + x + "}",
          std::string(R"({"kty":"OKP","kty":"OKP","crv":"Ed25519",)") + x + "}",
          std::string(kRfcPrivate),  // private material in a public key set
          std::string(R"({"keys":[]})"),
          std::string(R"({"keys":{}})"),
          std::string(R"({"keys":[)") + std::string(kRfcPublic) + "," + std::string(kRfcPublic) +
              "]}",
          std::string(R"({"keys":[)") + std::string(kRfcPublic) + R"(],"extra":1})",
          std::string("[]"),
          std::string("not json"),
      }) {
    EXPECT_EQ(parse_jwks(bad).error(), Error::key_invalid) << bad;
  }
}

TEST(Jwk, AcceptsOptionalMembersWithTheirOnlyValidValues) {
  const std::string jwk = R"({"kty":"OKP","crv":"Ed25519","use":"sig","alg":"EdDSA","kid":")" +
                          std::string(kRfcThumbprint) +
                          R"(","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})";
  EXPECT_TRUE(parse_jwks(jwk));
}

TEST(Jwk, RefusesAPrivateKeyWhoseXIsNotItsOwn) {
  const std::string other = public_jwk_json(SigningKey::generate().public_key());
  const std::string mismatched =
      R"({"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":")" +
      base64url_encode(SigningKey::generate().public_key()) + "\"}";
  EXPECT_EQ(parse_private_jwk(mismatched).error(), Error::key_invalid);
  EXPECT_EQ(parse_private_jwk(other).error(), Error::key_invalid);  // no "d"
}

// The JOSE cookbook's RFC 8037 JWS: it verifies, and signing its input with its key gives the
// same bytes (Ed25519 is deterministic).
TEST(Jwk, VerifiesAndReproducesTheRfc8037CookbookJws) {
  DYNASEAL_REQUIRE_VECTORS(dir);
  auto doc = parse_json(testing::read_file(dir / "jose-cookbook/rfc8037-eddsa-jws.json"));
  ASSERT_TRUE(doc);
  const std::string key_json = boost::json::serialize(doc->at("input").at("key"));
  auto key = parse_private_jwk(key_json);
  ASSERT_TRUE(key);
  const std::string compact(doc->at("output").at("compact").as_string());
  const std::size_t dot = compact.rfind('.');
  const std::string signing_input = compact.substr(0, dot);
  EXPECT_EQ(signing_input, doc->at("signing").at("sig-input").as_string());

  auto sig = base64url_decode(compact.substr(dot + 1));
  ASSERT_TRUE(sig);
  ASSERT_EQ(sig->size(), 64u);
  Signature signature;
  std::copy(sig->begin(), sig->end(), signature.begin());
  EXPECT_TRUE(ed25519_verify(signature, as_bytes(signing_input), key->public_key()));

  const Signature mine = key->sign(as_bytes(signing_input));
  EXPECT_EQ(signing_input + "." + base64url_encode(mine), compact);
  EXPECT_EQ(base64url_decode(compact.substr(compact.find('.') + 1, dot - compact.find('.') - 1)),
            std::string(doc->at("input").at("payload").as_string()));
}

}  // namespace
}  // namespace dynaseal
