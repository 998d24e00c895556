// The bodies of the edge client: what it sends, and how strictly it reads the replies.

#include "client/messages.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

namespace dynaseal::client {
namespace {

namespace json = boost::json;

constexpr std::string_view kGrant =
    R"({"key":"aaa.bbb.ccc","event_id":"abcdefghijklmnop","expires_at":1700000060,)"
    R"("server":{"id":"llm-1","url":"http://127.0.0.1:8000"}})";

void expect_malformed(std::string_view body) {
  auto g = parse_key_grant(body);
  ASSERT_FALSE(g) << body;
  EXPECT_EQ(g.error().kind, ClientError::Kind::protocol) << body;
  EXPECT_EQ(g.error().code, kResponseMalformed) << body;
  EXPECT_FALSE(g.error().message.empty());
}

// kGrant with member `name` (of the top level or of "server") replaced by `value`, or removed
// when value is empty.
std::string grant_with(std::string_view name, std::string_view value) {
  json::object o = json::parse(kGrant).as_object();
  json::object* target = &o;
  if (name == "id" || name == "url") target = &o["server"].as_object();
  if (value.empty()) {
    target->erase(name);
  } else {
    (*target)[name] = json::parse(value);
  }
  return json::serialize(o);
}

TEST(KeyRequestJson, WritesOnlyWhatWasAskedFor) {
  EXPECT_EQ(json::parse(key_request_json({.model = "demo"})), json::parse(R"({"model":"demo"})"));
  EXPECT_EQ(json::parse(key_request_json({.model = "m", .max_tokens = 64, .uses = 3})),
            json::parse(R"({"model":"m","max_tokens":64,"uses":3})"));
}

TEST(KeyGrant, ReadsAWellFormedGrant) {
  auto g = parse_key_grant(kGrant);
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_EQ(g->key, "aaa.bbb.ccc");
  EXPECT_EQ(g->event_id, "abcdefghijklmnop");
  EXPECT_EQ(g->expires_at, 1700000060);
  EXPECT_EQ(g->server_id, "llm-1");
  EXPECT_EQ(g->server_url, "http://127.0.0.1:8000");
}

TEST(KeyGrant, IgnoresUnknownMembers) {
  EXPECT_TRUE(parse_key_grant(grant_with("plan", R"("free")")));
}

TEST(KeyGrant, RefusesWhatIsNotAJsonObject) {
  expect_malformed("");
  expect_malformed("not json");
  expect_malformed("<html>oops</html>");
  expect_malformed("[1,2]");
  expect_malformed(std::string(kGrant) + "x");
  // Every truncation is refused.
  for (std::size_t n = 0; n < kGrant.size(); ++n) expect_malformed(kGrant.substr(0, n));
}

TEST(KeyGrant, RefusesDuplicateMembersAtAnyDepth) {
  expect_malformed(R"({"key":"a.b.c","key":"x.y.z","event_id":"abcdefghijklmnop",)"
                   R"("expires_at":1,"server":{"id":"s","url":"http://h"}})");
  expect_malformed(R"({"key":"a.b.c","event_id":"abcdefghijklmnop","expires_at":1,)"
                   R"("server":{"id":"s","url":"http://h","url":"http://evil"}})");
}

TEST(KeyGrant, RefusesEachMissingMember) {
  for (std::string_view name : {"key", "event_id", "expires_at", "server", "id", "url"}) {
    SCOPED_TRACE(name);
    expect_malformed(grant_with(name, ""));
  }
}

TEST(KeyGrant, RefusesMembersOfTheWrongType) {
  expect_malformed(grant_with("key", "42"));
  expect_malformed(grant_with("key", R"("")"));
  expect_malformed(grant_with("event_id", "123456789012345678"));
  expect_malformed(grant_with("event_id", R"("short")"));
  expect_malformed(grant_with("event_id", R"("has spaces in it, sixteen+")"));
  expect_malformed(grant_with("expires_at", R"("1700000060")"));
  expect_malformed(grant_with("expires_at", "1700000060.5"));
  expect_malformed(grant_with("expires_at", "1.7e9"));
  expect_malformed(grant_with("expires_at", "-5"));
  expect_malformed(grant_with("server", R"("http://127.0.0.1:8000")"));
  expect_malformed(grant_with("id", "null"));
  expect_malformed(grant_with("url", "[]"));
}

TEST(ChatRequestJson, WritesTheOpenAiBody) {
  ChatRequest r{.model = "demo", .messages = {{"system", "be brief"}, {"user", "hi \"there\""}}};
  EXPECT_EQ(json::parse(chat_request_json(r)),
            json::parse(R"({"model":"demo","messages":[{"role":"system","content":"be brief"},)"
                        R"({"role":"user","content":"hi \"there\""}]})"));
}

TEST(ChatRequestJson, AStreamAsksForUsage) {
  ChatRequest r{.model = "demo", .messages = {{"user", "x"}}, .max_tokens = 8, .stream = true};
  EXPECT_EQ(
      json::parse(chat_request_json(r)),
      json::parse(R"({"model":"demo","messages":[{"role":"user","content":"x"}],)"
                  R"("max_tokens":8,"stream":true,"stream_options":{"include_usage":true}})"));
}

TEST(ChatCompletion, ReadsContentFinishReasonAndUsage) {
  auto r = parse_chat_completion(
      R"({"id":"c","object":"chat.completion","choices":[{"index":0,"message":)"
      R"({"role":"assistant","content":"hello world"},"finish_reason":"length"}],)"
      R"("usage":{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4}})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->content, "hello world");
  EXPECT_EQ(r->finish_reason, "length");
  EXPECT_EQ(r->usage, (Usage{2, 2, 4}));
}

TEST(ChatCompletion, AcceptsNullContentAndNoUsage) {
  auto r = parse_chat_completion(
      R"({"choices":[{"message":{"role":"assistant","content":null},"finish_reason":null}]})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->content, "");
  EXPECT_EQ(r->finish_reason, "");
  EXPECT_FALSE(r->usage);
}

TEST(ChatCompletion, RefusesWrongShapes) {
  for (std::string_view body : {
           R"({})",
           R"({"choices":[]})",
           R"({"choices":{}})",
           R"({"choices":[1]})",
           R"({"choices":[{"finish_reason":"stop"}]})",
           R"({"choices":[{"message":{"content":5}}]})",
           R"({"choices":[{"message":{"content":"a"},"finish_reason":1}]})",
           R"({"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens":1}})",
           R"({"choices":[{"message":{"content":"a","content":"b"}}]})",
       }) {
    auto r = parse_chat_completion(body);
    ASSERT_FALSE(r) << body;
    EXPECT_EQ(r.error().code, kResponseMalformed) << body;
  }
}

TEST(ChatChunk, ReadsADelta) {
  auto c = parse_chat_chunk(
      R"({"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi "},)"
      R"("finish_reason":null}]})",
      200);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->delta, "hi ");
  EXPECT_FALSE(c->finish_reason);
  EXPECT_FALSE(c->usage);
}

TEST(ChatChunk, ReadsTheRoleChunkTheFinishChunkAndTheUsageChunk) {
  auto role = parse_chat_chunk(R"({"choices":[{"delta":{"role":"assistant"}}]})", 200);
  ASSERT_TRUE(role);
  EXPECT_EQ(role->delta, "");
  auto finish = parse_chat_chunk(R"({"choices":[{"delta":{},"finish_reason":"stop"}]})", 200);
  ASSERT_TRUE(finish);
  EXPECT_EQ(finish->finish_reason, "stop");
  auto usage = parse_chat_chunk(
      R"({"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}})", 200);
  ASSERT_TRUE(usage);
  EXPECT_EQ(usage->usage, (Usage{3, 5, 8}));
}

TEST(ChatChunk, AnErrorEventIsItsHttpError) {
  auto c = parse_chat_chunk(
      R"({"error":{"message":"the engine failed","type":"upstream_error","code":"upstream_error"}})",
      200);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().kind, ClientError::Kind::http);
  EXPECT_EQ(c.error().http_status, 200);
  EXPECT_EQ(c.error().code, "upstream_error");
  EXPECT_EQ(c.error().message, "the engine failed");
}

TEST(ChatChunk, RefusesWrongShapes) {
  for (std::string_view data :
       {"", "[DONE", "{}", R"({"choices":null})", R"({"error":"x"})",
        R"({"choices":[{"delta":"x"}]})", R"({"choices":[{"delta":{"content":1}}]})",
        R"({"choices":[],"usage":{"total_tokens":1}})"}) {
    auto c = parse_chat_chunk(data, 200);
    ASSERT_FALSE(c) << data;
    EXPECT_EQ(c.error().kind, ClientError::Kind::protocol) << data;
    EXPECT_EQ(c.error().code, kResponseMalformed) << data;
  }
}

}  // namespace
}  // namespace dynaseal::client
