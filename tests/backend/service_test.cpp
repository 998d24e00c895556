// The backend's HTTP surface answered in process (BackendService::answer): every minting refusal
// with its status and code, the success shape the edge client relies on, and callbacks from
// signature to ledger.

#include "backend/service.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "backend/registration.hpp"
#include "backend/sqlite_store.hpp"
#include "backend/user_token.hpp"
#include "backend_fixture.hpp"
#include "core/dynamic_key.hpp"
#include "core/jwk.hpp"

namespace dynaseal::backend {
namespace {

namespace http = net::http;
namespace json = boost::json;
using test::EventSpec;
using test::kNow;

struct Reply {
  unsigned status = 0;
  json::value body{};
  std::string code() const {
    const auto* e = body.is_object() ? body.as_object().if_contains("error") : nullptr;
    return e ? std::string(e->at("code").as_string()) : "";
  }
};

class Service : public ::testing::Test {
 protected:
  Service()
      : config(test::test_config(dir.path())),
        keys(config.signing_key),
        stores([this] { return open_sqlite_store(config.db_path); }),
        writer(*open_sqlite_store(config.db_path)),
        service(config, stores, writer, keys, [this] { return now_ms; }) {
    config.access_log = false;
    store = *stores.local();
  }

  // Adds a user and returns its token.
  std::string user(const std::string& name, const std::string& plan, std::int64_t credit = 0) {
    const std::string token = new_user_token();
    EXPECT_TRUE(store->add_user({.name = name,
                                 .plan = plan,
                                 .token_sha256 = token_sha256(token),
                                 .credit_micros = credit,
                                 .now = kNow}));
    return token;
  }

  Reply call(http::verb method, std::string target, std::string body = "",
             const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    net::Request req{method, target, 11};
    for (const auto& [name, value] : headers) req.set(name, value);
    req.body() = std::move(body);
    req.prepare_payload();
    net::Response res;
    net::asio::io_context io;
    net::asio::co_spawn(io, service.answer(req), [&](std::exception_ptr e, net::Response r) {
      if (e) std::rethrow_exception(e);
      res = std::move(r);
    });
    io.run();
    Reply r{.status = res.result_int()};
    boost::system::error_code ec;
    r.body = json::parse(res.body(), ec);
    return r;
  }
  Reply mint(const std::string& token, std::string body = R"({"model":"demo"})") {
    return call(http::verb::post, "/v1/keys", std::move(body),
                {{"Authorization", "Bearer " + token}});
  }
  Reply deliver(const test::Delivery& d) {
    return call(http::verb::post, "/v1/callbacks/usage", d.body,
                {{"webhook-id", d.id},
                 {"webhook-timestamp", d.timestamp},
                 {"webhook-signature", d.signature}});
  }
  void pin() {
    const std::string jwks = jwks_json({make_public_jwk(server_key.public_key())});
    ASSERT_TRUE(
        store->pin_server({.id = "llm-1", .url = "http://x", .jwks = jwks, .pinned_at = kNow}));
  }
  // Reports `tokens` of use of the key minted in `minted`.
  Reply report(const Reply& minted, std::int64_t prompt, std::int64_t completion, int use = 1) {
    EventSpec e;
    e.event_id = std::string(minted.body.at("event_id").as_string());
    e.use = use;
    e.prompt = prompt;
    e.completion = completion;
    return deliver(test::sign_event(server_key, e, now_ms / 1000));
  }

  testing::TempDir dir;
  BackendConfig config;
  SigningKeySource keys;
  StorePool stores;
  UsageWriter writer;
  std::int64_t now_ms = kNow * 1000;
  BackendService service;
  BackendStore* store = nullptr;
  const SigningKey server_key = testing::seeded_key(31);
};

TEST_F(Service, MintsAKeyInTheExactShapeTheEdgeClientReads) {
  const std::string token = user("bob", "free");
  Reply r = mint(token, R"({"model":"demo","max_tokens":50,"uses":1})");
  ASSERT_EQ(r.status, 200u) << json::serialize(r.body);
  const json::object& o = r.body.as_object();
  EXPECT_EQ(o.size(), 4u);
  EXPECT_EQ(o.at("expires_at").as_int64(), kNow + 60);
  EXPECT_EQ(o.at("server").as_object().at("id").as_string(), "llm-1");
  EXPECT_EQ(o.at("server").as_object().at("url").as_string(), "http://127.0.0.1:8000");
  IssuerRegistry registry;
  registry.set_issuer("acme", {make_public_jwk(keys.current(now_ms)->key.public_key())});
  auto key = verify_key(std::string(o.at("key").as_string()), registry, "llm-1", kNow);
  ASSERT_TRUE(key) << to_string(key.error());
  EXPECT_EQ(key->claims.jti, o.at("event_id").as_string());
  EXPECT_EQ(key->claims.jti.size(), 22u);  // 128 random bits
  EXPECT_EQ(key->claims.sub, "bob");
  EXPECT_EQ(key->claims.exp - key->claims.iat, 60);
  EXPECT_EQ(key->claims.dks.models, std::vector<std::string>{"demo"});
  EXPECT_EQ(key->claims.dks.max_tokens, 50);
  EXPECT_EQ(key->claims.dks.uses, 1);
  EXPECT_EQ(key->claims.dks.budget, 50);
  EXPECT_EQ(key->kid, keys.current(now_ms)->kid);
}

TEST_F(Service, RefusesWithoutOrWithAnUnknownUserToken) {
  user("bob", "free");
  Reply none = call(http::verb::post, "/v1/keys", R"({"model":"demo"})");
  EXPECT_EQ(none.status, 401u);
  EXPECT_EQ(none.code(), "token_missing");
  for (const std::string& wrong :
       {std::string("short"), new_user_token(), std::string(kUserTokenChars, 'A')}) {
    Reply r = mint(wrong);
    EXPECT_EQ(r.status, 401u);
    EXPECT_EQ(r.code(), "user_unknown");
  }
}

TEST_F(Service, RefusesMalformedBodiesAfterAuthentication) {
  const std::string token = user("bob", "free");
  EXPECT_EQ(mint(token, "{").code(), "body_malformed");
  EXPECT_EQ(mint(token, R"({"model":"demo","model":"demo"})").code(), "body_malformed");
  Reply missing = mint(token, "{}");
  EXPECT_EQ(missing.status, 400u);
  EXPECT_EQ(missing.code(), "model_missing");
  EXPECT_EQ(mint("nobody-0123456789012345678901234567890123", "{").code(), "user_unknown");
}

TEST_F(Service, RefusesWhatThePlanDoesNotAllowWith403) {
  const std::string token = user("bob", "free");
  for (const auto& [body, code] : std::vector<std::pair<std::string, std::string>>{
           {R"({"model":"other"})", "model_not_allowed"},
           {R"({"model":"demo","max_tokens":101})", "max_tokens_exceeded"},
           {R"({"model":"demo","uses":3})", "uses_not_allowed"}}) {
    Reply r = mint(token, body);
    EXPECT_EQ(r.status, 403u) << body;
    EXPECT_EQ(r.code(), code) << body;
  }
}

TEST_F(Service, RateLimitsMintsPerUser) {
  const std::string bob = user("bob", "free"), carol = user("carol", "free");
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(mint(bob, R"({"model":"demo","max_tokens":1})").status, 200u);
  Reply r = mint(bob);
  EXPECT_EQ(r.status, 429u);
  EXPECT_EQ(r.code(), "rate_limited");
  EXPECT_EQ(mint(carol).status, 200u);
  now_ms += 20'000;
  EXPECT_EQ(mint(bob).status, 200u);
}

TEST_F(Service, AQuotaSpentByReportedUseIsQuotaExhausted) {
  pin();
  const std::string token = user("bob", "free");  // 1000 tokens a day
  Reply first = mint(token);
  ASSERT_EQ(first.status, 200u);
  ASSERT_EQ(report(first, 600, 350).status, 200u);  // 950 used
  Reply second = mint(token);
  ASSERT_EQ(second.status, 200u);
  EXPECT_EQ(second.body.at("key").as_string().size() > 0, true);
  // Its budget is what was left: 50 tokens, reserved until reported.
  IssuerRegistry registry;
  registry.set_issuer("acme", {make_public_jwk(keys.current(now_ms)->key.public_key())});
  auto k = verify_key(std::string(second.body.at("key").as_string()), registry, "llm-1", kNow);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->claims.dks.budget, 50);
  now_ms += 60'000;  // let the rate limit refill
  Reply third = mint(token);
  EXPECT_EQ(third.status, 402u);
  EXPECT_EQ(third.code(), "quota_exhausted");
  // The next UTC day starts afresh (and the reservation has expired by then).
  now_ms += 86'400'000;
  EXPECT_EQ(mint(token).status, 200u);
}

TEST_F(Service, PrepaidCreditLimitsTheBudgetAndIsDebitedAtThePlansPrices) {
  pin();
  const std::string token = user("carol", "pro", 3'000);  // 0.003: 2 tokens at 1.50 / 1k
  Reply minted = mint(token);
  ASSERT_EQ(minted.status, 200u);
  ASSERT_EQ(report(minted, 1, 1).status, 200u);
  auto carol = *store->find_user("carol");
  EXPECT_EQ(carol->credit_micros, 3'000 - 2'000);  // ceil((1×500000 + 1×1500000) / 1000)
  now_ms += 1000;
  Reply r = mint(token);  // 1000 µ pays for 0.66 tokens at 1.50 / 1k
  EXPECT_EQ(r.status, 402u);
  EXPECT_EQ(r.code(), "credit_exhausted");
  EXPECT_EQ(mint(token, R"({"model":"other"})").status, 200u);  // a free model
}

TEST_F(Service, StoresASignedCallbackOnceAndAcknowledgesReplays) {
  pin();
  user("bob", "free");
  const test::Delivery d = test::sign_event(server_key, EventSpec{});
  Reply first = deliver(d);
  ASSERT_EQ(first.status, 200u) << json::serialize(first.body);
  EXPECT_FALSE(first.body.at("duplicate").as_bool());
  Reply again = deliver(d);
  EXPECT_EQ(again.status, 200u);
  EXPECT_TRUE(again.body.at("duplicate").as_bool());
  auto events = store->events({});
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ(events->front().body, d.body);
  EXPECT_EQ(events->front().user, "bob");
}

TEST_F(Service, RefusesCallbacksThatAreNotFromThePinnedServer) {
  const test::Delivery d = test::sign_event(server_key, EventSpec{});
  Reply unpinned = deliver(d);
  EXPECT_EQ(unpinned.status, 401u);
  EXPECT_EQ(unpinned.code(), "server_unknown");
  pin();
  Reply forged = deliver(test::sign_event(testing::seeded_key(32), EventSpec{}));
  EXPECT_EQ(forged.status, 401u);
  EXPECT_EQ(forged.code(), "signature_invalid");
  Reply stale = deliver(test::sign_event(server_key, EventSpec{}, kNow - 301));
  EXPECT_EQ(stale.status, 401u);
  EXPECT_EQ(stale.code(), "timestamp_stale");
  EventSpec other;
  other.server = "llm-2";
  Reply wrong_server = deliver(test::sign_event(server_key, other));
  EXPECT_EQ(wrong_server.status, 400u);
  EXPECT_EQ(wrong_server.code(), "webhook_malformed");
  Reply no_headers = call(http::verb::post, "/v1/callbacks/usage", EventSpec{}.body());
  EXPECT_EQ(no_headers.status, 400u);
  EXPECT_EQ(store->events({})->size(), 0u);
}

TEST_F(Service, ARepinnedServerIdentityTakesEffectWithinASecond) {
  pin();
  ASSERT_EQ(deliver(test::sign_event(server_key, EventSpec{})).status, 200u);
  const SigningKey rotated = testing::seeded_key(33);
  ASSERT_TRUE(store->pin_server({.id = "llm-1",
                                 .url = "http://x",
                                 .jwks = jwks_json({make_public_jwk(rotated.public_key())}),
                                 .pinned_at = kNow}));
  EventSpec next;
  next.use = 2;
  // The pinned keys are read at most once a second: the old identity is still trusted...
  EXPECT_EQ(deliver(test::sign_event(rotated, next)).code(), "signature_invalid");
  now_ms += BackendService::kPinnedKeysTtlMs;
  // ...and then only the new one.
  EXPECT_EQ(deliver(test::sign_event(rotated, next, now_ms / 1000)).status, 200u);
  next.use = 3;
  EXPECT_EQ(deliver(test::sign_event(server_key, next, now_ms / 1000)).code(), "signature_invalid");
}

TEST_F(Service, AnswersUnknownPathsAndMethods) {
  EXPECT_EQ(call(http::verb::get, "/v1/nothing").code(), "not_found");
  EXPECT_EQ(call(http::verb::get, "/v1/keys").code(), "method_not_allowed");
  EXPECT_EQ(call(http::verb::post, "/healthz").code(), "method_not_allowed");
  EXPECT_EQ(call(http::verb::get, "/healthz").status, 200u);
  Reply jwks = call(http::verb::get, "/.well-known/jwks.json");
  ASSERT_EQ(jwks.status, 200u);
  EXPECT_TRUE(jwks.body.at("keys").as_array().empty());  // activated by BackendApp at start
}

TEST(RetireAfter, WaitsForTheSwitchAndForTheLastSignedKeyToExpire) {
  SigningKeyRecord k{
      .kid = "a", .state = KeyState::retiring, .created_at = 100, .rotated_at = 1000};
  EXPECT_EQ(retire_after(k, 30), 1000 + kSwitchMargin);  // it signed nothing
  k.last_expiry = 1100;
  EXPECT_EQ(retire_after(k, 30), 1130);
  k.last_expiry = 900;
  EXPECT_EQ(retire_after(k, 30), 1000 + kSwitchMargin);
  EXPECT_EQ(retire_after(k, 0), 1000 + kSwitchMargin);
  k.last_expiry = 5000;
  EXPECT_EQ(retire_after(k, 3600), 8600);
}

}  // namespace
}  // namespace dynaseal::backend
