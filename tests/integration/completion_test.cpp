// Completions through the real server and engine: OpenAI shapes, the event id, max_tokens
// defaulting to the key's cap, streaming with and without usage, uses and budgets.

#include <boost/json.hpp>

#include "harness.hpp"

namespace dynaseal::integration {
namespace {

namespace json = boost::json;

std::size_t words(std::string_view text) {
  std::size_t n = 0;
  bool in_word = false;
  for (char c : text) {
    const bool space = c == ' ';
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

using Completions = IntegrationTest;

// Key cap 4 and no max_tokens in the body: the engine (natural length >= 8 words) must have been
// asked for exactly 4 tokens, so it stops with finish_reason "length" after 4.
TEST_F(Completions, NonStreamingChatAnswersInOpenAiShapeWithEventIdAndTheKeysCap) {
  start();
  Claims c = acme.claims();
  c.dks.max_tokens = 4;
  HttpResponse r = chat(acme.mint(c), chat_body("demo", "hello there"));
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("x-dynaseal-event-id"), c.jti);
  EXPECT_EQ(r.header("content-type"), "application/json");
  const json::object body = r.json().as_object();
  EXPECT_EQ(body.at("object").as_string(), "chat.completion");
  EXPECT_EQ(body.at("model").as_string(), "demo");
  const json::object& choice = body.at("choices").as_array().at(0).as_object();
  EXPECT_EQ(choice.at("message").at("role").as_string(), "assistant");
  EXPECT_EQ(words(choice.at("message").at("content").as_string()), 4u);
  EXPECT_EQ(choice.at("finish_reason").as_string(), "length");
  const json::object& usage = body.at("usage").as_object();
  EXPECT_EQ(usage.at("completion_tokens").as_int64(), 4);
  EXPECT_EQ(usage.at("prompt_tokens").as_int64(), 3);  // "hello there" + the role
  EXPECT_EQ(usage.at("total_tokens").as_int64(), 7);
}

TEST_F(Completions, NonStreamingCompletionsAnswersInOpenAiShape) {
  start();
  Claims c = acme.claims();
  c.dks.max_tokens = 5;
  HttpResponse r =
      http_post(port(), "/v1/completions", completion_body("demo", "say it"), acme.mint(c));
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("x-dynaseal-event-id"), c.jti);
  const json::object body = r.json().as_object();
  EXPECT_EQ(body.at("object").as_string(), "text_completion");
  const json::object& choice = body.at("choices").as_array().at(0).as_object();
  EXPECT_EQ(words(choice.at("text").as_string()), 5u);
  EXPECT_EQ(choice.at("finish_reason").as_string(), "length");
  EXPECT_EQ(body.at("usage").at("completion_tokens").as_int64(), 5);
  EXPECT_EQ(body.at("usage").at("prompt_tokens").as_int64(), 2);
}

TEST_F(Completions, AnExplicitMaxTokensBelowTheCapIsHonoured) {
  start();
  Claims c = acme.claims();
  c.dks.max_tokens = 16;
  HttpResponse r = chat(acme.mint(c), chat_body("demo", "hello there", 2));
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json().at("usage").at("completion_tokens").as_int64(), 2);
}

// Returns the parsed data events before [DONE]; checks [DONE] is last and the stream ended.
std::vector<json::object> stream_events(const HttpResponse& r) {
  std::vector<json::object> events;
  EXPECT_TRUE(r.complete) << "stream did not end";
  const std::vector<std::string> data = sse_data(r.body);
  EXPECT_FALSE(data.empty());
  if (data.empty()) return events;
  EXPECT_EQ(data.back(), "[DONE]");
  for (std::size_t i = 0; i + 1 < data.size(); ++i) {
    EXPECT_NE(data[i], "[DONE]") << "[DONE] before the end";
    events.push_back(json::parse(data[i]).as_object());
  }
  return events;
}

TEST_F(Completions, StreamingRelaysEveryEventEndsWithDoneAndHidesUsageNobodyAskedFor) {
  start();
  Claims c = acme.claims();
  c.dks.max_tokens = 6;
  HttpResponse r = chat(acme.mint(c), chat_body("demo", "stream please", std::nullopt, true));
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("content-type"), "text/event-stream");
  EXPECT_EQ(r.header("x-dynaseal-event-id"), c.jti);
  const std::vector<json::object> events = stream_events(r);
  std::string text;
  std::string finish;
  for (const json::object& e : events) {
    EXPECT_EQ(e.at("object").as_string(), "chat.completion.chunk");
    EXPECT_FALSE(e.contains("usage")) << json::serialize(e);
    const json::array& choices = e.at("choices").as_array();
    ASSERT_EQ(choices.size(), 1u);
    const json::object& delta = choices[0].at("delta").as_object();
    if (const json::value* content = delta.if_contains("content")) {
      text += std::string(content->as_string());
    }
    if (choices[0].at("finish_reason").is_string()) {
      finish = std::string(choices[0].at("finish_reason").as_string());
    }
  }
  EXPECT_EQ(words(text), 6u);
  EXPECT_EQ(finish, "length");
  // role chunk + 6 tokens + finish chunk.
  EXPECT_EQ(events.size(), 8u);
}

TEST_F(Completions, StreamingCarriesTheUsageChunkWhenTheClientAskedForIt) {
  start();
  Claims c = acme.claims();
  c.dks.max_tokens = 6;
  HttpResponse r = chat(acme.mint(c), chat_body("demo", "stream please", std::nullopt, true, true));
  ASSERT_EQ(r.status, 200u) << r.body;
  const std::vector<json::object> events = stream_events(r);
  ASSERT_FALSE(events.empty());
  int with_usage = 0;
  for (const json::object& e : events) {
    const json::value* usage = e.if_contains("usage");
    if (usage != nullptr && usage->is_object()) ++with_usage;
  }
  EXPECT_EQ(with_usage, 1);
  const json::object& last = events.back();
  ASSERT_TRUE(last.contains("usage") && last.at("usage").is_object()) << json::serialize(last);
  EXPECT_TRUE(last.at("choices").as_array().empty());
  EXPECT_EQ(last.at("usage").at("completion_tokens").as_int64(), 6);
  EXPECT_EQ(last.at("usage").at("prompt_tokens").as_int64(), 3);
}

TEST_F(Completions, StreamingCompletionsEndpointWorksToo) {
  start();
  Claims c = acme.claims();
  c.dks.max_tokens = 3;
  HttpResponse r = http_post(port(), "/v1/completions",
                             completion_body("demo", "go", std::nullopt, true), acme.mint(c));
  ASSERT_EQ(r.status, 200u) << r.body;
  const std::vector<json::object> events = stream_events(r);
  std::string text;
  for (const json::object& e : events) {
    EXPECT_EQ(e.at("object").as_string(), "text_completion");
    text += std::string(e.at("choices").at(0).at("text").as_string());
  }
  EXPECT_EQ(words(text), 3u);
}

TEST_F(Completions, ASingleUseKeyIsRefusedTheSecondTime) {
  start();
  const std::string key = acme.mint();
  HttpResponse first = chat(key);
  ASSERT_EQ(first.status, 200u) << first.body;
  HttpResponse second = chat(key);
  EXPECT_EQ(second.status, 401u);
  EXPECT_EQ(second.error_code(), "uses_exhausted");
  EXPECT_EQ(second.header("www-authenticate"), "Bearer");
  EXPECT_EQ(engine->stats().at("requests").as_int64(), 1);
}

// Budget 30, cap 5, prompt "hello there" on /v1/completions (2 tokens): each use costs 2 + 5.
// After four uses 28 are spent; the fifth is granted the remaining 2 (so the engine is asked for
// 2 tokens) and brings the total to 32; the sixth finds the budget spent.
// The server settles a use's tokens just after writing its response; the test waits for that
// (the usage record is counted after the settle) so that each request sees the previous one's
// real cost rather than its reservation.
TEST_F(Completions, AMultiUseKeyStopsAtItsBudget) {
  start();
  Claims c = acme.claims();
  c.dks.max_tokens = 5;
  c.dks.uses = 100;
  // Each use reserves its prompt bound (the body's bytes: no template overhead here) plus its
  // cap, and settles to what the engine reported: prompt 2 + completion 5. Four such uses, then
  // room for one more bound plus 2 completion tokens, then too little for any bound.
  const auto bytes = static_cast<std::int64_t>(completion_body("demo", "hello there").size());
  c.dks.budget = 4 * (2 + 5) + bytes + 2;
  const std::string key = acme.mint(c);
  std::vector<std::int64_t> completion_tokens;
  HttpResponse r;
  for (int i = 0; i < 10; ++i) {
    r = http_post(port(), "/v1/completions", completion_body("demo", "hello there"), key);
    if (r.status != 200) break;
    completion_tokens.push_back(r.json().at("usage").at("completion_tokens").as_int64());
    const double settled = static_cast<double>(completion_tokens.size());
    ASSERT_TRUE(eventually(
        [&] {
          return metric(server->metrics(), R"(dynaseal_usage_records_total{status="ok"})") ==
                 settled;
        },
        scaled(3s)));
  }
  EXPECT_EQ(completion_tokens, (std::vector<std::int64_t>{5, 5, 5, 5, 2}));
  EXPECT_EQ(r.status, 402u) << r.body;
  EXPECT_EQ(r.error_code(), "budget_exhausted");
  HttpResponse again = http_post(port(), "/v1/completions", completion_body(), key);
  EXPECT_EQ(again.status, 402u);
  EXPECT_EQ(again.error_code(), "budget_exhausted");
}

TEST_F(Completions, AMultiUseKeyServesExactlyItsUses) {
  start();
  Claims c = acme.claims();
  c.dks.uses = 3;
  const std::string key = acme.mint(c);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(chat(key).status, 200u) << "use " << i + 1;
  HttpResponse r = chat(key);
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.error_code(), "uses_exhausted");
}

TEST_F(Completions, KeepAliveConnectionServesSeveralRequests) {
  start();
  Claims c = acme.claims();
  c.dks.uses = 3;
  const std::string key = acme.mint(c);
  HttpConnection conn(port());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(conn.send_request("POST", "/v1/chat/completions", chat_body(),
                                  {{"Authorization", "Bearer " + key}}));
    HttpResponse r = conn.read_response();
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_TRUE(r.complete);
  }
}

}  // namespace
}  // namespace dynaseal::integration
