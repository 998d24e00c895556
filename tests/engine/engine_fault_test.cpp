// Fault injection in the stand-in engine: each [[fault:MODE]] marker and --fail-rate behave as
// docs/engine.md says, count as failed, and never stop the engine from serving the next request.

#include <thread>

#include <gtest/gtest.h>

#include "engine/text.hpp"
#include "engine_harness.hpp"

namespace dynaseal::engine {
namespace {

using harness::Client;
using harness::Reply;
using harness::sse_data;

std::string chat(std::string_view mode, bool stream) {
  return R"({"model":"demo","messages":[{"role":"user","content":"tell me [[fault:)" +
         std::string(mode) + R"(]] please"}])" + (stream ? R"(,"stream":true})" : "}");
}

bool is_json(std::string_view text) {
  boost::system::error_code ec;
  json::parse(text, ec);
  return !ec;
}

std::size_t count_tokens(const std::vector<std::string>& events) {
  std::size_t n = 0;
  for (const std::string& e : events) n += e.find(R"("content":")") != std::string::npos;
  return n - 1;  // the role chunk carries "content":""
}

class EngineFaults : public ::testing::Test {
 protected:
  // The engine still answers a normal request on a fresh connection.
  void expect_still_serving() {
    Client fresh(engine_.port());
    const Reply r = fresh.post("/v1/chat/completions",
                               R"({"model":"demo","messages":[{"role":"user","content":"ok"}]})");
    EXPECT_EQ(r.status, 200u);
  }

  harness::Engine engine_{EngineOptions{.ttft = 20ms}};
  Client client_{engine_.port()};
};

TEST_F(EngineFaults, Status500And503AnswerWithOpenAiErrors) {
  for (auto [mode, status] : {std::pair{"status500", 500u}, std::pair{"status503", 503u}}) {
    const Reply r = client_.post("/v1/chat/completions", chat(mode, false));
    EXPECT_EQ(r.status, status);
    EXPECT_EQ(r.json().at("error").at("type"), "server_error");
    EXPECT_EQ(r.json().at("error").at("code"), "injected_fault");
  }
  const EngineStats s = engine_.service().stats();
  EXPECT_EQ(s.failed, 2u);
  EXPECT_EQ(s.completed, 0u);
  expect_still_serving();
}

TEST_F(EngineFaults, ResetClosesTheConnectionBeforeAnyResponse) {
  for (bool stream : {false, true}) {
    const Reply r = client_.post("/v1/chat/completions", chat("reset", stream));
    EXPECT_EQ(r.send_error, Error::upstream_error);
    EXPECT_EQ(r.status, 0u);
  }
  EXPECT_EQ(engine_.service().stats().failed, 2u);
  expect_still_serving();
}

TEST_F(EngineFaults, ResetMidStreamSendsAFewTokensThenResets) {
  const Reply r = client_.post("/v1/chat/completions", chat("reset-mid-stream", true));
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.read_error, Error::upstream_error);
  EXPECT_EQ(r.body.find("[DONE]"), std::string::npos);
  EXPECT_LE(count_tokens(sse_data(r.body)), 3u);
  const Reply whole = client_.post("/v1/chat/completions", chat("reset-mid-stream", false));
  EXPECT_EQ(whole.status, 200u);
  EXPECT_EQ(whole.read_error, Error::upstream_error);
  EXPECT_EQ(engine_.service().stats().failed, 2u);
  expect_still_serving();
}

TEST_F(EngineFaults, TruncateEndsTheResponseCleanlyButIncomplete) {
  const Reply r = client_.post("/v1/chat/completions", chat("truncate", true));
  EXPECT_EQ(r.status, 200u);
  EXPECT_FALSE(r.read_error);
  const std::vector<std::string> events = sse_data(r.body);
  ASSERT_EQ(events.size(), 1u + 3);  // role and three tokens
  EXPECT_EQ(count_tokens(events), 3u);
  EXPECT_EQ(r.body.find("[DONE]"), std::string::npos);
  EXPECT_EQ(r.body.find(R"("finish_reason":")"), std::string::npos);
  const Reply whole = client_.post("/v1/chat/completions", chat("truncate", false));
  EXPECT_EQ(whole.status, 200u);
  EXPECT_FALSE(whole.read_error);
  EXPECT_FALSE(whole.body.empty());
  EXPECT_FALSE(is_json(whole.body));
  EXPECT_EQ(client_.pool().idle_connections(), 1u);  // the connection itself is fine
  EXPECT_EQ(engine_.service().stats().failed, 2u);
}

TEST_F(EngineFaults, GarbageSendsBodiesAndEventsThatAreNotJson) {
  const Reply whole = client_.post("/v1/chat/completions", chat("garbage", false));
  EXPECT_EQ(whole.status, 200u);
  EXPECT_FALSE(is_json(whole.body));
  const Reply r = client_.post("/v1/chat/completions", chat("garbage", true));
  EXPECT_EQ(r.status, 200u);
  const std::vector<std::string> events = sse_data(r.body);
  ASSERT_EQ(events.size(), 4u);  // role, one token, garbage, [DONE]
  EXPECT_TRUE(is_json(events[1]));
  EXPECT_FALSE(is_json(events[2]));
  EXPECT_EQ(events[3], "[DONE]");
  EXPECT_EQ(engine_.service().stats().failed, 2u);
}

TEST_F(EngineFaults, HangNeverAnswersUntilTheClientLeaves) {
  Client impatient(engine_.port(), harness::client_options(300ms));
  const auto start = std::chrono::steady_clock::now();
  const Reply r = impatient.post("/v1/chat/completions", chat("hang", true));
  EXPECT_EQ(r.send_error, Error::upstream_timeout);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
  EXPECT_EQ(engine_.service().stats().failed, 1u);
  // The engine notices the client leaving and ends the request.
  EXPECT_TRUE(harness::eventually([&] { return engine_.server().in_flight() == 0; }));
  EXPECT_EQ(engine_.service().stats().cancelled, 0u);
  expect_still_serving();
}

TEST_F(EngineFaults, SlowFirstByteWaitsTenTimesTtftThenAnswers) {
  const auto start = std::chrono::steady_clock::now();
  const Reply r = client_.post("/v1/chat/completions", chat("slow-first-byte", false));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 200ms);
  ASSERT_EQ(r.status, 200u);
  EXPECT_GE(count_words(r.json().at("choices").at(0).at("message").at("content").as_string()), 8u);
  EXPECT_EQ(engine_.service().stats().failed, 1u);
}

TEST(EngineFailRate, FailsEveryRequestAtRateOne) {
  harness::Engine engine(EngineOptions{.fail_rate = 1});
  Client client(engine.port());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(client.post("/v1/completions", R"({"model":"demo","prompt":"x"})").status, 500u);
  }
  EXPECT_EQ(engine.service().stats().failed, 5u);
}

TEST(EngineFailRate, FailsAboutThatFractionInAnOrderTheSeedFixes) {
  auto pattern = [](std::uint64_t seed) {
    harness::Engine engine(EngineOptions{.fail_rate = 0.3, .seed = seed});
    Client client(engine.port());
    std::string outcomes;
    for (int i = 0; i < 200; ++i) {
      const Reply r = client.post("/v1/completions", R"({"model":"demo","prompt":"x"})");
      outcomes += r.status == 500 ? 'F' : 'o';
    }
    return outcomes;
  };
  const std::string a = pattern(7);
  const auto failures = std::count(a.begin(), a.end(), 'F');
  EXPECT_GT(failures, 30);
  EXPECT_LT(failures, 90);
  EXPECT_EQ(pattern(7), a);
  EXPECT_NE(pattern(8), a);
}

}  // namespace
}  // namespace dynaseal::engine
