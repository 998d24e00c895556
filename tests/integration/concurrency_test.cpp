// Many clients at once against one key: a use is consumed atomically, so a single-use key is
// served exactly once however many connections race for it.

#include <latch>
#include <thread>

#include "harness.hpp"

namespace dynaseal::integration {
namespace {

using Concurrency = IntegrationTest;

TEST_F(Concurrency, TwoHundredRacingRequestsWithOneSingleUseKeyServeExactlyOne) {
  start();
  constexpr int kClients = 200;
  Claims c = acme.claims();
  const std::string key = acme.mint(c);
  std::vector<HttpResponse> responses(kClients);
  std::vector<std::string> failures(kClients);
  std::latch connected(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      std::optional<HttpConnection> conn;
      try {
        conn.emplace(port());
      } catch (const std::exception& e) {
        failures[i] = e.what();
      }
      connected.arrive_and_wait();  // every connection is open before anyone sends
      if (!conn) return;
      conn->send_request("POST", "/v1/chat/completions", chat_body(),
                         {{"Authorization", "Bearer " + key}});
      responses[i] = conn->read_response(scaled(30s));
    });
  }
  for (std::thread& t : clients) t.join();

  int ok = 0, exhausted = 0;
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(failures[i], "") << "client " << i;
    if (responses[i].status == 200) {
      ++ok;
      EXPECT_EQ(responses[i].header("x-dynaseal-event-id"), c.jti);
    } else if (responses[i].status == 401 && responses[i].error_code() == "uses_exhausted") {
      ++exhausted;
    } else {
      ADD_FAILURE() << "client " << i << ": " << responses[i].status << " " << responses[i].body;
    }
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(exhausted, kClients - 1);
  EXPECT_EQ(engine->stats().at("requests").as_int64(), 1);
  // Metrics are counted just after each response is written: wait for the last ones.
  std::string m;
  const std::string ok_records = R"(dynaseal_usage_records_total{status="ok"})";
  const std::string refused = R"(dynaseal_auth_failures_total{code="uses_exhausted"})";
  EXPECT_TRUE(eventually(
      [&] {
        m = server->metrics();
        return metric(m, ok_records) == 1 && metric(m, refused) == kClients - 1;
      },
      scaled(3s)));
  EXPECT_EQ(metric(m, ok_records), 1);
  EXPECT_EQ(metric(m, refused), kClients - 1);
}

TEST_F(Concurrency, ManyKeysInParallelAreEachServedOnce) {
  start();
  constexpr int kClients = 32;
  std::vector<std::string> keys;
  for (int i = 0; i < kClients; ++i) keys.push_back(acme.mint());
  std::vector<unsigned> statuses(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      statuses[i] = http_post(port(), "/v1/chat/completions", chat_body(), keys[i]).status;
    });
  }
  for (std::thread& t : clients) t.join();
  for (int i = 0; i < kClients; ++i) EXPECT_EQ(statuses[i], 200u) << "client " << i;
  EXPECT_EQ(engine->stats().at("completed").as_int64(), kClients);
}

}  // namespace
}  // namespace dynaseal::integration
