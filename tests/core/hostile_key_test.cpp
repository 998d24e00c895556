// A catalogue of hostile and broken dynamic keys, each refused with its own code.

#include <sodium.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "core/key_fixture.hpp"

namespace dynaseal {
namespace {

using testing::craft;
using testing::KeyFixture;

class HostileKey : public ::testing::Test, public KeyFixture {
 protected:
  std::string kid() const { return jwk_thumbprint(key.public_key()); }
  // Our header with `members` (JSON text, with a leading comma) added.
  std::string header_plus(std::string_view members) const {
    std::string h = testing::header_for(key);
    h.insert(h.size() - 1, members);
    return h;
  }
  // The valid payload with `from` replaced by `to`.
  static std::string payload_with(std::string_view from, std::string_view to) {
    std::string p = payload();
    const auto pos = p.find(from);
    EXPECT_NE(pos, std::string::npos) << from;
    p.replace(pos, from.size(), to);
    return p;
  }
  Error code(std::string_view token) const {
    auto v = verify(token);
    EXPECT_FALSE(v) << token;
    return v ? Error::internal : v.error();
  }
  Error signed_code(std::string_view header, std::string_view payload_text) const {
    return code(craft(header, payload_text, key));
  }
};

TEST_F(HostileKey, AlgNoneInAnyCaseIsNotAllowed) {
  for (std::string_view alg : {"none", "None", "NONE", "nOnE"}) {
    const std::string header = R"({"alg":")" + std::string(alg) + R"(","typ":"dk+jwt"})";
    const std::string unsigned_token =
        base64url_encode(header) + "." + base64url_encode(payload()) + ".";
    EXPECT_EQ(code(unsigned_token), Error::alg_not_allowed) << alg;
    EXPECT_EQ(signed_code(header, payload()), Error::alg_not_allowed) << alg;
  }
}

// The classic confusion attack: HMAC keyed with the public key, which the attacker knows.
TEST_F(HostileKey, Hs256SignedWithThePublicKeyIsNotAllowed) {
  const std::string header = R"({"alg":"HS256","kid":")" + kid() + R"(","typ":"dk+jwt"})";
  std::string token = base64url_encode(header) + "." + base64url_encode(payload());
  std::array<std::uint8_t, crypto_auth_hmacsha256_BYTES> mac;
  crypto_auth_hmacsha256(mac.data(), reinterpret_cast<const unsigned char*>(token.data()),
                         token.size(), key.public_key().data());
  token += "." + base64url_encode(mac);
  EXPECT_EQ(code(token), Error::alg_not_allowed);
}

TEST_F(HostileKey, OtherAlgorithmsAreNotAllowed) {
  for (std::string_view alg :
       {"HS256", "RS256", "ES256", "ES256K", "PS256", "eddsa", "EDDSA", "EdDSA ", "ed25519", ""}) {
    const std::string header =
        R"({"alg":")" + std::string(alg) + R"(","kid":")" + kid() + R"(","typ":"dk+jwt"})";
    EXPECT_EQ(signed_code(header, payload()), Error::alg_not_allowed) << alg;
  }
}

TEST_F(HostileKey, MissingOrNonStringAlgIsMalformed) {
  EXPECT_EQ(signed_code(R"({"kid":")" + kid() + R"(","typ":"dk+jwt"})", payload()),
            Error::token_malformed);
  EXPECT_EQ(signed_code(R"({"alg":1,"kid":")" + kid() + R"(","typ":"dk+jwt"})", payload()),
            Error::token_malformed);
}

TEST_F(HostileKey, ExtraHeaderMembersAreMalformed) {
  for (std::string_view extra :
       {R"(,"crit":["exp"])", R"(,"jku":"https://evil.example/jwks")",
        R"(,"jwk":{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})",
        R"(,"x5u":"https://evil.example/cert")", R"(,"x5c":["MIIB"])", R"(,"b64":false)",
        R"(,"zip":"DEF")", R"(,"cty":"JWT")", R"(,"foo":"bar")"}) {
    EXPECT_EQ(signed_code(header_plus(extra), payload()), Error::token_malformed) << extra;
  }
}

TEST_F(HostileKey, DuplicateHeaderMembersAreMalformed) {
  EXPECT_EQ(signed_code(header_plus(R"(,"alg":"none")"), payload()), Error::token_malformed);
  EXPECT_EQ(signed_code(header_plus(R"(,"kid":"other")"), payload()), Error::token_malformed);
}

TEST_F(HostileKey, WrongTypIsMalformed) {
  for (std::string_view typ : {"JWT", "dk+JWT", "application/dk+jwt", "", "dk+jwt "}) {
    const std::string header =
        R"({"alg":"EdDSA","kid":")" + kid() + R"(","typ":")" + std::string(typ) + "\"}";
    EXPECT_EQ(signed_code(header, payload()), Error::token_malformed) << typ;
  }
  EXPECT_EQ(signed_code(R"({"alg":"EdDSA","kid":")" + kid() + "\"}", payload()),
            Error::token_malformed);
}

TEST_F(HostileKey, UnknownHugeOrEmptyKidIsRefused) {
  auto header_with_kid = [](std::string_view k) {
    return R"({"alg":"EdDSA","kid":")" + std::string(k) + R"(","typ":"dk+jwt"})";
  };
  EXPECT_EQ(signed_code(header_with_kid("unknown-kid"), payload()), Error::kid_unknown);
  EXPECT_EQ(signed_code(header_with_kid(std::string(1000, 'k')), payload()),
            Error::token_malformed);
  EXPECT_EQ(signed_code(header_with_kid(""), payload()), Error::token_malformed);
  EXPECT_EQ(signed_code(R"({"alg":"EdDSA","kid":7,"typ":"dk+jwt"})", payload()),
            Error::token_malformed);
}

// An attacker's own key, announced under the victim's kid, does not verify.
TEST_F(HostileKey, ForeignKeyUnderARegisteredKidHasAnInvalidSignature) {
  const SigningKey attacker = testing::seeded_key(66);
  EXPECT_EQ(code(craft(testing::header_for(key), payload(), attacker)), Error::signature_invalid);
}

TEST_F(HostileKey, DuplicateClaimsAreMalformed) {
  EXPECT_EQ(signed_code(testing::header_for(key), payload_with(R"("exp":)", R"("exp":1,"exp":)")),
            Error::claims_malformed);
  EXPECT_EQ(signed_code(testing::header_for(key),
                        payload_with(R"("max_tokens":)", R"("max_tokens":1,"max_tokens":)")),
            Error::claims_malformed);
  // A second iss must not let one reader see "acme" and another "evil".
  EXPECT_EQ(signed_code(testing::header_for(key),
                        payload_with(R"("iss":"acme")", R"("iss":"evil","iss":"acme")")),
            Error::claims_malformed);
}

TEST_F(HostileKey, NonIntegerOrHugeTimesAreMalformed) {
  const std::string exp = R"("exp":)" + std::to_string(testing::kIat + 300);
  for (std::string_view bad :
       {R"("exp":1e400)", R"("exp":1.5)", R"("exp":"123")", R"("exp":1.7e9)", R"("exp":null)",
        R"("exp":99999999999999999999)", R"("exp":9223372036854775807)", R"("exp":-1)",
        R"("exp":true)", R"("exp":[1700000300])"}) {
    EXPECT_EQ(signed_code(testing::header_for(key), payload_with(exp, bad)),
              Error::claims_malformed)
        << bad;
  }
}

TEST_F(HostileKey, MissingClaimsAreMalformed) {
  for (std::string_view name : {"aud", "sub", "jti", "iat", "exp", "dks"}) {
    boost::json::object o = boost::json::parse(payload()).as_object();
    o.erase(name);
    EXPECT_EQ(signed_code(testing::header_for(key), boost::json::serialize(o)),
              Error::claims_malformed)
        << name;
  }
  boost::json::object no_iss = boost::json::parse(payload()).as_object();
  no_iss.erase("iss");
  EXPECT_EQ(signed_code(testing::header_for(key), boost::json::serialize(no_iss)),
            Error::claims_malformed);
}

TEST_F(HostileKey, WrongIssuerOrAudienceIsRefused) {
  EXPECT_EQ(
      signed_code(testing::header_for(key), payload_with(R"("iss":"acme")", R"("iss":"evil")")),
      Error::issuer_unknown);
  EXPECT_EQ(
      signed_code(testing::header_for(key), payload_with(R"("aud":"llm-1")", R"("aud":"llm-2")")),
      Error::audience_mismatch);
}

TEST_F(HostileKey, PayloadsThatAreNotObjectsAreMalformed) {
  for (std::string_view p : {"[]", "1", "\"acme\"", "null", "{", "{\"iss\":\"acme\"} x"}) {
    EXPECT_EQ(signed_code(testing::header_for(key), p), Error::claims_malformed) << p;
  }
}

TEST_F(HostileKey, InvalidUtf8InClaimsIsMalformed) {
  EXPECT_EQ(signed_code(testing::header_for(key),
                        payload_with(R"("sub":"user-42")", "\"sub\":\"user-\xff\"")),
            Error::claims_malformed);
  EXPECT_EQ(signed_code(testing::header_for(key),
                        payload_with(R"("sub":"user-42")", R"("sub":"\ud800")")),
            Error::claims_malformed);
}

TEST_F(HostileKey, DeepNestingIsMalformed) {
  const std::string deep = std::string(64, '[') + std::string(64, ']');
  EXPECT_EQ(signed_code(testing::header_for(key),
                        payload_with(R"("models":["demo"])", R"("models":)" + deep)),
            Error::claims_malformed);
  EXPECT_EQ(signed_code(header_plus(R"(,"x":[[[]]])"), payload()), Error::token_malformed);
}

TEST_F(HostileKey, NonCanonicalBase64urlIsMalformed) {
  const std::string token = mint();
  const std::size_t d1 = token.find('.'), d2 = token.rfind('.');
  const std::string header = token.substr(0, d1), body = token.substr(d1 + 1, d2 - d1 - 1),
                    sig = token.substr(d2 + 1);
  EXPECT_EQ(code(header + "=." + body + "." + sig), Error::token_malformed);
  EXPECT_EQ(code(header + "." + body + "==." + sig), Error::token_malformed);
  EXPECT_EQ(code(" " + token), Error::token_malformed);
  EXPECT_EQ(code(header + "." + body + "\n." + sig), Error::token_malformed);
  std::string plus = header;
  plus[3] = '+';
  EXPECT_EQ(code(plus + "." + body + "." + sig), Error::token_malformed);
  // Our header is 104 characters (4k): no stray bits there, but the payload's tail has some.
  ASSERT_NE(body.size() % 4, 0u);
  std::string stray = body;
  stray.back() = static_cast<char>(stray.back() + 1);
  EXPECT_EQ(code(header + "." + stray + "." + sig), Error::token_malformed);
  EXPECT_EQ(code(header + "." + body + "." + sig + "=="), Error::signature_invalid);
  std::string sig_stray = sig;
  sig_stray.back() = sig_stray.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(code(header + "." + body + "." + sig_stray), Error::signature_invalid);
}

TEST_F(HostileKey, WrongSegmentCountsAreMalformed) {
  const std::string token = mint();
  EXPECT_EQ(code(token + ".x"), Error::token_malformed);
  EXPECT_EQ(code(token + "." + token), Error::token_malformed);
  EXPECT_EQ(code("a.b.c.d.e"), Error::token_malformed);  // JWE shape
  EXPECT_EQ(code(token.substr(0, token.rfind('.'))), Error::token_malformed);
  for (std::string_view s : {"", ".", "..", "...", "abc", ".b.c", "a..c"}) {
    EXPECT_EQ(code(s), Error::token_malformed) << s;
  }
}

TEST_F(HostileKey, OversizedTokensAreRefusedBeforeAnyWork) {
  EXPECT_EQ(code(std::string(kMaxTokenBytes + 1, 'A')), Error::token_too_large);
  const std::string token = mint();
  EXPECT_EQ(code(token + std::string(kMaxTokenBytes, 'A')), Error::token_too_large);
  EXPECT_EQ(code(std::string(kMaxTokenBytes, 'A')), Error::token_malformed);
}

TEST_F(HostileKey, EmbeddedNulIsMalformed) {
  std::string token = mint();
  token.insert(10, 1, '\0');
  EXPECT_EQ(code(token), Error::token_malformed);
}

}  // namespace
}  // namespace dynaseal
