// Engine faults (the stand-in engine's [[fault:MODE]] markers) and clients that leave: the
// server answers with the right code, never hangs, keeps serving others, and still produces
// one usage record per consumed use.

#include <thread>

#include <boost/json.hpp>

#include "harness.hpp"

namespace dynaseal::integration {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

class Faults : public IntegrationTest {
 protected:
  // A key with many uses for models demo and strict.
  std::string many_uses_key() {
    Claims c = acme.claims();
    c.dks.uses = 100;
    c.dks.models = {"demo", "strict"};
    c.dks.max_tokens = 8;
    return acme.mint(c);
  }

  // Metrics are counted just after each response is written: waits for them to settle, then
  // checks each series.
  void expect_metrics(const std::vector<std::pair<std::string, double>>& expected) {
    std::string m;
    eventually(
        [&] {
          m = server->metrics();
          for (const auto& [series, value] : expected) {
            if (metric(m, series) != value) return false;
          }
          return true;
        },
        scaled(3s));
    for (const auto& [series, value] : expected) EXPECT_EQ(metric(m, series), value) << series;
  }
};

TEST_F(Faults, AClientLeavingMidStreamCancelsTheEngineAndItsUsageIsStillRecorded) {
  engine_options.tokens_per_second = 10;  // at least 8 tokens: the stream lasts >= 0.8 s
  start();
  Claims c = acme.claims();
  c.dks.max_tokens = 60;
  HttpConnection conn(port());
  ASSERT_TRUE(conn.send_request("POST", "/v1/chat/completions",
                                chat_body("demo", "a long story", std::nullopt, true),
                                {{"Authorization", "Bearer " + acme.mint(c)}}));
  const HttpResponse& r = conn.read_until(
      [](const std::string& body) { return sse_data(body).size() >= 3; }, scaled(10s));
  ASSERT_EQ(r.status, 200u) << r.body;
  ASSERT_GE(sse_data(r.body).size(), 3u);
  ASSERT_FALSE(r.complete);
  conn.close();
  const auto closed = Clock::now();

  std::int64_t cancelled = 0;
  double disconnected = 0;
  EXPECT_TRUE(eventually(
      [&] {
        cancelled = engine->stats().at("cancelled").as_int64();
        disconnected = metric(server->metrics(),
                              R"(dynaseal_usage_records_total{status="client_disconnected"})");
        return cancelled >= 1 && disconnected >= 1;
      },
      scaled(3s)));
  EXPECT_LT(Clock::now() - closed, scaled(2s));
  EXPECT_EQ(cancelled, 1);
  EXPECT_EQ(disconnected, 1);
  EXPECT_EQ(engine->stats().at("completed").as_int64(), 0);
  // The usage event reaches the backend, signed by the server, saying what happened.
  auto event = callbacks.wait_event(c.jti, 1, scaled(5s));
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->at("status").as_string(), "client_disconnected");
  const auto received = callbacks.received();
  ASSERT_FALSE(received.empty());
  EXPECT_TRUE(signed_by(received.front(), server->identity()));
}

struct FaultCase {
  const char* model;
  const char* fault;
  bool stream;
  unsigned status;
  const char* code;
};

TEST_F(Faults, EngineFaultsBecome502Or504AndTheServerKeepsServing) {
  start();
  const std::string key = many_uses_key();
  const FaultCase cases[] = {
      {"demo", "status500", false, 502, "upstream_error"},
      {"demo", "status503", false, 502, "upstream_error"},
      {"demo", "reset", false, 502, "upstream_error"},
      {"demo", "garbage", false, 502, "upstream_error"},
      {"demo", "truncate", false, 502, "upstream_error"},
      {"demo", "reset-mid-stream", false, 502, "upstream_error"},
      {"demo", "status500", true, 502, "upstream_error"},
      {"demo", "reset", true, 502, "upstream_error"},
      {"strict", "hang", false, 504, "upstream_timeout"},
      {"strict", "hang", true, 504, "upstream_timeout"},
      {"strict", "slow-first-byte", false, 504, "upstream_timeout"},
  };
  int bad_gateway = 0, timeouts = 0;
  for (const FaultCase& f : cases) {
    SCOPED_TRACE(std::string(f.fault) + (f.stream ? " (stream)" : ""));
    const auto started = Clock::now();
    const std::string prompt = std::string("[[fault:") + f.fault + "]] please";
    const std::int64_t sent_before = engine->stats().at("requests").as_int64();
    HttpResponse r = chat(key, chat_body(f.model, prompt, std::nullopt, f.stream));
    EXPECT_EQ(r.status, f.status) << r.body;
    EXPECT_EQ(r.error_code(), f.code) << r.body;
    // The engine got the request exactly once: a request already sent is never retried.
    EXPECT_EQ(engine->stats().at("requests").as_int64(), sent_before + 1);
    EXPECT_LT(Clock::now() - started, scaled(4s));  // strict's first_byte_timeout is 1 s
    (f.status == 502 ? bad_gateway : timeouts)++;
    // The server goes on serving, on the same upstream.
    HttpResponse ok = chat(key, chat_body(f.model, "all good", std::nullopt, f.stream));
    EXPECT_EQ(ok.status, 200u) << ok.body;
  }
  const std::vector<std::pair<std::string, double>> expected = {
      {R"(dynaseal_requests_total{endpoint="chat.completions",status="502",code="upstream_error"})",
       bad_gateway},
      {R"(dynaseal_requests_total{endpoint="chat.completions",status="504",code="upstream_timeout"})",
       timeouts},
      {R"(dynaseal_requests_total{endpoint="chat.completions",status="200",code="ok"})",
       std::size(cases)},
      {R"(dynaseal_usage_records_total{status="upstream_error"})", bad_gateway + timeouts},
      {R"(dynaseal_usage_records_total{status="ok"})", std::size(cases)},
  };
  expect_metrics(expected);
}

TEST_F(Faults, MidStreamEngineFaultsEndTheStreamWithAnErrorEventAndACleanEnd) {
  start();
  const std::string key = many_uses_key();
  int broken = 0;
  for (const char* fault : {"reset-mid-stream", "truncate", "garbage"}) {
    SCOPED_TRACE(fault);
    const auto started = Clock::now();
    HttpResponse r =
        chat(key, chat_body("demo", std::string("[[fault:") + fault + "]] go", std::nullopt, true));
    EXPECT_LT(Clock::now() - started, scaled(4s));
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_TRUE(r.complete) << "the stream must end cleanly (last chunk)";
    const std::vector<std::string> data = sse_data(r.body);
    ASSERT_GE(data.size(), 2u) << r.body;  // some relayed tokens, then the error
    for (const std::string& d : data) EXPECT_NE(d, "[DONE]");
    const json::value last = json::parse(data.back());
    ASSERT_TRUE(last.is_object() && last.as_object().contains("error")) << data.back();
    EXPECT_EQ(last.at("error").at("code").as_string(), "upstream_error");
    EXPECT_EQ(last.at("error").at("type").as_string(), "upstream_error");
    ++broken;
    HttpResponse ok = chat(key, chat_body("demo", "fine now", std::nullopt, true));
    EXPECT_EQ(ok.status, 200u) << ok.body;
    EXPECT_EQ(sse_data(ok.body).back(), "[DONE]");
  }
  expect_metrics({
      {R"(dynaseal_requests_total{endpoint="chat.completions",status="200",code="upstream_error"})",
       broken},
      {R"(dynaseal_usage_records_total{status="upstream_error"})", broken},
      {R"(dynaseal_usage_records_total{status="ok"})", broken},
  });
}

}  // namespace
}  // namespace dynaseal::integration
