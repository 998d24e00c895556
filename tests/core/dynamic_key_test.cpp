#include "core/dynamic_key.hpp"

#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "core/key_fixture.hpp"

namespace dynaseal {
namespace {

using testing::KeyFixture;
using testing::kIat;

class DynamicKey : public ::testing::Test, public KeyFixture {};

TEST_F(DynamicKey, VerifiesWhatItMints) {
  auto v = verify(mint());
  ASSERT_TRUE(v) << to_string(v.error());
  EXPECT_EQ(v->claims.sub, "user-42");
  EXPECT_EQ(v->claims.jti, "AAAAAAAAAAAAAAAAAAAAAA");
  EXPECT_EQ(v->claims.dks.max_tokens, 256);
  EXPECT_EQ(v->kid, jwk_thumbprint(key.public_key()));
}

TEST_F(DynamicKey, WritesTheDesignHeader) {
  auto d = decode_key_unverified(mint());
  ASSERT_TRUE(d);
  EXPECT_EQ(boost::json::serialize(d->header), testing::header_for(key));
}

TEST_F(DynamicKey, AcceptsTheEd25519AlgorithmName) {
  std::string header = testing::header_for(key);
  header.replace(header.find("EdDSA"), 5, "Ed25519");
  EXPECT_TRUE(verify(testing::craft(header, payload(), key)));
}

// exp: valid strictly before exp + leeway.
TEST_F(DynamicKey, ExpiresAtExpPlusLeeway) {
  const std::string token = mint();
  const std::int64_t exp = kIat + 300;
  EXPECT_TRUE(verify(token, exp - 1));
  EXPECT_TRUE(verify(token, exp + 29));
  EXPECT_EQ(verify(token, exp + 30).error(), Error::token_expired);
  EXPECT_EQ(verify(token, exp + 1000000).error(), Error::token_expired);
  const VerifyPolicy strict{.leeway = 0};
  EXPECT_TRUE(verify(token, exp - 1, strict));
  EXPECT_EQ(verify(token, exp, strict).error(), Error::token_expired);
}

// iat: a key issued in the future (beyond leeway) is not yet valid.
TEST_F(DynamicKey, IsNotValidBeforeIatMinusLeeway) {
  const std::string token = mint();
  EXPECT_TRUE(verify(token, kIat - 30));
  EXPECT_EQ(verify(token, kIat - 31).error(), Error::token_not_yet_valid);
  EXPECT_EQ(verify(token, 0).error(), Error::token_not_yet_valid);
}

TEST_F(DynamicKey, IsNotValidBeforeNbfMinusLeeway) {
  Claims c = claims();
  c.nbf = kIat + 100;
  const std::string token = mint(c);
  EXPECT_EQ(verify(token, kIat + 69).error(), Error::token_not_yet_valid);
  EXPECT_TRUE(verify(token, kIat + 70));
  EXPECT_EQ(verify(token, kIat + 99, {.leeway = 0}).error(), Error::token_not_yet_valid);
  EXPECT_TRUE(verify(token, kIat + 100, {.leeway = 0}));
}

TEST_F(DynamicKey, RefusesLifetimesAboveMaxTtl) {
  Claims c = claims();
  c.exp = c.iat + 3600;
  EXPECT_TRUE(verify(mint(c)));
  c.exp = c.iat + 3601;
  EXPECT_EQ(verify(mint(c)).error(), Error::ttl_too_long);
  EXPECT_TRUE(verify(mint(c), kIat + 10, {.max_ttl = 3601}));
  c.exp = c.iat + 61;
  EXPECT_EQ(verify(mint(c), kIat + 10, {.max_ttl = 60}).error(), Error::ttl_too_long);
}

TEST_F(DynamicKey, RequiresThisServerInTheAudience) {
  Claims c = claims();
  c.aud = {"llm-0", "llm-1", "llm-2"};
  EXPECT_TRUE(verify(mint(c)));
  c.aud = {"llm-0", "llm-2"};
  EXPECT_EQ(verify(mint(c)).error(), Error::audience_mismatch);
  c.aud = {"LLM-1"};
  EXPECT_EQ(verify(mint(c)).error(), Error::audience_mismatch);
}

TEST_F(DynamicKey, RequiresAKnownIssuerAndKid) {
  Claims c = claims();
  c.iss = "globex";
  EXPECT_EQ(verify(mint(c)).error(), Error::issuer_unknown);
  // A key registered for another issuer does not sign for this one.
  const SigningKey other = testing::seeded_key(2);
  registry.set_issuer("globex", {make_public_jwk(other.public_key())});
  EXPECT_EQ(verify(*mint_key(claims(), other)).error(), Error::kid_unknown);
  EXPECT_EQ(verify(mint(c)).error(), Error::kid_unknown);
}

TEST_F(DynamicKey, AcceptsEveryRegisteredKeyOfAnIssuerDuringRotation) {
  const SigningKey next = testing::seeded_key(3);
  registry.set_issuer("acme",
                      {make_public_jwk(key.public_key()), make_public_jwk(next.public_key())});
  EXPECT_TRUE(verify(mint()));
  EXPECT_TRUE(verify(*mint_key(claims(), next)));
  registry.set_issuer("acme", {make_public_jwk(next.public_key())});
  EXPECT_EQ(verify(mint()).error(), Error::kid_unknown);
}

TEST_F(DynamicKey, RefusesDeviceBoundKeysUnlessTheCallerEnforcesPossession) {
  Claims c = claims();
  c.cnf_jkt = jwk_thumbprint(testing::seeded_key(9).public_key());
  const std::string token = mint(c);
  EXPECT_EQ(verify(token).error(), Error::claims_malformed);
  auto v = verify(token, kIat + 10, {.accept_cnf = true});
  ASSERT_TRUE(v);
  EXPECT_EQ(v->claims.cnf_jkt, c.cnf_jkt);
}

// jwt_verify_lib's idiom: every single-bit flip of the signature is rejected.
TEST_F(DynamicKey, RejectsEverySingleBitFlipOfTheSignature) {
  const std::string token = mint();
  const std::size_t dot = token.rfind('.');
  auto sig = base64url_decode(token.substr(dot + 1));
  ASSERT_TRUE(sig);
  for (std::size_t bit = 0; bit < sig->size() * 8; ++bit) {
    std::string flipped = *sig;
    flipped[bit / 8] = static_cast<char>(flipped[bit / 8] ^ (1 << (bit % 8)));
    const std::string forged = token.substr(0, dot + 1) + base64url_encode(flipped);
    EXPECT_EQ(verify(forged).error(), Error::signature_invalid) << "bit " << bit;
  }
}

TEST_F(DynamicKey, RejectsEveryTruncation) {
  const std::string token = mint();
  const std::size_t dot = token.rfind('.');
  for (std::size_t len = 0; len < token.size(); ++len) {
    auto v = verify(std::string_view(token).substr(0, len));
    ASSERT_FALSE(v) << len;
    if (len > dot) {
      EXPECT_EQ(v.error(), Error::signature_invalid) << len;
    }
  }
}

TEST_F(DynamicKey, RejectsABitFlipAnywhereInTheSignedPart) {
  const std::string token = mint();
  const std::size_t dot = token.rfind('.');
  for (std::size_t i = 0; i < dot; ++i) {
    std::string forged = token;
    forged[i] = forged[i] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(verify(forged)) << i;
  }
}

TEST_F(DynamicKey, MintRefusesClaimsAVerifierWouldRefuse) {
  Claims c = claims();
  c.jti = "short";
  EXPECT_EQ(mint_key(c, key).error(), Error::claims_malformed);
  c = claims();
  c.dks.models.clear();
  EXPECT_EQ(mint_key(c, key).error(), Error::claims_malformed);
  c = claims();
  c.exp = c.iat;
  EXPECT_EQ(mint_key(c, key).error(), Error::claims_malformed);
  c = claims();
  c.dks.max_tokens = 0;
  EXPECT_EQ(mint_key(c, key).error(), Error::claims_malformed);
}

TEST_F(DynamicKey, MintRefusesKeysAboveTheSizeLimit) {
  Claims c = claims();
  for (int i = 0; i < 30; ++i) c.dks.models.push_back(std::string(200, 'm') + std::to_string(i));
  EXPECT_EQ(mint_key(c, key).error(), Error::token_too_large);
}

TEST_F(DynamicKey, MintsAFreshJtiEachTime) {
  const std::string a = random_jti(), b = random_jti();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 22u);
  EXPECT_TRUE(valid_jti(a));
}

TEST_F(DynamicKey, DecodesWithoutVerifying) {
  Claims c = claims();
  c.iss = "unregistered";
  auto d = decode_key_unverified(mint(c));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->payload.at("iss").as_string(), "unregistered");
  EXPECT_EQ(decode_key_unverified("a.b").error(), Error::token_malformed);
}

}  // namespace
}  // namespace dynaseal
