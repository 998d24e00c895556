// The stand-in engine served in-process (HttpServer on port 0) and called through the gateway's
// own upstream client (net::UpstreamCall): shapes, exact usage, determinism, streaming, faults,
// cancellation and keep-alive.

#include "engine/engine.hpp"

#include <functional>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <gtest/gtest.h>

#include "engine/text.hpp"
#include "engine_harness.hpp"

namespace dynaseal::engine {
namespace {

using harness::Client;
using harness::Reply;
using harness::sse_data;

// {"model":"demo","messages":[{"role":"user","content":<prompt>}], <extra>}
std::string chat_body(std::string_view prompt, std::string_view extra = "") {
  std::string body = R"({"model":"demo","messages":[{"role":"user","content":)" +
                     json::serialize(json::value(prompt)) + "}]";
  if (!extra.empty()) body += "," + std::string(extra);
  return body + "}";
}

std::string completion_body(std::string_view prompt, std::string_view extra = "") {
  std::string body = R"({"model":"demo","prompt":)" + json::serialize(json::value(prompt));
  if (!extra.empty()) body += "," + std::string(extra);
  return body + "}";
}

std::string content_of(const Reply& r) {
  return std::string(r.json().at("choices").at(0).at("message").at("content").as_string());
}

std::int64_t usage_of(const json::value& v, std::string_view field) {
  return v.at("usage").at(field).to_number<std::int64_t>();
}

// Concatenates the content deltas of a chat stream's events.
std::string chat_deltas(const std::vector<std::string>& events) {
  std::string text;
  for (const std::string& e : events) {
    if (e == "[DONE]") continue;
    const json::value chunk = json::parse(e);
    const json::array& choices = chunk.at("choices").as_array();
    if (choices.empty()) continue;
    const json::object& delta = choices.at(0).at("delta").as_object();
    if (const auto* c = delta.if_contains("content")) text += c->as_string();
  }
  return text;
}

TEST(Engine, AnswersChatWithOpenAiShapeAndExactUsage) {
  harness::Engine engine;
  Client client(engine.port());
  const auto before = std::chrono::system_clock::now();
  const Reply r =
      client.post("/v1/chat/completions", R"({"model":"demo","messages":[)"
                                          R"({"role":"system","content":"You are terse."},)"
                                          R"({"role":"user","content":"Hello there"}]})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  const json::value v = r.json();
  EXPECT_EQ(v.at("object"), "chat.completion");
  EXPECT_TRUE(v.at("id").as_string().starts_with("chatcmpl-"));
  EXPECT_EQ(v.at("model"), "demo");
  const auto created = v.at("created").as_int64();
  EXPECT_NEAR(created, std::chrono::system_clock::to_time_t(before), 2);
  const json::object& choice = v.at("choices").at(0).as_object();
  EXPECT_EQ(choice.at("index"), 0);
  EXPECT_EQ(choice.at("message").at("role"), "assistant");
  EXPECT_EQ(choice.at("finish_reason"), "stop");
  // Prompt: 1 + "You are terse." (3) + 1 + "Hello there" (2).
  EXPECT_EQ(usage_of(v, "prompt_tokens"), 7);
  const std::int64_t words = static_cast<std::int64_t>(count_words(content_of(r)));
  EXPECT_EQ(usage_of(v, "completion_tokens"), words);
  EXPECT_EQ(usage_of(v, "total_tokens"), 7 + words);
  EXPECT_GE(words, 8);
  EXPECT_LE(words, 63);
}

TEST(Engine, GivesAPinnedAnswerForAKnownPromptAndSeed) {
  harness::Engine engine;
  Client client(engine.port());
  const Reply r = client.post("/v1/chat/completions", chat_body("Hello there"));
  ASSERT_EQ(r.status, 200u);
  // A regression pin: changing the vocabulary, hash or generator changes every text.
  EXPECT_EQ(content_of(r),
            "in request is while word low words can until exactly stream expire drawn keys them "
            "order scope can under can budget serving directly verify edge engine");
  EXPECT_EQ(usage_of(r.json(), "prompt_tokens"), 3);
  EXPECT_EQ(usage_of(r.json(), "completion_tokens"), 26);
}

TEST(Engine, RepeatsItselfForTheSamePromptAndNotForAnother) {
  harness::Engine engine;
  harness::Engine reseeded(EngineOptions{.seed = 1});
  Client client(engine.port());
  Client other(reseeded.port());
  const std::string a = content_of(client.post("/v1/chat/completions", chat_body("one prompt")));
  EXPECT_EQ(content_of(client.post("/v1/chat/completions", chat_body("one prompt"))), a);
  EXPECT_NE(content_of(client.post("/v1/chat/completions", chat_body("another prompt"))), a);
  EXPECT_NE(content_of(other.post("/v1/chat/completions", chat_body("one prompt"))), a);
}

TEST(Engine, StopsAtMaxTokensWithFinishReasonLength) {
  harness::Engine engine;
  Client client(engine.port());
  const std::string full = content_of(client.post("/v1/chat/completions", chat_body("cap me")));
  for (std::string_view cap : {R"("max_tokens":5)", R"("max_completion_tokens":5)"}) {
    const Reply r = client.post("/v1/chat/completions", chat_body("cap me", cap));
    ASSERT_EQ(r.status, 200u) << r.body;
    const json::value v = r.json();
    EXPECT_EQ(v.at("choices").at(0).at("finish_reason"), "length");
    EXPECT_EQ(usage_of(v, "completion_tokens"), 5);
    EXPECT_EQ(count_words(content_of(r)), 5u);
    EXPECT_TRUE(full.starts_with(content_of(r)));
  }
  const Reply roomy =
      client.post("/v1/chat/completions", chat_body("cap me", R"("max_tokens":500)"));
  EXPECT_EQ(content_of(roomy), full);
  EXPECT_EQ(roomy.json().at("choices").at(0).at("finish_reason"), "stop");
}

TEST(Engine, AnswersTextCompletions) {
  harness::Engine engine;
  Client client(engine.port());
  const Reply r = client.post("/v1/completions",
                              R"({"model":"demo","prompt":["Once upon","a time"],"max_tokens":4})");
  ASSERT_EQ(r.status, 200u) << r.body;
  const json::value v = r.json();
  EXPECT_EQ(v.at("object"), "text_completion");
  EXPECT_TRUE(v.at("id").as_string().starts_with("cmpl-"));
  const json::object& choice = v.at("choices").at(0).as_object();
  EXPECT_EQ(count_words(choice.at("text").as_string()), 4u);
  EXPECT_EQ(choice.at("index"), 0);
  EXPECT_TRUE(choice.at("logprobs").is_null());
  EXPECT_EQ(choice.at("finish_reason"), "length");
  EXPECT_EQ(usage_of(v, "prompt_tokens"), 4);
  EXPECT_EQ(usage_of(v, "completion_tokens"), 4);
  EXPECT_EQ(usage_of(v, "total_tokens"), 8);
}

TEST(Engine, StreamsChatOneWordPerDeltaWithUsageChunkAndDoneLast) {
  harness::Engine engine;
  Client client(engine.port());
  const std::string full = content_of(client.post("/v1/chat/completions", chat_body("stream me")));
  const Reply r = client.post(
      "/v1/chat/completions",
      chat_body("stream me", R"("stream":true,"stream_options":{"include_usage":true})"));
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_type, "text/event-stream");
  EXPECT_FALSE(r.read_error);
  const std::vector<std::string> events = sse_data(r.body);
  const std::size_t words = count_words(full);
  ASSERT_EQ(events.size(), 1 + words + 1 + 1 + 1);  // role, words, finish, usage, [DONE]
  EXPECT_EQ(events.back(), "[DONE]");
  std::string id;
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    const json::value chunk = json::parse(events[i]);
    EXPECT_EQ(chunk.at("object"), "chat.completion.chunk");
    if (i == 0) id = std::string(chunk.at("id").as_string());
    EXPECT_EQ(chunk.at("id"), id.c_str());
    const bool usage_chunk = i + 2 == events.size();
    EXPECT_EQ(chunk.at("usage").is_null(), !usage_chunk) << events[i];
    if (usage_chunk) {
      EXPECT_TRUE(chunk.at("choices").as_array().empty());
      EXPECT_EQ(usage_of(chunk, "prompt_tokens"), 3);
      EXPECT_EQ(usage_of(chunk, "completion_tokens"), static_cast<std::int64_t>(words));
      continue;
    }
    const json::object& choice = chunk.at("choices").at(0).as_object();
    const json::object& delta = choice.at("delta").as_object();
    if (i == 0) {
      EXPECT_EQ(delta.at("role"), "assistant");
      EXPECT_EQ(delta.at("content"), "");
    } else if (i <= words) {
      EXPECT_EQ(count_words(delta.at("content").as_string()), 1u) << events[i];
      EXPECT_TRUE(choice.at("finish_reason").is_null());
    } else {
      EXPECT_TRUE(delta.empty());
      EXPECT_EQ(choice.at("finish_reason"), "stop");
    }
  }
  EXPECT_EQ(chat_deltas(events), full);
}

TEST(Engine, StreamsWithoutUsageUnlessAskedFor) {
  harness::Engine engine;
  Client client(engine.port());
  const Reply r =
      client.post("/v1/chat/completions", chat_body("brief", R"("stream":true,"max_tokens":2)"));
  const std::vector<std::string> events = sse_data(r.body);
  ASSERT_EQ(events.size(), 1u + 2 + 1 + 1);
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    EXPECT_FALSE(json::parse(events[i]).as_object().contains("usage")) << events[i];
  }
  EXPECT_EQ(json::parse(events[3]).at("choices").at(0).at("finish_reason"), "length");
  EXPECT_EQ(events[4], "[DONE]");
}

TEST(Engine, StreamsTextCompletionsLikeTheNonStreamedText) {
  harness::Engine engine;
  Client client(engine.port());
  const Reply whole = client.post("/v1/completions", completion_body("a poem"));
  const std::string text(whole.json().at("choices").at(0).at("text").as_string());
  const Reply r = client.post("/v1/completions", completion_body("a poem", R"("stream":true)"));
  const std::vector<std::string> events = sse_data(r.body);
  ASSERT_EQ(events.size(), count_words(text) + 2);  // words, finish, [DONE]
  std::string joined;
  for (std::size_t i = 0; i + 2 < events.size(); ++i) {
    const json::value chunk = json::parse(events[i]);
    EXPECT_EQ(chunk.at("object"), "text_completion");
    const json::object& choice = chunk.at("choices").at(0).as_object();
    EXPECT_TRUE(choice.at("logprobs").is_null());
    EXPECT_TRUE(choice.at("finish_reason").is_null());
    joined += choice.at("text").as_string();
  }
  EXPECT_EQ(joined, text);
  const json::value last = json::parse(events[events.size() - 2]);
  EXPECT_EQ(last.at("choices").at(0).at("text"), "");
  EXPECT_EQ(last.at("choices").at(0).at("finish_reason"), "stop");
  EXPECT_EQ(events.back(), "[DONE]");
}

TEST(Engine, ListsItsModelsAndAnswersHealthChecks) {
  harness::Engine engine(EngineOptions{.models = {"demo", "big-model"}});
  Client client(engine.port());
  const Reply models = client.get("/v1/models");
  ASSERT_EQ(models.status, 200u);
  const json::value v = models.json();
  EXPECT_EQ(v.at("object"), "list");
  ASSERT_EQ(v.at("data").as_array().size(), 2u);
  EXPECT_EQ(v.at("data").at(1).at("id"), "big-model");
  EXPECT_EQ(v.at("data").at(1).at("object"), "model");
  EXPECT_TRUE(v.at("data").at(1).at("owned_by").is_string());
  EXPECT_EQ(client.get("/healthz").status, 200u);
  EXPECT_EQ(client.post("/v1/completions", R"({"model":"big-model","prompt":"x"})").status, 200u);
}

TEST(Engine, RefusesUnknownModelsWith404ModelNotFound) {
  harness::Engine engine;
  Client client(engine.port());
  const Reply r = client.post("/v1/chat/completions",
                              R"({"model":"gpt-9","messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(r.status, 404u);
  const json::value v = r.json();
  EXPECT_EQ(v.at("error").at("type"), "invalid_request_error");
  EXPECT_EQ(v.at("error").at("code"), "model_not_found");
  EXPECT_TRUE(v.at("error").at("message").is_string());
}

TEST(Engine, RefusesBadRequestsWith400) {
  harness::Engine engine;
  Client client(engine.port());
  auto code = [&](std::string_view target, std::string body) {
    const Reply r = client.post(target, std::move(body));
    EXPECT_EQ(r.status, 400u) << r.body;
    return std::string(r.json().at("error").at("code").as_string());
  };
  EXPECT_EQ(code("/v1/chat/completions", "{not json"), "body_malformed");
  EXPECT_EQ(code("/v1/chat/completions", chat_body("x", R"("n":1,"n":1)")), "body_malformed");
  EXPECT_EQ(code("/v1/chat/completions", chat_body("x", R"("n":3)")), "n_not_supported");
  EXPECT_EQ(code("/v1/completions", R"({"prompt":"x"})"), "model_missing");
  EXPECT_EQ(code("/v1/completions", completion_body("[[fault:explode]]")), "fault_unknown");
  const EngineStats s = engine.service().stats();
  EXPECT_EQ(s.requests, 5u);
  EXPECT_EQ(s.rejected, 5u);
}

TEST(Engine, AnswersUnknownPathsAndMethodsInOpenAiShape) {
  harness::Engine engine;
  Client client(engine.port());
  const Reply missing = client.get("/v2/nothing");
  EXPECT_EQ(missing.status, 404u);
  EXPECT_EQ(missing.json().at("error").at("code"), "not_found");
  const Reply wrong = client.get("/v1/chat/completions");
  EXPECT_EQ(wrong.status, 405u);
  EXPECT_EQ(wrong.json().at("error").at("code"), "method_not_allowed");
  EXPECT_EQ(client.post("/v1/models", "{}").status, 405u);
}

TEST(Engine, RefusesOversizedBodiesWithAnOpenAiError) {
  net::ServerOptions small = harness::server_options();
  small.max_body_bytes = 256;
  harness::Engine engine({}, small);
  Client client(engine.port());
  const Reply r = client.post("/v1/chat/completions", chat_body(std::string(1000, 'x')));
  EXPECT_EQ(r.status, 413u);
  EXPECT_EQ(r.json().at("error").at("code"), "body_too_large");
}

TEST(Engine, KeepsOneConnectionAliveAcrossRequests) {
  harness::Engine engine;
  Client client(engine.port());
  const std::vector<std::pair<std::string, std::string>> requests = {
      {"/v1/chat/completions", chat_body("one")},
      {"/v1/chat/completions", chat_body("two", R"("stream":true)")},
      {"/v1/completions", completion_body("three", R"("stream":true,"max_tokens":3)")},
      {"/v1/completions", R"({"model":"nope","prompt":"x"})"},
      {"/v1/chat/completions", chat_body("[[fault:status503]]")},
      {"/v1/chat/completions", chat_body("[[fault:truncate]]", R"("stream":true)")},
  };
  for (const auto& [target, body] : requests) {
    const Reply r = client.post(target, body);
    EXPECT_FALSE(r.send_error || r.read_error) << target << " " << body;
    EXPECT_EQ(client.pool().idle_connections(), 1u) << body;
  }
  EXPECT_EQ(engine.server().open_connections(), 1u);
}

TEST(Engine, WaitsTtftBeforeAnswering) {
  harness::Engine engine(EngineOptions{.ttft = 150ms});
  Client client(engine.port());
  for (std::string_view extra : {"", R"("stream":true)"}) {
    const auto start = std::chrono::steady_clock::now();
    const Reply r = client.post("/v1/chat/completions", chat_body("wait", extra));
    EXPECT_EQ(r.status, 200u);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms);
  }
}

TEST(Engine, PacesStreamedTokens) {
  harness::Engine engine(EngineOptions{.tokens_per_second = 100});
  Client client(engine.port());
  const auto start = std::chrono::steady_clock::now();
  const Reply r =
      client.post("/v1/chat/completions", chat_body("pace", R"("stream":true,"max_tokens":11)"));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(sse_data(r.body).size(), 1u + 11 + 1 + 1);
  EXPECT_GE(elapsed, 100ms);  // ten intervals of 10 ms after the first token
  EXPECT_LT(elapsed, 2s);
  // Non-streamed answers are not paced.
  const auto again = std::chrono::steady_clock::now();
  client.post("/v1/chat/completions", chat_body("pace", R"("max_tokens":11)"));
  EXPECT_LT(std::chrono::steady_clock::now() - again, 100ms);
}

TEST(Engine, CountsAClientLeavingMidStreamAsCancelled) {
  harness::Engine engine(EngineOptions{.tokens_per_second = 20});
  Client client(engine.port());
  const std::string seen = client.run(harness::read_then_leave(
      client.pool(), "/v1/chat/completions", chat_body("long story", R"("stream":true)"),
      R"("delta":{"content":")"));
  EXPECT_NE(seen.find(R"("role":"assistant")"), std::string::npos);
  EXPECT_EQ(seen.find("[DONE]"), std::string::npos);
  // Through /stats, as a test of the gateway would see it.
  Client observer(engine.port());
  json::value stats;
  for (int i = 0; i < 500; ++i) {
    stats = observer.get("/stats").json();
    if (stats.at("cancelled") == 1) break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(stats.at("cancelled"), 1);
  EXPECT_EQ(stats.at("completed"), 0);
  EXPECT_EQ(stats.at("requests"), 1);
  EXPECT_EQ(stats.at("streams"), 1);
  EXPECT_LT(stats.at("tokens").to_number<int>(), 10);
}

TEST(Engine, CountsAClientLeavingDuringTtftAsCancelled) {
  harness::Engine engine(EngineOptions{.ttft = 10s});
  // Long enough for a loaded machine's engine thread to take the request up before the client
  // gives up (else nothing was started, so nothing is cancelled); far below the 10 s TTFT.
  Client client(engine.port(), harness::client_options(1s));
  const Reply r = client.post("/v1/chat/completions", chat_body("slow"));
  EXPECT_EQ(r.send_error, Error::upstream_timeout);
  EXPECT_TRUE(harness::eventually([&] { return engine.service().stats().cancelled == 1; }));
  // The request is counted as cancelled before its session has finished unwinding.
  EXPECT_TRUE(harness::eventually([&] { return engine.server().in_flight() == 0; }));
}

TEST(Engine, ServesConcurrentStreamsIndependently) {
  harness::Engine engine(EngineOptions{.tokens_per_second = 1000}, harness::server_options(2));
  Client client(engine.port());
  const std::string expected = content_of(client.post("/v1/chat/completions", chat_body("same")));
  std::vector<Reply> replies(40);
  for (Reply& r : replies) {
    asio::co_spawn(
        client.ioc(),
        [](net::UpstreamPool& pool, Reply& out) -> asio::awaitable<void> {
          out = co_await harness::exchange(pool, http::verb::post, "/v1/chat/completions",
                                           chat_body("same", R"("stream":true)"));
        }(client.pool(), r),
        asio::detached);
  }
  client.ioc().restart();
  client.ioc().run_for(20s);
  for (const Reply& r : replies) {
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(chat_deltas(sse_data(r.body)), expected);
  }
  const EngineStats s = engine.service().stats();
  EXPECT_EQ(s.completed, 41u);
  EXPECT_EQ(s.streams, 40u);
  EXPECT_EQ(s.tokens, 41 * count_words(expected));
}

}  // namespace
}  // namespace dynaseal::engine
