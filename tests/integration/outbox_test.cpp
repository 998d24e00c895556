// Usage callbacks end to end: the real server delivers signed events from its durable outbox to
// a receiver (CallbackReceiver) that the tests take down, bring back, and outlive the server.
#include <csignal>
#include <map>
#include <set>
#include <thread>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "harness.hpp"
#include "store/sqlite.hpp"

namespace dynaseal::integration {
namespace {

using namespace std::chrono_literals;
using Outbox = IntegrationTest;

std::int64_t total_tokens(const boost::json::object& usage_holder) {
  return usage_holder.at("usage").at("total_tokens").as_int64();
}

TEST_F(Outbox, NRequestsGiveNSignedEventsWithTheEnginesTokenCounts) {
  start();
  constexpr int kRequests = 12;
  std::vector<std::pair<std::string, std::int64_t>> expected;  // jti, total tokens
  for (int i = 0; i < kRequests; ++i) {
    Claims c = acme.claims();
    c.dks.max_tokens = 5 + i;
    const bool stream = i % 2 == 1;
    HttpResponse r =
        chat(acme.mint(c), chat_body("demo", "prompt number " + std::to_string(i), std::nullopt,
                                     stream, stream ? std::optional(true) : std::nullopt));
    ASSERT_EQ(r.status, 200u) << r.body;
    std::int64_t total = 0;
    if (stream) {
      auto data = sse_data(r.body);
      ASSERT_GE(data.size(), 2u);
      total = total_tokens(boost::json::parse(data[data.size() - 2]).as_object());
    } else {
      total = total_tokens(r.json().as_object());
    }
    expected.emplace_back(c.jti, total);
  }
  ASSERT_TRUE(callbacks.wait_acknowledged(kRequests, scaled(10s)));
  const PublicKey identity = server->identity();
  for (const auto& [jti, total] : expected) {
    auto event = callbacks.wait_event(jti, 1, 1s);
    ASSERT_TRUE(event.has_value()) << jti;
    EXPECT_EQ(event->at("status").as_string(), "ok");
    EXPECT_EQ(event->at("iss").as_string(), "acme");
    EXPECT_EQ(event->at("server").as_string(), "llm-1");
    EXPECT_EQ(total_tokens(*event), total) << "the engine's own count, for " << jti;
    EXPECT_EQ(callbacks.acknowledged(jti + ".1"), 1u);
  }
  for (const ReceivedCallback& c : callbacks.received()) {
    EXPECT_TRUE(signed_by(c, identity)) << c.id;
  }
  EXPECT_EQ(callbacks.received().size(), static_cast<std::size_t>(kRequests)) << "none twice";
  EXPECT_TRUE(eventually(
      [&] { return metric(server->metrics(), "dynaseal_outbox_delivered_total") == kRequests; },
      scaled(3s)));
}

TEST_F(Outbox, EveryEventArrivesOnceAfterTheReceiverWasDown) {
  callbacks.answer_with(503);
  start();
  constexpr int kRequests = 8;
  std::vector<std::string> jtis;
  for (int i = 0; i < kRequests; ++i) {
    Claims c = acme.claims();
    ASSERT_EQ(chat(acme.mint(c)).status, 200u);
    jtis.push_back(c.jti);
  }
  // Refused at least twice each (the retries back off from 100 ms in this test's config).
  EXPECT_TRUE(
      eventually([&] { return callbacks.received().size() >= 2 * kRequests; }, scaled(10s)));
  EXPECT_EQ(callbacks.distinct_acknowledged(), 0u);
  EXPECT_GE(metric(server->metrics(), "dynaseal_outbox_retried_total"), kRequests);
  callbacks.answer_with(204);
  ASSERT_TRUE(callbacks.wait_acknowledged(kRequests, scaled(10s)));
  std::this_thread::sleep_for(scaled(500ms));  // room for a wrong second delivery
  for (const std::string& jti : jtis) {
    EXPECT_EQ(callbacks.acknowledged(jti + ".1"), 1u) << jti;
  }
}

TEST_F(Outbox, RequestsCutOffByAKillAreReportedAsInterruptedAfterTheRestart) {
  engine_options.tokens_per_second = 10;
  start();
  // One request that completes before the kill.
  Claims done = acme.claims();
  ASSERT_EQ(chat(acme.mint(done)).status, 200u);
  // Three streams in the middle of their answers.
  std::vector<std::unique_ptr<HttpConnection>> streams;
  std::vector<std::string> cut;
  for (int i = 0; i < 3; ++i) {
    Claims c = acme.claims();
    c.dks.max_tokens = 50;
    auto s = std::make_unique<HttpConnection>(port());
    ASSERT_TRUE(s->send_request("POST", "/v1/chat/completions",
                                chat_body("demo", "a long story", std::nullopt, true),
                                {{"Authorization", "Bearer " + acme.mint(c)}}));
    HttpResponse& r = s->read_until([](const std::string& b) { return sse_data(b).size() >= 2; });
    ASSERT_EQ(r.status, 200u);
    streams.push_back(std::move(s));
    cut.push_back(c.jti);
  }
  server->process().signal(SIGKILL);
  ASSERT_TRUE(server->process().wait_exit(scaled(5s)).has_value());
  streams.clear();
  server = std::make_unique<Server>(dir.path(), engine->url(), acme, server_options);

  ASSERT_TRUE(callbacks.wait_acknowledged(4, scaled(10s)));
  auto ok = callbacks.wait_event(done.jti, 1, 1s);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->at("status").as_string(), "ok");
  for (const std::string& jti : cut) {
    auto event = callbacks.wait_event(jti, 1, 1s);
    ASSERT_TRUE(event.has_value()) << jti;
    EXPECT_EQ(event->at("status").as_string(), "interrupted");
    // The engine may have read the prompt: its bound (the body's bytes here) is billed, marked
    // as an estimate; no completion is claimed.
    const auto bytes =
        static_cast<std::int64_t>(chat_body("demo", "a long story", std::nullopt, true).size());
    EXPECT_EQ(total_tokens(*event), bytes);
    EXPECT_EQ(event->at("usage").at("completion_tokens").as_int64(), 0);
    EXPECT_EQ(event->at("usage_estimate").as_string(), "prompt_bound");
  }
  std::this_thread::sleep_for(scaled(300ms));
  // Delivery is at least once: an event acknowledged just before the kill, whose outcome the
  // dying server had not yet committed, goes out again after the restart. It is then the same
  // event (same webhook-id, same bytes), which the backend stores once (BackendTest covers
  // that end to end); what must never happen is a different body for one webhook-id.
  EXPECT_EQ(callbacks.distinct_acknowledged(), 4u);
  EXPECT_EQ(callbacks.ids_with_two_bodies(), std::vector<std::string>{});
}

TEST_F(Outbox, ASingleUseKeyStaysUsedAcrossARestart) {
  start();
  const std::string key = acme.mint();
  ASSERT_EQ(chat(key).status, 200u);
  ASSERT_EQ(server->process().stop(scaled(10s)), 0);
  server = std::make_unique<Server>(dir.path(), engine->url(), acme, server_options);
  HttpResponse again = chat(key);
  EXPECT_EQ(again.status, 401u);
  EXPECT_NE(again.body.find("uses_exhausted"), std::string::npos) << again.body;
}

TEST_F(Outbox, AMultiUseKeyKeepsCountingItsUsesAcrossARestart) {
  start();
  Claims c = acme.claims();
  c.dks.uses = 3;
  const std::string key = acme.mint(c);
  ASSERT_EQ(chat(key).status, 200u);
  ASSERT_EQ(server->process().stop(scaled(10s)), 0);
  server = std::make_unique<Server>(dir.path(), engine->url(), acme, server_options);
  // The restarted server knows use 1 was taken: uses 2 and 3 are served, then no more.
  EXPECT_EQ(chat(key).status, 200u);
  EXPECT_EQ(chat(key).status, 200u);
  HttpResponse fourth = chat(key);
  EXPECT_EQ(fourth.status, 401u);
  EXPECT_NE(fourth.body.find("uses_exhausted"), std::string::npos) << fourth.body;
  for (std::int64_t use = 1; use <= 3; ++use) {
    auto event = callbacks.wait_event(c.jti, use, scaled(10s));
    ASSERT_TRUE(event.has_value()) << use;
    EXPECT_EQ(event->at("status").as_string(), "ok");
  }
}

// The open log: a request's record is durable once appended to it, before the database has it.
// Locked by another process, the database takes nothing, yet requests go on; a kill then loses
// no use.
TEST_F(Outbox, UsesTakenWhileTheDatabaseWasLockedAreReportedAfterAKill) {
  engine_options.tokens_per_second = 10;
  start();
  Claims first = acme.claims();
  ASSERT_EQ(chat(acme.mint(first)).status, 200u);
  ASSERT_TRUE(callbacks.wait_event(first.jti, 1, scaled(10s)).has_value());

  auto opened = store::Sqlite::open(dir.path() / "server.db", {.create = false});
  ASSERT_TRUE(opened);
  auto lock = std::make_unique<store::Sqlite>(std::move(*opened));
  ASSERT_TRUE(lock->exec("BEGIN IMMEDIATE"));  // every other writer now waits
  std::vector<std::unique_ptr<HttpConnection>> streams;
  std::vector<std::string> cut, keys;
  for (int i = 0; i < 3; ++i) {
    Claims c = acme.claims();
    c.dks.max_tokens = 50;
    keys.push_back(acme.mint(c));
    auto s = std::make_unique<HttpConnection>(port());
    ASSERT_TRUE(s->send_request("POST", "/v1/chat/completions",
                                chat_body("demo", "a long story", std::nullopt, true),
                                {{"Authorization", "Bearer " + keys.back()}}));
    HttpResponse& r = s->read_until([](const std::string& b) { return sse_data(b).size() >= 2; });
    ASSERT_EQ(r.status, 200u) << "served although the database takes no writes";
    streams.push_back(std::move(s));
    cut.push_back(c.jti);
  }
  server->process().signal(SIGKILL);
  ASSERT_TRUE(server->process().wait_exit(scaled(5s)).has_value());
  streams.clear();
  ASSERT_TRUE(lock->exec("ROLLBACK"));
  lock.reset();
  server = std::make_unique<Server>(dir.path(), engine->url(), acme, server_options);

  for (const std::string& jti : cut) {
    auto event = callbacks.wait_event(jti, 1, scaled(10s));
    ASSERT_TRUE(event.has_value()) << jti;
    EXPECT_EQ(event->at("status").as_string(), "interrupted");
  }
  std::this_thread::sleep_for(scaled(300ms));
  EXPECT_EQ(callbacks.distinct_acknowledged(), 4u);
  EXPECT_EQ(callbacks.ids_with_two_bodies(), std::vector<std::string>{});
  HttpResponse again = chat(keys[0]);
  EXPECT_EQ(again.status, 401u) << "the restarted server knows the key is spent";
  EXPECT_NE(again.body.find("uses_exhausted"), std::string::npos) << again.body;
}

TEST_F(Outbox, DeadLettersAreVisibleAndReplayable) {
  server_options.outbox_toml =
      "[outbox]\nretry_base_ms = 100\nretry_max_delay = 1\npoll_ms = 50\nmax_age = 1\n";
  callbacks.answer_with(500);
  start();
  Claims c = acme.claims();
  ASSERT_EQ(chat(acme.mint(c)).status, 200u);
  const std::string admin = server->admin_token();
  HttpResponse dead;
  ASSERT_TRUE(eventually(
      [&] {
        dead = http_get(port(), "/admin/v1/outbox/dead", admin);
        return dead.body.find(c.jti + ".1") != std::string::npos;
      },
      scaled(10s)))
      << dead.body;
  auto list = dead.json().at("dead").as_array();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].at("last_error").as_string(), "http 500");
  EXPECT_EQ(list[0].at("event").at("event_id").as_string(), c.jti);
  auto stats = http_get(port(), "/admin/v1/outbox", admin).json().as_object();
  EXPECT_EQ(stats.at("dead").as_int64(), 1);
  EXPECT_GE(metric(server->metrics(), "dynaseal_outbox_dead_lettered_total"), 1);

  callbacks.answer_with(204);
  EXPECT_EQ(http_post(port(), "/admin/v1/outbox/replay", R"({"foo":1})", admin).status, 400u);
  // The operator's way: dynaseal outbox, reading the address and token from the config.
  const std::string config = (dir.path() / "server.toml").string();
  const std::string url = "http://127.0.0.1:" + std::to_string(port());
  Process listed({"outbox", "dead", "--config", config, "--server", url}, dir.path() / "cli.log");
  EXPECT_EQ(listed.wait_for_line("1 dead letter", scaled(10s)), "(s)");
  EXPECT_EQ(listed.wait_exit(scaled(5s)), 0);
  Process replayed({"outbox", "replay", "--config", config, "--server", url, "--iss", "acme",
                    "--webhook-id", c.jti + ".1"},
                   dir.path() / "cli.log");
  EXPECT_EQ(replayed.wait_for_line("replayed ", scaled(10s)), "1");
  EXPECT_EQ(replayed.wait_exit(scaled(5s)), 0);
  EXPECT_TRUE(callbacks.wait_event(c.jti, 1, scaled(5s)).has_value());
}

TEST_F(Outbox, BackendsRegisteredThroughTheAdminApiSurviveARestart) {
  start();
  const std::string admin = server->admin_token();
  Backend beta("beta", dir.path());
  HttpResponse added = http_post(port(), "/admin/v1/backends",
                                 R"({"id":"beta","jwks":)" + beta.jwks_json() +
                                     R"(,"callback_url":")" + callbacks.url() + R"("})",
                                 admin);
  ASSERT_EQ(added.status, 201u) << added.body;
  ASSERT_EQ(server->process().stop(scaled(10s)), 0);
  server = std::make_unique<Server>(dir.path(), engine->url(), acme, server_options);
  EXPECT_EQ(http_get(port(), "/admin/v1/backends/beta", admin).status, 200u);
  Claims c = beta.claims();
  HttpResponse served = chat(beta.mint(c));
  EXPECT_EQ(served.status, 200u) << served.body;
  auto event = callbacks.wait_event(c.jti, 1, scaled(5s));
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->at("iss").as_string(), "beta");
}

}  // namespace
}  // namespace dynaseal::integration
