// OpenAI bodies and stream events written by the stand-in engine: exact bytes and valid JSON.

#include "engine/response.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace dynaseal::engine {
namespace {

namespace json = boost::json;

ResponseMeta meta(Endpoint e, bool include_usage = false) {
  return {e, 42, 1700000000, R"("demo")", include_usage};
}

TEST(CompletionBody, WritesAChatCompletion) {
  EXPECT_EQ(completion_body(meta(Endpoint::chat), "hello world", "stop", {5, 2}),
            R"({"id":"chatcmpl-42","object":"chat.completion","created":1700000000,)"
            R"("model":"demo","choices":[{"index":0,"message":{"role":"assistant",)"
            R"("content":"hello world"},"logprobs":null,"finish_reason":"stop"}],)"
            R"("usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}})");
}

TEST(CompletionBody, WritesATextCompletion) {
  EXPECT_EQ(completion_body(meta(Endpoint::completions), "hi", "length", {1, 1}),
            R"({"id":"cmpl-42","object":"text_completion","created":1700000000,)"
            R"("model":"demo","choices":[{"text":"hi","index":0,"logprobs":null,)"
            R"("finish_reason":"length"}],)"
            R"("usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}})");
}

TEST(ChunkWriter, WritesChatEventsWithNullUsageWhenUsageIsRequested) {
  const ChunkWriter w(meta(Endpoint::chat, true));
  std::string out;
  w.token(out, "hi", true);
  EXPECT_EQ(out, R"(data: {"id":"chatcmpl-42","object":"chat.completion.chunk",)"
                 R"("created":1700000000,"model":"demo","choices":[{"index":0,)"
                 R"("delta":{"content":"hi "},"logprobs":null,"finish_reason":null}],)"
                 R"("usage":null})"
                 "\n\n");
  out.clear();
  w.usage(out, {3, 4});
  EXPECT_EQ(out, R"(data: {"id":"chatcmpl-42","object":"chat.completion.chunk",)"
                 R"("created":1700000000,"model":"demo","choices":[],)"
                 R"("usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}})"
                 "\n\n");
}

TEST(ChunkWriter, EveryEventIsOneDataLineOfValidJson) {
  for (Endpoint e : {Endpoint::chat, Endpoint::completions}) {
    const ChunkWriter w(meta(e, e == Endpoint::chat));
    std::string out;
    w.role(out);
    w.token(out, "a", false);
    w.finish(out, "stop");
    w.usage(out, {1, 1});
    for (std::size_t at = 0; at < out.size();) {
      const std::size_t end = out.find("\n\n", at);
      ASSERT_NE(end, std::string::npos);
      const std::string_view event = std::string_view(out).substr(at, end - at);
      ASSERT_EQ(event.substr(0, 6), "data: ");
      ASSERT_EQ(event.find('\n'), std::string_view::npos);
      EXPECT_NO_THROW(json::parse(event.substr(6))) << event;
      at = end + 2;
    }
  }
  std::string done;
  ChunkWriter::done(done);
  EXPECT_EQ(done, "data: [DONE]\n\n");
}

}  // namespace
}  // namespace dynaseal::engine
