// Reading a streamed chat completion: deltas in order as bytes arrive, however they are split;
// [DONE]; error events; truncation.

#include "client/chat_stream.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace dynaseal::client {
namespace {

std::string chunk(std::string_view content) {
  return R"(data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":")" +
         std::string(content) + R"("},"finish_reason":null}]})" + "\n\n";
}

// A stream as the Dynaseal server relays it from the stand-in engine, with usage asked for.
const std::string kStream =
    R"(data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})"
    "\n\n" +
    chunk("alpha ") + ": keep-alive\n\n" + chunk("beta ") + chunk("gamma") +
    R"(data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})"
    "\n\n"
    R"(data: {"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5}})"
    "\n\n"
    "data: [DONE]\n\n";

struct Collected {
  std::vector<std::string> deltas;
  ChatStreamReader reader{200, [this](std::string_view d) { deltas.emplace_back(d); }};
};

TEST(ChatStreamReader, DeliversDeltasInOrderAndTheResult) {
  Collected c;
  EXPECT_FALSE(c.reader.feed(kStream));
  EXPECT_TRUE(c.reader.done());
  EXPECT_EQ(c.deltas, (std::vector<std::string>{"alpha ", "beta ", "gamma"}));
  auto r = c.reader.finish();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->content, "alpha beta gamma");
  EXPECT_EQ(r->finish_reason, "stop");
  EXPECT_EQ(r->usage, (Usage{2, 3, 5}));
}

TEST(ChatStreamReader, GivesTheSameResultWhateverTheSplit) {
  for (std::size_t size : {1u, 2u, 3u, 7u, 64u}) {
    Collected c;
    for (std::size_t at = 0; at < kStream.size(); at += size) {
      ASSERT_FALSE(c.reader.feed(std::string_view(kStream).substr(at, size)));
    }
    EXPECT_EQ(c.deltas, (std::vector<std::string>{"alpha ", "beta ", "gamma"})) << size;
    auto r = c.reader.finish();
    ASSERT_TRUE(r) << size;
    EXPECT_EQ(r->content, "alpha beta gamma");
  }
}

TEST(ChatStreamReader, DeliversEachDeltaBeforeTheNextBytesArrive) {
  Collected c;
  c.reader.feed(chunk("one "));
  EXPECT_EQ(c.deltas.size(), 1u);
  c.reader.feed(chunk("two"));
  EXPECT_EQ(c.deltas.size(), 2u);
  EXPECT_FALSE(c.reader.done());
}

TEST(ChatStreamReader, IgnoresEverythingAfterDone) {
  Collected c;
  c.reader.feed(chunk("a") + "data: [DONE]\n\n" + chunk("b") + "data: not json\n\n");
  auto r = c.reader.finish();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->content, "a");
  EXPECT_EQ(c.deltas.size(), 1u);
}

TEST(ChatStreamReader, AnErrorEventEndsTheStreamWithItsCode) {
  // What the server writes when the engine's stream breaks (stream_relay.cpp).
  Collected c;
  auto e = c.reader.feed(
      chunk("partial ") +
      R"(data: {"error":{"message":"the inference engine failed","type":"upstream_error",)"
      R"("code":"upstream_error"}})"
      "\n\n" +
      chunk("never"));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, ClientError::Kind::http);
  EXPECT_EQ(e->http_status, 200);
  EXPECT_EQ(e->code, "upstream_error");
  EXPECT_EQ(c.deltas, (std::vector<std::string>{"partial "}));
  EXPECT_EQ(c.reader.feed(chunk("more"))->code, "upstream_error");  // stays failed
  EXPECT_EQ(c.reader.finish().error().code, "upstream_error");
}

TEST(ChatStreamReader, AMalformedEventIsAProtocolError) {
  Collected c;
  auto e = c.reader.feed(chunk("a") + "data: {\"choices\":[}\n\n");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, ClientError::Kind::protocol);
  EXPECT_EQ(e->code, kResponseMalformed);
}

TEST(ChatStreamReader, AStreamWithoutDoneIsTruncated) {
  Collected c;
  c.reader.feed(chunk("a") + chunk("b"));
  auto r = c.reader.finish();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ClientError::Kind::protocol);
  EXPECT_EQ(r.error().code, kStreamTruncated);

  Collected partial;
  partial.reader.feed("data: [DO");  // the last line never completed
  EXPECT_EQ(partial.reader.finish().error().code, kStreamTruncated);
}

TEST(ChatStreamReader, AnOversizedEventFails) {
  ChatStreamReader reader(200, {}, 1 << 20, 64);
  auto e = reader.feed("data: " + std::string(100, 'x'));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, kResponseTooLarge);
}

TEST(ChatStreamReader, AnAnswerAboveTheLimitFails) {
  std::string shown;
  ChatStreamReader reader(
      200, [&](std::string_view d) { shown += d; }, 8);
  auto e = reader.feed(chunk("12345") + chunk("6789") + "data: [DONE]\n\n");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, ClientError::Kind::protocol);
  EXPECT_EQ(e->code, kResponseTooLarge);
  EXPECT_EQ(shown, "12345");
}

TEST(ChatStreamReader, WorksWithoutACallback) {
  ChatStreamReader reader(200, {});
  EXPECT_FALSE(reader.feed(kStream));
  EXPECT_EQ(reader.finish()->content, "alpha beta gamma");
}

}  // namespace
}  // namespace dynaseal::client
