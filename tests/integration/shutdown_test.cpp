// Graceful shutdown: SIGTERM stops accepting, lets in-flight requests finish within the grace
// period, and the process exits 0.

#include <signal.h>

#include <thread>

#include "harness.hpp"

namespace dynaseal::integration {
namespace {

using Clock = std::chrono::steady_clock;

using Shutdown = IntegrationTest;

TEST_F(Shutdown, SigtermLetsAnInFlightStreamFinishAndExitsZero) {
  engine_options.tokens_per_second = 20;
  server_options.grace_s = 10;
  start();
  Claims c = acme.claims();
  c.dks.max_tokens = 20;  // about a second of tokens
  HttpConnection stream(port());
  ASSERT_TRUE(stream.send_request("POST", "/v1/chat/completions",
                                  chat_body("demo", "tell me", std::nullopt, true),
                                  {{"Authorization", "Bearer " + acme.mint(c)}}));
  HttpResponse& r =
      stream.read_until([](const std::string& body) { return sse_data(body).size() >= 3; });
  ASSERT_EQ(r.status, 200u) << r.body;
  ASSERT_FALSE(r.complete);

  server->process().signal(SIGTERM);
  // New connections are refused (or closed at once) while the stream goes on.
  std::this_thread::sleep_for(200ms);
  try {
    HttpConnection late(port());
    late.send_request("GET", "/healthz", "");
    HttpResponse refused = late.read_response(scaled(2s));
    EXPECT_EQ(refused.status, 0u) << "a connection after SIGTERM was served: " << refused.body;
  } catch (const std::exception&) {
    // connection refused: the acceptors are closed
  }

  stream.read_rest(scaled(10s));
  EXPECT_TRUE(r.complete) << r.body;
  const std::vector<std::string> data = sse_data(r.body);
  ASSERT_FALSE(data.empty());
  EXPECT_EQ(data.back(), "[DONE]");
  EXPECT_EQ(r.body.find("\"error\""), std::string::npos) << r.body;

  const std::optional<int> code = server->process().wait_exit(scaled(5s));
  ASSERT_TRUE(code.has_value()) << "the server did not exit after its last request";
  EXPECT_EQ(*code, 0);
  // The server drains its outbox before it exits: the finished stream's event went out.
  const auto received = callbacks.received();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_NE(received[0].body.find("\"status\":\"ok\""), std::string::npos) << received[0].body;
}

// Operators (and process managers) often signal twice. The second SIGTERM must not take the
// default action (killing the process mid-drain and losing the queued log and usage lines): it
// is one more stop request, and the drain goes on.
TEST_F(Shutdown, ASecondSigtermDuringTheGraceDoesNotKillTheServer) {
  engine_options.tokens_per_second = 20;
  server_options.grace_s = 10;
  start();
  Claims c = acme.claims();
  c.dks.max_tokens = 20;
  HttpConnection stream(port());
  ASSERT_TRUE(stream.send_request("POST", "/v1/chat/completions",
                                  chat_body("demo", "tell me", std::nullopt, true),
                                  {{"Authorization", "Bearer " + acme.mint(c)}}));
  HttpResponse& r =
      stream.read_until([](const std::string& body) { return sse_data(body).size() >= 2; });
  ASSERT_EQ(r.status, 200u) << r.body;
  server->process().signal(SIGTERM);
  std::this_thread::sleep_for(100ms);
  server->process().signal(SIGTERM);
  stream.read_rest(scaled(10s));
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(sse_data(r.body).back(), "[DONE]");
  const std::optional<int> code = server->process().wait_exit(scaled(5s));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << "128 + 15 = 143: killed by the second SIGTERM";
  // The stream finished within the grace: its event went out before the server exited.
  auto event = callbacks.wait_event(c.jti, 1, scaled(5s));
  ASSERT_TRUE(event.has_value()) << "the stream's usage event must be delivered";
  EXPECT_EQ(event->at("status").as_string(), "ok");
}

TEST_F(Shutdown, SigtermClosesIdleConnectionsAndExitsAtOnce) {
  server_options.grace_s = 10;
  start();
  HttpConnection idle(port());
  ASSERT_TRUE(idle.send_request("GET", "/healthz", ""));
  ASSERT_EQ(idle.read_response().status, 200u);  // kept alive, now idle
  const auto started = Clock::now();
  server->process().signal(SIGTERM);
  EXPECT_TRUE(idle.wait_closed(scaled(3s)));
  const std::optional<int> code = server->process().wait_exit(scaled(5s));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_LT(Clock::now() - started, scaled(2s));
}

TEST_F(Shutdown, AStreamLongerThanTheGraceIsCutAndTheServerStillExitsZero) {
  engine_options.tokens_per_second = 4;  // at least 8 tokens: >= 1.75 s, the grace is 1 s
  server_options.grace_s = 1;
  start();
  Claims c = acme.claims();
  c.dks.max_tokens = 60;
  HttpConnection stream(port());
  ASSERT_TRUE(stream.send_request("POST", "/v1/chat/completions",
                                  chat_body("demo", "a very long story", std::nullopt, true),
                                  {{"Authorization", "Bearer " + acme.mint(c)}}));
  HttpResponse& r =
      stream.read_until([](const std::string& body) { return sse_data(body).size() >= 2; });
  ASSERT_EQ(r.status, 200u);
  const auto started = Clock::now();
  server->process().signal(SIGTERM);
  const std::optional<int> code = server->process().wait_exit(scaled(6s));
  ASSERT_TRUE(code.has_value()) << "the server did not exit after its grace";
  EXPECT_EQ(*code, 0);
  EXPECT_LT(Clock::now() - started, scaled(3s));
  stream.read_rest(scaled(2s));
  EXPECT_FALSE(r.complete) << "the stream should have been cut at the end of the grace";
}

}  // namespace
}  // namespace dynaseal::integration
