#include "server/stream_relay.hpp"

#include <gtest/gtest.h>

namespace dynaseal::server {
namespace {

constexpr std::string_view kChunk =
    R"({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi "}}],"usage":null})";
constexpr std::string_view kUsage =
    R"({"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})";

std::string event(std::string_view data) { return "data: " + std::string(data) + "\n\n"; }

std::string stream() { return event(kChunk) + event(kChunk) + event(kUsage) + event("[DONE]"); }

TEST(StreamRelay, RelaysEventsAndKeepsUsageWhenAsked) {
  StreamRelay relay(true, 1000);
  std::string out;
  ASSERT_TRUE(relay.feed(stream(), out));
  EXPECT_EQ(out, stream());
  EXPECT_TRUE(relay.complete());
  ASSERT_TRUE(relay.usage());
  EXPECT_EQ(relay.usage()->prompt, 3);
  EXPECT_EQ(relay.usage()->completion, 2);
  EXPECT_EQ(relay.content_chunks(), 2);
}

TEST(StreamRelay, StripsUsageTheClientDidNotAskFor) {
  StreamRelay relay(false, 1000);
  std::string out;
  ASSERT_TRUE(relay.feed(stream(), out));
  EXPECT_EQ(out.find("usage"), std::string::npos) << out;
  EXPECT_NE(out.find("\"hi \""), std::string::npos);
  EXPECT_TRUE(out.ends_with("data: [DONE]\n\n"));
  ASSERT_TRUE(relay.usage());  // still counted
  EXPECT_EQ(relay.usage()->prompt + relay.usage()->completion, 5);
}

TEST(StreamRelay, StripsUsageFromAChunkThatAlsoCarriesChoices) {
  const std::string both =
      R"({"choices":[{"index":0,"delta":{"content":"x"}}],"usage":{"prompt_tokens":1,"completion_tokens":1}})";
  StreamRelay relay(false, 1000);
  std::string out;
  ASSERT_TRUE(relay.feed(event(both) + event("[DONE]"), out));
  EXPECT_EQ(out, event(R"({"choices":[{"index":0,"delta":{"content":"x"}}]})") + event("[DONE]"));
  EXPECT_EQ(relay.usage()->completion, 1);
}

TEST(StreamRelay, GivesTheSameOutputWhateverTheSplit) {
  const std::string whole = stream();
  std::string expected;
  StreamRelay(false, 1000).feed(whole, expected);
  for (std::size_t cut = 0; cut <= whole.size(); ++cut) {
    StreamRelay relay(false, 1000);
    std::string out;
    ASSERT_TRUE(relay.feed(std::string_view(whole).substr(0, cut), out));
    ASSERT_TRUE(relay.feed(std::string_view(whole).substr(cut), out));
    EXPECT_EQ(out, expected) << cut;
    EXPECT_TRUE(relay.complete());
  }
}

TEST(StreamRelay, PassesCommentsOn) {
  StreamRelay relay(false, 1000);
  std::string out;
  ASSERT_TRUE(relay.feed(": keep-alive\n\n" + event(kChunk), out));
  EXPECT_TRUE(out.starts_with(": keep-alive\n"));
}

TEST(StreamRelay, RefusesDataThatIsNotJson) {
  StreamRelay relay(true, 1000);
  std::string out;
  EXPECT_FALSE(relay.feed(event(kChunk) + event("not json"), out));
  EXPECT_FALSE(relay.feed(event(kChunk), out));  // stays failed
  EXPECT_FALSE(relay.complete());
}

TEST(StreamRelay, RefusesDuplicateMembersInAChunk) {
  StreamRelay relay(true, 1000);
  std::string out;
  EXPECT_FALSE(relay.feed(event(R"({"choices":[],"choices":[]})"), out));
}

TEST(StreamRelay, IsNotCompleteWithoutDone) {
  StreamRelay relay(true, 1000);
  std::string out;
  ASSERT_TRUE(relay.feed(event(kChunk), out));
  EXPECT_FALSE(relay.complete());
  ASSERT_TRUE(relay.feed("data: [DO", out));
  EXPECT_FALSE(relay.complete());
}

TEST(StreamRelay, IgnoresAnythingAfterDone) {
  StreamRelay relay(true, 1000);
  std::string out;
  ASSERT_TRUE(relay.feed(event("[DONE]") + event(kChunk), out));
  EXPECT_EQ(out, event("[DONE]"));
}

TEST(StreamRelay, WritesAnOpenAiShapedErrorEvent) {
  std::string out;
  StreamRelay::append_error(out, Error::upstream_timeout);
  EXPECT_EQ(out,
            "data: {\"error\":{\"message\":\"the inference engine timed out\",\"type\":"
            "\"upstream_error\",\"code\":\"upstream_timeout\"}}\n\n");
}

}  // namespace
}  // namespace dynaseal::server
