// Reading OpenAI request bodies in the stand-in engine: strictness, token counts, caps.

#include "engine/request.hpp"

#include <vector>

#include <gtest/gtest.h>

#include "engine/text.hpp"

namespace dynaseal::engine {
namespace {

const std::vector<std::string> kModels = {"demo", "other"};

tl::expected<CompletionRequest, ApiError> chat(std::string_view body) {
  return read_completion_request(Endpoint::chat, body, kModels, 0);
}
tl::expected<CompletionRequest, ApiError> completions(std::string_view body) {
  return read_completion_request(Endpoint::completions, body, kModels, 0);
}

std::string code_of(const tl::expected<CompletionRequest, ApiError>& r) {
  return r ? "ok" : std::string(r.error().code);
}

TEST(ReadCompletionRequest, CountsChatWordsPlusOnePerMessage) {
  auto r = chat(R"({"model":"demo","messages":[
      {"role":"system","content":"You are terse."},
      {"role":"user","content":[{"type":"text","text":"Say  hello"},
                                {"type":"image_url","image_url":{"url":"x y z"}}]},
      {"role":"assistant","content":null,"tool_calls":[]}]})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->prompt_tokens, 3 + 3 + 2);  // roles, "You are terse.", "Say hello"
  EXPECT_EQ(r->model, 0u);
  EXPECT_FALSE(r->stream);
  EXPECT_FALSE(r->max_tokens);
  EXPECT_EQ(r->fault, Fault::none);
}

TEST(ReadCompletionRequest, CountsCompletionPromptsAsStringOrArray) {
  auto one = completions(R"({"model":"other","prompt":"one two three"})");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->prompt_tokens, 3);
  EXPECT_EQ(one->model, 1u);
  auto many = completions(R"({"model":"demo","prompt":["one two","three"]})");
  ASSERT_TRUE(many);
  EXPECT_EQ(many->prompt_tokens, 3);
  EXPECT_NE(one->prompt_hash, many->prompt_hash);
}

TEST(ReadCompletionRequest, HashDependsOnModelPromptAndSeed) {
  const std::string body = R"({"model":"demo","prompt":"same"})";
  const auto base = completions(body)->prompt_hash;
  EXPECT_EQ(completions(body)->prompt_hash, base);
  EXPECT_NE(completions(R"({"model":"other","prompt":"same"})")->prompt_hash, base);
  EXPECT_NE(completions(R"({"model":"demo","prompt":"Same"})")->prompt_hash, base);
  EXPECT_NE(read_completion_request(Endpoint::completions, body, kModels, 7)->prompt_hash, base);
}

TEST(ReadCompletionRequest, TakesTheSmallerOfBothChatCaps) {
  EXPECT_EQ(chat(R"({"model":"demo","messages":[{"role":"user","content":"x"}],
                     "max_tokens":9,"max_completion_tokens":4})")
                ->max_tokens,
            4);
  EXPECT_EQ(chat(R"({"model":"demo","messages":[{"role":"user","content":"x"}],
                     "max_completion_tokens":6})")
                ->max_tokens,
            6);
  // Completions know only max_tokens.
  EXPECT_EQ(completions(R"({"model":"demo","prompt":"x","max_completion_tokens":2})")->max_tokens,
            std::nullopt);
}

TEST(ReadCompletionRequest, ReadsStreamOptionsAndTreatsNullAsAbsent) {
  auto r = chat(R"({"model":"demo","messages":[{"role":"user","content":"x"}],"stream":true,
                    "stream_options":{"include_usage":true},"n":null,"max_tokens":null})");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  EXPECT_FALSE(r->max_tokens);
}

TEST(ReadCompletionRequest, FindsAFaultMarkerInAnyMessage) {
  auto r = chat(R"({"model":"demo","messages":[{"role":"system","content":"x"},
                    {"role":"user","content":"go [[fault:truncate]]"}]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->fault, Fault::truncate);
  EXPECT_EQ(r->prompt_tokens, 2 + 1 + 2);  // the marker is a word like any other
}

TEST(ReadCompletionRequest, RefusesWhatOpenAiRefuses) {
  const std::string msgs = R"("messages":[{"role":"user","content":"x"}])";
  EXPECT_EQ(code_of(chat("{")), "body_malformed");
  EXPECT_EQ(code_of(chat("[]")), "body_malformed");
  EXPECT_EQ(code_of(chat(R"({"model":"demo","model":"demo",)" + msgs + "}")), "body_malformed");
  EXPECT_EQ(code_of(chat("{" + msgs + "}")), "model_missing");
  EXPECT_EQ(code_of(chat(R"({"model":7,)" + msgs + "}")), "body_malformed");
  EXPECT_EQ(code_of(chat(R"({"model":"gpt-9",)" + msgs + "}")), "model_not_found");
  EXPECT_EQ(chat(R"({"model":"gpt-9",)" + msgs + "}").error().status, 404u);
  EXPECT_EQ(code_of(chat(R"({"model":"demo","n":2,)" + msgs + "}")), "n_not_supported");
  EXPECT_EQ(code_of(chat(R"({"model":"demo","n":0,)" + msgs + "}")), "body_malformed");
  EXPECT_EQ(code_of(chat(R"({"model":"demo","max_tokens":0,)" + msgs + "}")), "body_malformed");
  EXPECT_EQ(code_of(chat(R"({"model":"demo","max_tokens":1.5,)" + msgs + "}")), "body_malformed");
  EXPECT_EQ(code_of(chat(R"({"model":"demo","stream":"yes",)" + msgs + "}")), "body_malformed");
  EXPECT_EQ(
      code_of(chat(R"({"model":"demo","stream_options":{"include_usage":true},)" + msgs + "}")),
      "body_malformed");
  EXPECT_EQ(code_of(chat(R"({"model":"demo","messages":[]})")), "body_malformed");
  EXPECT_EQ(code_of(chat(R"({"model":"demo","messages":[{"content":"x"}]})")), "body_malformed");
  EXPECT_EQ(code_of(chat(R"({"model":"demo","messages":[{"role":"user","content":5}]})")),
            "body_malformed");
  EXPECT_EQ(
      code_of(chat(R"({"model":"demo","messages":[{"role":"user","content":"[[fault:x]]"}]})")),
      "fault_unknown");
  EXPECT_EQ(code_of(completions(R"({"model":"demo"})")), "body_malformed");
  EXPECT_EQ(code_of(completions(R"({"model":"demo","prompt":[1,2,3]})")), "body_malformed");
}

TEST(ErrorBody, IsTheOpenAiErrorShapeWithEscaping) {
  EXPECT_EQ(
      error_body({404, "invalid_request_error", "model_not_found", "no \"x\""}),
      R"({"error":{"message":"no \"x\"","type":"invalid_request_error","code":"model_not_found"}})");
}

}  // namespace
}  // namespace dynaseal::engine
