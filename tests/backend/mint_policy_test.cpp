#include "backend/mint_policy.hpp"

#include <gtest/gtest.h>

#include "backend_fixture.hpp"
#include "core/dynamic_key.hpp"

namespace dynaseal::backend {
namespace {

class MintPolicy : public ::testing::Test {
 protected:
  const BackendConfig config = test::test_config("/tmp");
  const Plan& free = *config.plan("free");  // quota 1000, max_tokens 100, 2 uses
  const Plan& pro = *config.plan("pro");    // prepaid, demo at 0.50 / 1.50 per 1k
  const Plan& open = *config.plan("open");  // neither

  static MintRequest request(std::string model = "demo", std::optional<std::int64_t> max = {},
                             std::optional<std::int64_t> uses = {}) {
    return {.model = std::move(model), .max_tokens = max, .uses = uses};
  }
  static Grant grant(std::int64_t max_tokens, std::int64_t uses) {
    return {.max_tokens = max_tokens, .uses = uses};
  }
};

TEST_F(MintPolicy, ParsesTheThreeMembers) {
  auto r = parse_mint_request(R"({"model":"demo","max_tokens":50,"uses":2})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->model, "demo");
  EXPECT_EQ(r->max_tokens, 50);
  EXPECT_EQ(r->uses, 2);
  auto only_model = parse_mint_request(R"({"model":"demo","max_tokens":null})");
  ASSERT_TRUE(only_model);
  EXPECT_FALSE(only_model->max_tokens);
  EXPECT_FALSE(only_model->uses);
}

TEST_F(MintPolicy, RefusesBodiesThatAreNotExactlyThat) {
  for (const char* bad :
       {"", "[]", "null", "{", R"({"model":"demo"} x)", R"({"model":"demo","model":"other"})",
        R"({"model":"demo","stream":true})", R"({"model":7})", R"({"model":"demo","uses":0})",
        R"({"model":"demo","max_tokens":-1})", R"({"model":"demo","max_tokens":1.0})",
        R"({"model":"demo","max_tokens":"5"})", R"({"model":"demo","uses":1e2})",
        R"({"model":"demo","max_tokens":99999999999999999999})"}) {
    auto r = parse_mint_request(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error(), Error::body_malformed) << bad;
  }
  for (const char* missing : {"{}", R"({"model":""})", R"({"model":null,"uses":1})"}) {
    auto r = parse_mint_request(missing);
    ASSERT_FALSE(r) << missing;
    EXPECT_EQ(r.error(), Error::model_missing) << missing;
  }
  EXPECT_EQ(parse_mint_request(std::string(5000, ' ') + "{}").error(), Error::body_malformed);
}

TEST_F(MintPolicy, ThePlanBoundsModelMaxTokensAndUses) {
  EXPECT_EQ(check_plan(free, request("other")).error(), Error::model_not_allowed);
  EXPECT_EQ(check_plan(free, request("demo", 101)).error(), Error::max_tokens_exceeded);
  EXPECT_EQ(check_plan(free, request("demo", 100, 3)).error(), Error::uses_not_allowed);
  // In that order: the model is checked first.
  EXPECT_EQ(check_plan(free, request("other", 101, 3)).error(), Error::model_not_allowed);
  EXPECT_EQ(check_plan(free, request("demo", 101, 3)).error(), Error::max_tokens_exceeded);
}

TEST_F(MintPolicy, AGrantTakesTheRequestOrThePlansValues) {
  auto defaults = check_plan(free, request());
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->max_tokens, 100);
  EXPECT_EQ(defaults->uses, 2);
  auto asked = check_plan(free, request("demo", 10, 1));
  ASSERT_TRUE(asked);
  EXPECT_EQ(asked->max_tokens, 10);
  EXPECT_EQ(asked->uses, 1);
}

TEST_F(MintPolicy, WithoutQuotaOrCreditAKeyHasNoBudget) {
  auto b = decide_budget(open, "demo", grant(256, 1), MintState{.tokens_today = 1'000'000});
  ASSERT_TRUE(b);
  EXPECT_FALSE(b->tokens);
  EXPECT_EQ(b->reserved_micros, 0);
}

TEST_F(MintPolicy, AQuotaCapsTheBudgetAtWhatIsLeftAfterUsageAndReservations) {
  // Plenty left: the key's own cap, max_tokens × uses.
  EXPECT_EQ(decide_budget(free, "demo", grant(100, 2), {})->tokens, 200);
  // 1000 - 700 used - 150 reserved = 150 left.
  const MintState state{.tokens_today = 700, .reserved_tokens = 150};
  EXPECT_EQ(decide_budget(free, "demo", grant(100, 2), state)->tokens, 150);
  EXPECT_EQ(decide_budget(free, "demo", grant(100, 1), state)->tokens, 100);
  EXPECT_EQ(decide_budget(free, "demo", grant(100, 2), {.tokens_today = 999})->tokens, 1);
}

TEST_F(MintPolicy, TheDefaultBudgetCoversEachUsesPromptAllowanceToo) {
  // The server reserves a use's prompt bound besides its cap (docs/server.md, "Budget").
  Plan with_prompts = free;
  with_prompts.prompt_tokens = 4096;
  with_prompts.daily_tokens = 1'000'000;
  EXPECT_EQ(decide_budget(with_prompts, "demo", grant(100, 2), {})->tokens, 2 * (100 + 4096));
}

TEST_F(MintPolicy, ASpentQuotaIsQuotaExhausted) {
  for (const MintState& s : {MintState{.tokens_today = 1000}, MintState{.tokens_today = 1500},
                             MintState{.tokens_today = 600, .reserved_tokens = 400}}) {
    auto b = decide_budget(free, "demo", grant(100, 2), s);
    ASSERT_FALSE(b);
    EXPECT_EQ(b.error(), Error::quota_exhausted);
  }
}

TEST_F(MintPolicy, CreditCapsTheBudgetAtWhatItPaysForAtTheDearerRate) {
  // 1.50 per 1k completion tokens: 0.75 of credit pays for 500 tokens, less the 4 µ that the
  // rounding of 4 events' costs may add: 499 tokens, 748,500 µ + 4 µ reserved.
  auto b = decide_budget(pro, "demo", grant(1000, 4), {.credit_micros = 750'000});
  ASSERT_TRUE(b);
  EXPECT_EQ(b->tokens, 499);
  EXPECT_EQ(b->reserved_micros, 748'504);
  // Reservations of live keys come off the credit first: 0.75 - 0.60 = 0.15 -> 99 tokens.
  b = decide_budget(pro, "demo", grant(1000, 4),
                    {.reserved_micros = 600'000, .credit_micros = 750'000});
  EXPECT_EQ(b->tokens, 99);
  EXPECT_EQ(b->reserved_micros, 148'504);
  // Rich: the key's own cap (1000 × 4) and its worst-case cost, plus the rounding allowance.
  b = decide_budget(pro, "demo", grant(1000, 4), {.credit_micros = 100'000'000});
  EXPECT_EQ(b->tokens, 4000);
  EXPECT_EQ(b->reserved_micros, 6'000'004);
  // Rounded down: 0.001499 pays for 0.999 tokens -> none -> refused.
  b = decide_budget(pro, "demo", grant(1000, 4), {.credit_micros = 1'499});
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error(), Error::credit_exhausted);
}

// However a key's tokens split over its uses, the rounded-up costs of its events stay within
// what it reserved: the balance never goes below zero.
TEST_F(MintPolicy, TheReservationCoversEveryEventsRoundingUp) {
  // 1,501 µ per 1k tokens: every event's cost has a fraction to round up.
  Plan odd = pro;
  odd.prices["demo"] = ModelPrice{.prompt_per_1k = 1'501, .completion_per_1k = 1'501};
  const ModelPrice price = odd.price("demo");
  auto b = decide_budget(odd, "demo", grant(1000, 4), {.credit_micros = 10'000'000});
  ASSERT_TRUE(b);
  const std::int64_t budget = *b->tokens;
  for (std::int64_t first = 1; first < budget; first += 37) {
    // Four events, odd splits, each cost rounded up on its own.
    const std::int64_t parts[4] = {first / 3, first - first / 3, (budget - first) / 2,
                                   budget - first - (budget - first) / 2};
    std::int64_t cost = 0;
    for (std::int64_t t : parts) cost += usage_cost(price, t / 2, t - t / 2);
    EXPECT_LE(cost, b->reserved_micros) << first;
  }
}

TEST_F(MintPolicy, SpentOrNegativeCreditIsCreditExhaustedExceptForFreeModels) {
  for (std::int64_t credit : {0, -1, -5'000'000}) {
    auto b = decide_budget(pro, "demo", grant(10, 1), {.credit_micros = credit});
    ASSERT_FALSE(b);
    EXPECT_EQ(b.error(), Error::credit_exhausted);
    auto free_model = decide_budget(pro, "other", grant(10, 1), {.credit_micros = credit});
    ASSERT_TRUE(free_model);
    EXPECT_EQ(free_model->tokens, 10);
    EXPECT_EQ(free_model->reserved_micros, 0);
  }
}

TEST_F(MintPolicy, QuotaAndCreditTogetherTakeTheSmaller) {
  Plan both = pro;
  both.daily_tokens = 1000;
  auto b = decide_budget(both, "demo", grant(1000, 4),
                         {.tokens_today = 900, .credit_micros = 100'000'000});
  EXPECT_EQ(b->tokens, 100);
  EXPECT_EQ(b->reserved_micros, 150'004);
  b = decide_budget(both, "demo", grant(1000, 4), {.credit_micros = 300'000});
  EXPECT_EQ(b->tokens, 199);
  // Quota is checked before credit.
  EXPECT_EQ(decide_budget(both, "demo", grant(1, 1), {.tokens_today = 1000}).error(),
            Error::quota_exhausted);
}

TEST_F(MintPolicy, APlanKeyBudgetReplacesMaxTokensTimesUses) {
  Plan p = free;
  p.key_budget = 50;
  EXPECT_EQ(decide_budget(p, "demo", grant(100, 2), {})->tokens, 50);
  p.key_budget = 5000;
  EXPECT_EQ(decide_budget(p, "demo", grant(100, 2), {})->tokens, 1000);  // quota is smaller
  Plan o = open;
  o.key_budget = 77;
  EXPECT_EQ(decide_budget(o, "demo", grant(100, 2), {})->tokens, 77);
}

TEST_F(MintPolicy, TheKeyIsForTheUserTheModelAndThePlansLifetime) {
  const User bob{.id = 7, .name = "bob", .plan = "free"};
  auto key = decide_key(free, bob, request("demo", 50, 1), grant(50, 1), "kid-1",
                        "JJJJJJJJJJJJJJJJJJJJJJ", test::kNow, {});
  ASSERT_TRUE(key);
  EXPECT_EQ(key->user_id, 7);
  EXPECT_EQ(key->model, "demo");
  EXPECT_EQ(key->kid, "kid-1");
  EXPECT_EQ(key->uses, 1);
  EXPECT_EQ(key->budget, 50);
  EXPECT_EQ(key->issued_at, test::kNow);
  EXPECT_EQ(key->expires_at, test::kNow + 60);

  const Claims c = key_claims(config, bob, *key, grant(50, 1));
  EXPECT_EQ(c.iss, "acme");
  EXPECT_EQ(c.aud, std::vector<std::string>{"llm-1"});
  EXPECT_EQ(c.sub, "bob");
  EXPECT_EQ(c.dks.models, std::vector<std::string>{"demo"});
  EXPECT_EQ(c.dks.max_tokens, 50);
  EXPECT_EQ(c.dks.budget, 50);
  // What the backend mints verifies at the server it names.
  const SigningKey signer = testing::seeded_key(9);
  auto token = mint_key(c, signer);
  ASSERT_TRUE(token);
  IssuerRegistry registry;
  registry.set_issuer("acme", {make_public_jwk(signer.public_key())});
  auto verified = verify_key(*token, registry, "llm-1", test::kNow + 1);
  ASSERT_TRUE(verified) << to_string(verified.error());
  EXPECT_EQ(verified->claims.jti, "JJJJJJJJJJJJJJJJJJJJJJ");
}

TEST_F(MintPolicy, ARefusedBudgetMakesNoKey) {
  const User bob{.id = 7, .name = "bob", .plan = "free"};
  auto key = decide_key(free, bob, request(), grant(100, 2), "kid", "JJJJJJJJJJJJJJJJJJJJJJ",
                        test::kNow, {.tokens_today = 1000});
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error(), Error::quota_exhausted);
}

}  // namespace
}  // namespace dynaseal::backend
