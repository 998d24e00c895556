// Two replicas of one server (DESIGN §8) on one Redis (uses, budgets, revocations) and one
// PostgreSQL (outbox, registry) behave as one server: a single-use key is served once across
// both, a budget and a revocation are shared, a store that fails closes the door (503) and
// opens it again when it returns, and a replica killed under load loses no usage event.

#include <sys/wait.h>

#include <atomic>
#include <csignal>
#include <latch>
#include <map>
#include <set>
#include <thread>

#include <boost/json.hpp>

#include "harness.hpp"
#include "store/raw_redis.hpp"
#include "store/redis_keys.hpp"
#include "support/postgres_schema.hpp"
#include "support/services.hpp"

namespace dynaseal::integration {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

// The store timeout of the tests that hang Redis on purpose; the others allow a loaded
// machine (500 racing requests under ASan) more time, so that no consume times out there.
constexpr int kStoreTimeoutMs = 300;
constexpr int kRelaxedStoreTimeoutMs = 3000;

class Replicas : public IntegrationTest {
 public:
  // The engine and replicas r1 (`server`) and r2 (`second`) of server llm-1: one identity key,
  // one admin token, the given stores, quick heartbeats (a silent replica is taken over after
  // 2 s).
  void start_replicas(const std::string& store_url, const std::string& db_url) {
    redis_url = store_url;
    engine = std::make_unique<Engine>(dir.path(), engine_options);
    server_options.callback_url = callbacks.url();
    server_options.store = store_url;
    server_options.db = db_url;
    server_options.identity_key = "../server.jwk";
    server_options.admin_token_file = "../admin.token";
    server_options.outbox_toml += "heartbeat_ms = 200\nreplica_timeout = 2\n";
    server = start_replica("r1");
    second = start_replica("r2");
  }

  std::unique_ptr<Server> start_replica(const std::string& name) {
    std::filesystem::create_directories(dir.path() / name);
    ServerOptions o = server_options;
    o.extra_toml += "replica_id = \"" + name +
                    "\"\nstore_timeout_ms = " + std::to_string(store_timeout_ms) + "\n";
    return std::make_unique<Server>(dir.path() / name, engine->url(), acme, o);
  }

  std::uint16_t port_of(int i) const { return i % 2 == 0 ? server->port() : second->port(); }

  HttpResponse chat_on(int i, const std::string& token, const std::string& body = chat_body()) {
    return http_post(port_of(i), "/v1/chat/completions", body, token);
  }

  HttpResponse admin_on(int i, const std::string& target, const std::string& body) {
    return http_request(port_of(i), "POST", target, body, server->admin_token());
  }

  void TearDown() override {
    if (second) {
      const int code = second->process().stop(scaled(15s));
      if (!killed_second_) {
        EXPECT_EQ(code, 0) << "replica r2 did not exit cleanly";
      }
      if (HasFailure()) {
        const std::string log = second->process().log();
        std::cerr << "----- r2 -----\n" << log.substr(log.size() > 16384 ? log.size() - 16384 : 0);
      }
    }
    IntegrationTest::TearDown();
  }

  // Uses taken in Redis whose event may not be recorded yet (the journal, async_use_store.hpp).
  long long journal_entries() {
    testing::RawRedis raw(redis_url);
    return raw.command({"HLEN", store::redis_journal_key("dks", acme.id())})->integer;
  }
  // The keys with a use in the journal (fields are "<jti>.<use>").
  std::set<std::string> journaled_jtis() {
    testing::RawRedis raw(redis_url);
    auto reply = raw.command({"HKEYS", store::redis_journal_key("dks", acme.id())});
    std::set<std::string> jtis;
    for (std::size_t i = 0; i < reply->elements; ++i) {
      const std::string field(reply->element[i]->str, reply->element[i]->len);
      jtis.insert(field.substr(0, field.rfind('.')));
    }
    return jtis;
  }

  std::unique_ptr<Server> second;
  bool killed_second_ = false;
  std::string redis_url;
  int store_timeout_ms = kRelaxedStoreTimeoutMs;
};

// `n` clients, each on its own connection, all connected before any sends; client i talks to
// replica i % 2.
std::vector<HttpResponse> race(int n, const std::function<std::string(int)>& token,
                               const std::function<std::uint16_t(int)>& port,
                               const std::string& body = chat_body()) {
  std::vector<HttpResponse> responses(static_cast<std::size_t>(n));
  std::latch connected(n);
  std::vector<std::thread> clients;
  for (int i = 0; i < n; ++i) {
    clients.emplace_back([&, i] {
      std::optional<HttpConnection> conn;
      try {
        conn.emplace(port(i));
      } catch (const std::exception&) {
      }
      connected.arrive_and_wait();
      if (!conn) return;
      conn->send_request("POST", "/v1/chat/completions", body,
                         {{"Authorization", "Bearer " + token(i)}});
      responses[static_cast<std::size_t>(i)] = conn->read_response(scaled(30s));
    });
  }
  for (std::thread& c : clients) c.join();
  return responses;
}

std::int64_t completion_tokens(const HttpResponse& r) {
  return r.json().at("usage").at("completion_tokens").as_int64();
}

class ReplicasOnRedis : public Replicas {
 protected:
  void SetUp() override { start_replicas(redis.url(), testing::fresh_postgres_url()); }
  testing::RedisServer redis;
};

TEST_F(ReplicasOnRedis, FiveHundredRacingRequestsWithOneSingleUseKeyServeExactlyOne) {
  const std::string key = acme.mint();
  auto responses = race(
      500, [&](int) { return key; }, [&](int i) { return port_of(i); });
  int ok = 0, exhausted = 0;
  std::set<std::uint16_t> served_by;
  for (std::size_t i = 0; i < responses.size(); ++i) {
    const HttpResponse& r = responses[i];
    if (r.status == 200) {
      ++ok;
    } else if (r.status == 401 && r.error_code() == "uses_exhausted") {
      ++exhausted;
      served_by.insert(port_of(static_cast<int>(i)));
    } else {
      ADD_FAILURE() << "client " << i << ": " << r.status << " " << r.body;
    }
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(exhausted, 499);
  EXPECT_EQ(served_by.size(), 2u) << "both replicas refused some";
  EXPECT_EQ(engine->stats().at("requests").as_int64(), 1);
}

TEST_F(ReplicasOnRedis, ABudgetIsSharedAcrossReplicas) {
  Claims c = acme.claims();
  c.dks.uses = 100;
  c.dks.max_tokens = 8;
  // Room for two whole reservations at once (prompt bound = body bytes, plus the cap) and a
  // third with a smaller cap; uses that settle below their reservation make room for more.
  const std::string body = chat_body("demo", "tell me a long story", 8);
  const auto bytes = static_cast<std::int64_t>(body.size());
  const std::int64_t budget = 3 * (bytes + 8) - 4;
  c.dks.budget = budget;
  const std::string key = acme.mint(c);
  // 24 concurrent requests for 8 tokens each: reservations are atomic in Redis, so together
  // they are granted at most the budget, whichever replica each one reached.
  auto responses = race(
      24, [&](int) { return key; }, [&](int i) { return port_of(i); }, body);
  std::int64_t served = 0, total = 0, refused = 0;
  for (const HttpResponse& r : responses) {
    if (r.status == 200) {
      ++served;
      total += r.json().at("usage").at("total_tokens").as_int64();
    } else if (r.error_code() == "budget_exhausted") {
      ++refused;
    } else {
      ADD_FAILURE() << r.status << " " << r.body;
    }
  }
  EXPECT_GE(served, 1);  // more than 3 when early uses settle below their reservation in time
  EXPECT_GE(refused, 1);
  EXPECT_LE(total, budget);  // the hard cap: everything the engine reported, prompts included
  // Once settled, both replicas see the budget spent (prompt tokens count too).
  EXPECT_TRUE(eventually(
      [&] {
        return chat_on(0, key).error_code() == "budget_exhausted" &&
               chat_on(1, key).error_code() == "budget_exhausted";
      },
      scaled(5s)));
}

TEST_F(ReplicasOnRedis, ARevocationThroughOneReplicaIsSeenByTheOtherAtOnce) {
  Claims c = acme.claims();
  c.dks.uses = 10;
  c.sub = "user-7";
  const std::string key = acme.mint(c);
  ASSERT_EQ(chat_on(1, key).status, 200u);
  HttpResponse revoked =
      admin_on(0, "/admin/v1/revocations", R"({"iss":"acme","jti":")" + c.jti + R"("})");
  ASSERT_EQ(revoked.status / 100, 2u) << revoked.body;
  HttpResponse r = chat_on(1, key);  // the very next request, on the other replica
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.error_code(), "token_revoked");

  // By subject, the other way round.
  Claims d = acme.claims();
  d.dks.uses = 10;
  d.sub = "user-8";
  const std::string other = acme.mint(d);
  ASSERT_EQ(chat_on(0, other).status, 200u);
  ASSERT_EQ(admin_on(1, "/admin/v1/revocations", R"({"iss":"acme","sub":"user-8"})").status / 100,
            2u);
  EXPECT_EQ(chat_on(0, other).error_code(), "token_revoked");
}

TEST_F(ReplicasOnRedis, ABackendRegisteredThroughOneReplicaIsServedByTheOtherWithinASecond) {
  Backend beta("beta", dir.path());
  json::object add{
      {"id", "beta"}, {"jwks", json::parse(beta.jwks_json())}, {"callback_url", callbacks.url()}};
  ASSERT_EQ(admin_on(0, "/admin/v1/backends", json::serialize(add)).status, 201u);
  // The other replica polls the registry every second.
  EXPECT_TRUE(eventually([&] { return chat_on(1, beta.mint()).status == 200; }, scaled(3s)));
  ASSERT_EQ(http_request(port_of(1), "DELETE", "/admin/v1/backends/beta", "", server->admin_token())
                    .status /
                100,
            2u);
  EXPECT_TRUE(eventually([&] { return chat_on(0, beta.mint()).error_code() == "issuer_unknown"; },
                         scaled(3s)));
}

// Fails the test unless a request with a fresh key on replica i is refused with 503
// store_unavailable within the store timeout (plus slack for a loaded machine).
void expect_refused_quickly(Replicas& t, int i, const std::string& key) {
  const auto begin = Clock::now();
  HttpResponse r = t.chat_on(i, key);
  const auto took = Clock::now() - begin;
  EXPECT_EQ(r.status, 503u) << r.body;
  EXPECT_EQ(r.error_code(), "store_unavailable");
  EXPECT_LT(took, std::chrono::milliseconds(kStoreTimeoutMs) + scaled(700ms));
}

class ReplicasOnAFailingRedis : public Replicas {
 protected:
  void SetUp() override {
    store_timeout_ms = kStoreTimeoutMs;
    start_replicas(redis.url(), testing::fresh_postgres_url());
  }
  testing::RedisServer redis;
};

TEST_F(ReplicasOnAFailingRedis, ClosesTheDoorWithinTheTimeoutAndOpensItWhenRedisReturns) {
  ASSERT_EQ(chat_on(0, acme.mint()).status, 200u);
  const auto engine_requests = engine->stats().at("requests").as_int64();

  redis.pause();  // hung: connections stay open, nothing answers
  for (int i = 0; i < 4; ++i) expect_refused_quickly(*this, i, acme.mint());
  EXPECT_EQ(http_get(server->port(), "/readyz").status, 503u);
  redis.resume();
  EXPECT_TRUE(eventually([&] { return chat_on(0, acme.mint()).status == 200; }, scaled(5s)));
  EXPECT_TRUE(eventually([&] { return chat_on(1, acme.mint()).status == 200; }, scaled(5s)));

  redis.stop();  // gone: connections refused
  for (int i = 0; i < 4; ++i) expect_refused_quickly(*this, i, acme.mint());
  redis.start();
  EXPECT_TRUE(eventually([&] { return chat_on(0, acme.mint()).status == 200; }, scaled(5s)));
  EXPECT_TRUE(eventually([&] { return chat_on(1, acme.mint()).status == 200; }, scaled(5s)));
  EXPECT_EQ(http_get(second->port(), "/readyz").status, 200u);
  // Nothing was served unchecked: the engine saw only the requests that were answered 200.
  EXPECT_EQ(engine->stats().at("requests").as_int64(), engine_requests + 4);
}

class ReplicasOnASlowEngine : public Replicas {
 protected:
  void SetUp() override {
    engine_options.tokens_per_second = 20;  // a 24-token stream lasts over a second
    start_replicas(redis.url(), testing::fresh_postgres_url());
  }
  testing::RedisServer redis;
};

TEST_F(ReplicasOnASlowEngine, AReplicaKilledUnderLoadLeavesExactlyOneEventPerConsumedUse) {
  // 24 streams of about a second each, half on each replica, all past their consume (their
  // first tokens arrived) when r1 is killed.
  constexpr int kStreams = 24;
  std::vector<std::string> jtis;
  std::vector<std::unique_ptr<HttpConnection>> streams;
  for (int i = 0; i < kStreams; ++i) {
    Claims c = acme.claims();
    c.dks.max_tokens = 24;
    auto conn = std::make_unique<HttpConnection>(port_of(i));
    ASSERT_TRUE(conn->send_request("POST", "/v1/chat/completions",
                                   chat_body("demo", "a long story please", 24, true),
                                   {{"Authorization", "Bearer " + acme.mint(c)}}));
    streams.push_back(std::move(conn));
    jtis.push_back(c.jti);
  }
  for (auto& conn : streams) {
    HttpResponse& r =
        conn->read_until([](const std::string& b) { return sse_data(b).size() >= 2; });
    ASSERT_EQ(r.status, 200u);
  }
  server->process().signal(SIGKILL);
  ASSERT_TRUE(server->process().wait_exit(scaled(5s)).has_value());
  server.reset();  // killed on purpose: no clean exit to check at teardown
  // r2 goes on serving: its own streams finish, new requests are answered.
  for (int i = 1; i < kStreams; i += 2) {
    HttpResponse& r = streams[static_cast<std::size_t>(i)]->read_rest(scaled(20s));
    EXPECT_TRUE(r.complete) << "stream " << i << " on r2";
  }
  Claims after = acme.claims();
  ASSERT_EQ(chat_on(1, acme.mint(after)).status, 200u);
  jtis.push_back(after.jti);

  // r1's streams are reported by r2 once r1 has been silent for replica_timeout (2 s).
  ASSERT_TRUE(callbacks.wait_acknowledged(jtis.size(), scaled(20s)))
      << callbacks.distinct_acknowledged() << " of " << jtis.size();
  for (std::size_t i = 0; i < jtis.size(); ++i) {
    auto event = callbacks.wait_event(jtis[i], 1, 1s);
    ASSERT_TRUE(event.has_value()) << jtis[i];
    const bool on_r1 = i < static_cast<std::size_t>(kStreams) && i % 2 == 0;
    EXPECT_EQ(event->at("status").as_string(), on_r1 ? "interrupted" : "ok") << "stream " << i;
  }
  std::this_thread::sleep_for(scaled(500ms));
  EXPECT_EQ(callbacks.distinct_acknowledged(), jtis.size());
  EXPECT_EQ(callbacks.ids_with_two_bodies(), std::vector<std::string>{});
  EXPECT_EQ(metric(second->metrics(), "dynaseal_outbox_recovered_total"), kStreams / 2);
}

class ReplicasOnOwnPostgres : public Replicas {
 protected:
  void SetUp() override { start_replicas(redis.url(), postgres.url()); }
  testing::RedisServer redis;
  testing::PostgresServer postgres;
};

TEST_F(ReplicasOnOwnPostgres, CallbacksQueuedBeforeAPostgresRestartAreDeliveredAfterIt) {
  callbacks.answer_with(503);  // the backend is down: events stay pending in PostgreSQL
  std::vector<std::string> served, refused;
  for (int i = 0; i < 10; ++i) {
    Claims c = acme.claims();
    ASSERT_EQ(chat_on(i, acme.mint(c)).status, 200u);
    served.push_back(c.jti);
  }
  postgres.stop();
  // While PostgreSQL is down no use can be recorded, so none is served. The first request on
  // each replica takes its use before finding that out: the journal reports that use as
  // interrupted once PostgreSQL is back. The replica then refuses before taking uses, but for
  // one probe every 250 ms, so the other keys are not spent.
  std::vector<std::pair<std::string, std::string>> held;  // jti, token
  for (int i = 0; i < 8; ++i) {
    Claims c = acme.claims();
    held.emplace_back(c.jti, acme.mint(c));
    EXPECT_EQ(chat_on(i, held.back().second).error_code(), "store_unavailable");
    refused.push_back(c.jti);
  }
  const std::set<std::string> spent = journaled_jtis();
  EXPECT_GE(spent.size(), 2u) << "each replica's first request took its use";
  EXPECT_LT(spent.size(), 8u) << "the others were refused before they took one";
  std::erase_if(refused, [&](const std::string& jti) { return !spent.contains(jti); });
  postgres.start();
  callbacks.answer_with(204);
  for (int i = 0; i < 4; ++i) {
    // A fresh key per attempt: a use taken while the database was still unreachable is gone.
    EXPECT_TRUE(eventually(
        [&] {
          Claims c = acme.claims();
          const HttpResponse r = chat_on(i, acme.mint(c));
          if (r.status == 200) {
            served.push_back(c.jti);
          } else if (journaled_jtis().contains(c.jti)) {
            refused.push_back(c.jti);  // a probe: its use was taken
          }
          return r.status == 200;
        },
        scaled(10s)));
  }
  // The keys refused before their use was taken still work.
  for (int i = 0; i < 8; ++i) {
    const auto& [jti, token] = held[static_cast<std::size_t>(i)];
    const HttpResponse r = chat_on(i, token);
    if (spent.contains(jti)) {
      EXPECT_EQ(r.error_code(), "uses_exhausted") << jti;
    } else {
      EXPECT_EQ(r.status, 200u) << jti << ": " << r.body;
      served.push_back(jti);
    }
  }
  const std::size_t events = served.size() + refused.size();
  ASSERT_TRUE(callbacks.wait_acknowledged(events, scaled(20s)))
      << callbacks.distinct_acknowledged() << " of " << events;
  for (const auto& [jtis, status] :
       {std::pair{&served, "ok"}, std::pair{&refused, "interrupted"}}) {
    for (const std::string& jti : *jtis) {
      auto event = callbacks.wait_event(jti, 1, 1s);
      ASSERT_TRUE(event.has_value()) << jti;
      EXPECT_EQ(event->at("status").as_string(), status) << jti;
    }
  }
  EXPECT_TRUE(eventually([&] { return journal_entries() == 0; }, scaled(5s)));
  EXPECT_EQ(metric(server->metrics(), "dynaseal_outbox_journal_replayed_total") +
                metric(second->metrics(), "dynaseal_outbox_journal_replayed_total"),
            static_cast<double>(refused.size()));
}

TEST_F(ReplicasOnOwnPostgres, AReplicaKilledBetweenTakingAUseAndRecordingItStillReportsIt) {
  // The outbox locked: r1 takes each use in Redis, then waits for its record's INSERT.
  testing::PostgresSession locker(postgres.url());
  locker.exec("BEGIN");
  locker.exec("LOCK TABLE outbox IN EXCLUSIVE MODE");
  constexpr int kRequests = 6;
  std::vector<std::string> jtis, tokens;
  std::vector<std::unique_ptr<HttpConnection>> waiting;
  for (int i = 0; i < kRequests; ++i) {
    Claims c = acme.claims();
    tokens.push_back(acme.mint(c));
    auto conn = std::make_unique<HttpConnection>(server->port());
    ASSERT_TRUE(conn->send_request("POST", "/v1/chat/completions", chat_body(),
                                   {{"Authorization", "Bearer " + tokens.back()}}));
    waiting.push_back(std::move(conn));
    jtis.push_back(c.jti);
  }
  ASSERT_TRUE(eventually([&] { return journal_entries() == kRequests; }, scaled(10s)))
      << journal_entries() << " uses taken";
  server->process().signal(SIGKILL);
  ASSERT_TRUE(server->process().wait_exit(scaled(5s)).has_value());
  server.reset();  // killed on purpose: no clean exit to check at teardown
  locker.exec("ROLLBACK");

  // r2 reports them once they are replica_timeout (2 s) old.
  ASSERT_TRUE(callbacks.wait_acknowledged(jtis.size(), scaled(20s)))
      << callbacks.distinct_acknowledged() << " of " << jtis.size();
  for (const std::string& jti : jtis) {
    auto event = callbacks.wait_event(jti, 1, 1s);
    ASSERT_TRUE(event.has_value()) << jti;
    EXPECT_EQ(event->at("status").as_string(), "interrupted");
    EXPECT_EQ(event->at("use").as_int64(), 1);
  }
  std::this_thread::sleep_for(scaled(500ms));
  EXPECT_EQ(callbacks.distinct_acknowledged(), jtis.size());
  EXPECT_EQ(callbacks.ids_with_two_bodies(), std::vector<std::string>{});
  EXPECT_EQ(metric(second->metrics(), "dynaseal_outbox_journal_replayed_total"), kRequests);
  EXPECT_EQ(journal_entries(), 0);
  EXPECT_EQ(engine->stats().at("requests").as_int64(), 0) << "nothing was served";
  // The uses stay spent, and r2 serves new keys.
  EXPECT_EQ(chat_on(1, tokens[0]).error_code(), "uses_exhausted");
  EXPECT_EQ(chat_on(1, acme.mint()).status, 200u);
}

}  // namespace
}  // namespace dynaseal::integration
