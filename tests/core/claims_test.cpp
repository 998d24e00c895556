#include "core/claims.hpp"

#include <gtest/gtest.h>

#include "core/json.hpp"

namespace dynaseal {
namespace {

// A complete claim set; each test changes one thing.
constexpr std::string_view kValid = R"({
  "iss":"acme","aud":"llm-1","sub":"user-42","jti":"AAAAAAAAAAAAAAAAAAAAAA",
  "iat":1700000000,"exp":1700000300,
  "dks":{"models":["demo"],"max_tokens":256}
})";

Result<Claims> read(std::string_view text) {
  auto v = parse_json(text);
  EXPECT_TRUE(v && v->is_object()) << text;
  return read_claims(v->get_object());
}

// kValid with `from` replaced by `to` (the substring must occur once).
std::string with(std::string_view from, std::string_view to) {
  std::string s(kValid);
  const auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  s.replace(pos, from.size(), to);
  return s;
}

TEST(Claims, ReadsAMinimalClaimSetWithScopeDefaults) {
  auto c = read(kValid);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->iss, "acme");
  EXPECT_EQ(c->aud, std::vector<std::string>{"llm-1"});
  EXPECT_EQ(c->sub, "user-42");
  EXPECT_EQ(c->exp - c->iat, 300);
  EXPECT_FALSE(c->nbf);
  EXPECT_EQ(c->dks.models, std::vector<std::string>{"demo"});
  EXPECT_EQ(c->dks.max_tokens, 256);
  EXPECT_EQ(c->dks.uses, 1);
  EXPECT_FALSE(c->dks.budget);
  EXPECT_TRUE(c->dks.stream);
  EXPECT_EQ(c->dks.endpoints, kAllEndpoints);
  EXPECT_FALSE(c->ctx);
}

TEST(Claims, ReadsEveryOptionalClaim) {
  auto c = read(with(
      R"("dks":{"models":["demo"],"max_tokens":256})",
      R"("nbf":1700000010,"ctx":"order-7","cnf":{"jkt":"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"},"future":{"x":1},
                        "dks":{"models":["a","b"],"max_tokens":9,"uses":3,"budget":1000,"stream":false,"endpoints":["completions"]})"));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->nbf, 1700000010);
  EXPECT_EQ(c->ctx, "order-7");
  EXPECT_EQ(c->cnf_jkt, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
  EXPECT_EQ(c->dks.models.size(), 2u);
  EXPECT_EQ(c->dks.uses, 3);
  EXPECT_EQ(c->dks.budget, 1000);
  EXPECT_FALSE(c->dks.stream);
  EXPECT_TRUE(c->dks.allows(Endpoint::completions));
  EXPECT_FALSE(c->dks.allows(Endpoint::chat_completions));
}

TEST(Claims, AcceptsAnAudienceArray) {
  auto c = read(with(R"("aud":"llm-1")", R"("aud":["llm-0","llm-1"])"));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->aud.size(), 2u);
}

TEST(Claims, RefusesMalformedClaims) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {R"("iss":"acme",)", ""},
      {R"("iss":"acme")", R"("iss":"")"},
      {R"("iss":"acme")", R"("iss":7)"},
      {R"("aud":"llm-1",)", ""},
      {R"("aud":"llm-1")", R"("aud":[])"},
      {R"("aud":"llm-1")", R"("aud":[1])"},
      {R"("aud":"llm-1")", R"("aud":"")"},
      {R"("sub":"user-42",)", ""},
      {R"("sub":"user-42")", R"("sub":"")"},
      {R"("sub":"user-42")", R"("sub":null)"},
      {R"("jti":"AAAAAAAAAAAAAAAAAAAAAA",)", ""},
      {R"("jti":"AAAAAAAAAAAAAAAAAAAAAA")", R"("jti":"short")"},
      {R"("jti":"AAAAAAAAAAAAAAAAAAAAAA")", R"("jti":"AAAAAAAAAAAAAAAAAAAAA+")"},
      {R"("jti":"AAAAAAAAAAAAAAAAAAAAAA")", R"("jti":"AAAAAAAAAAAAAAAA AAAAA")"},
      {R"("iat":1700000000,)", ""},
      {R"("exp":1700000300,)", ""},
      {R"("iat":1700000000)", R"("iat":1700000000.0)"},
      {R"("iat":1700000000)", R"("iat":"1700000000")"},
      {R"("exp":1700000300)", R"("exp":1.5)"},
      {R"("exp":1700000300)", R"("exp":17e8)"},
      {R"("exp":1700000300)", R"("exp":1700000000)"},    // exp == iat
      {R"("exp":1700000300)", R"("exp":1690000000)"},    // exp < iat
      {R"("exp":1700000300)", R"("exp":253402300800)"},  // past year 9999
      {R"("exp":1700000300)", R"("exp":9223372036854775807)"},
      {R"("iat":1700000000)", R"("iat":-1)"},
      {R"("iat":1700000000)", R"("iat":1700000000,"nbf":-5)"},
      {R"("iat":1700000000)", R"("iat":1700000000,"nbf":"0")"},
      {R"("iat":1700000000)", R"("iat":1700000000,"ctx":7)"},
      {R"("iat":1700000000)", R"("iat":1700000000,"cnf":{"jkt":"short"})"},
      {R"("iat":1700000000)", R"("iat":1700000000,"cnf":"x")"},
      {R"(,
  "dks":{"models":["demo"],"max_tokens":256})",
       ""},
      {R"("dks":{)", R"("dks":{"max_cost":5,)"},  // unknown scope member: fail closed
      {R"("models":["demo"])", R"("models":[])"},
      {R"("models":["demo"])", R"("models":"demo")"},
      {R"("models":["demo"])", R"("models":[""])"},
      {R"("models":["demo"])", R"("models":["demo",1])"},
      {R"("max_tokens":256)", R"("max_tokens":0)"},
      {R"("max_tokens":256)", R"("max_tokens":-1)"},
      {R"("max_tokens":256)", R"("max_tokens":256.0)"},
      {R"("max_tokens":256)", R"("max_tokens":256,"uses":0)"},
      {R"("max_tokens":256)", R"("max_tokens":256,"budget":0)"},
      {R"("max_tokens":256)", R"("max_tokens":256,"stream":"yes")"},
      {R"("max_tokens":256)", R"("max_tokens":256,"endpoints":[])"},
      {R"("max_tokens":256)", R"("max_tokens":256,"endpoints":["embeddings"])"},
      {R"("max_tokens":256)", R"("max_tokens":256,"endpoints":"completions")"},
  };
  for (const auto& [from, to] : cases) {
    auto c = read(with(from, to));
    EXPECT_FALSE(c) << from << " -> " << to;
    if (!c) {
      EXPECT_EQ(c.error(), Error::claims_malformed);
    }
  }
}

TEST(Claims, BoundsStringSizes) {
  EXPECT_TRUE(read(with("user-42", std::string(256, 'u'))));
  EXPECT_FALSE(read(with("user-42", std::string(257, 'u'))));
  EXPECT_TRUE(read(with("AAAAAAAAAAAAAAAAAAAAAA", std::string(128, 'j'))));
  EXPECT_FALSE(read(with("AAAAAAAAAAAAAAAAAAAAAA", std::string(129, 'j'))));
  EXPECT_TRUE(read(with("AAAAAAAAAAAAAAAAAAAAAA", std::string(16, 'j'))));
  EXPECT_FALSE(read(with("AAAAAAAAAAAAAAAAAAAAAA", std::string(15, 'j'))));
  const std::string ctx = R"("iat":1700000000,"ctx":")";
  EXPECT_TRUE(read(with(R"("iat":1700000000)", ctx + std::string(1024, 'c') + "\"")));
  EXPECT_FALSE(read(with(R"("iat":1700000000)", ctx + std::string(1025, 'c') + "\"")));
}

TEST(Claims, WritesJsonThatReadsBack) {
  Claims c;
  c.iss = "acme";
  c.aud = {"llm-1", "llm-2"};
  c.sub = "user \"42\"";
  c.jti = "0123456789abcdef_-";
  c.iat = 100;
  c.nbf = 110;
  c.exp = 400;
  c.dks.models = {"m1", "m2"};
  c.dks.max_tokens = 10;
  c.dks.uses = 2;
  c.dks.budget = 50;
  c.dks.stream = false;
  c.dks.endpoints = static_cast<std::uint8_t>(Endpoint::chat_completions);
  c.ctx = "ctx";
  c.cnf_jkt = std::string(43, 'k');
  auto back = read(claims_json(c));
  ASSERT_TRUE(back);
  EXPECT_EQ(claims_json(*back), claims_json(c));
  EXPECT_EQ(back->sub, c.sub);
  EXPECT_EQ(back->dks.endpoints, c.dks.endpoints);
}

}  // namespace
}  // namespace dynaseal
