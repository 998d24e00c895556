#include "server/request_members.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace dynaseal::server {
namespace {

tl::expected<RequestShape, MemberRefusal> check(std::string_view body,
                                                Endpoint e = Endpoint::chat_completions,
                                                const MemberPolicy& policy = {}) {
  return check_members(boost::json::parse(body).as_object(), e, policy);
}

void expect_refused(std::string_view body, Error code, std::string_view member,
                    Endpoint e = Endpoint::chat_completions, const MemberPolicy& policy = {}) {
  auto r = check(body, e, policy);
  ASSERT_FALSE(r) << body;
  EXPECT_EQ(r.error().code, code) << body;
  EXPECT_EQ(r.error().member, member) << body;
}

TEST(RequestMembers, AcceptsWhatTheOpenAiSdksSend) {
  EXPECT_TRUE(check(R"({"model":"m","messages":[{"role":"user","content":"hi"}],
      "temperature":0.2,"top_p":1,"stop":["x"],"seed":1,"tools":[],"tool_choice":"auto",
      "parallel_tool_calls":true,"response_format":{"type":"json_object"},"user":"u",
      "stream":true,"stream_options":{"include_usage":true},"n":1,"logprobs":false,
      "max_completion_tokens":5,"reasoning_effort":"low","store":false,"metadata":{}})"));
  EXPECT_TRUE(check(R"({"model":"m","prompt":"hi","max_tokens":3,"best_of":1,
      "suffix":"s","logprobs":2})",
                    Endpoint::completions));
}

// The knobs with which engines generate past max_tokens (issue 15): all refused by name.
TEST(RequestMembers, RefusesEveryMemberItDoesNotKnowByName) {
  for (const char* m : {"n_predict", "max_new_tokens", "min_tokens", "ignore_eos", "num_predict",
                        "options", "chat_template_kwargs", "top_k", "x", "audio", "service_tier",
                        "prediction", "web_search_options"}) {
    const std::string body = std::string(R"({"model":"m","messages":[],")") + m + R"(":1})";
    expect_refused(body, Error::member_not_allowed, m);
  }
  expect_refused(R"({"model":"m","prompt":"p","messages":[]})", Error::member_not_allowed,
                 "messages", Endpoint::completions);
  expect_refused(R"({"model":"m","messages":[],"prompt":"p"})", Error::member_not_allowed,
                 "prompt");
}

TEST(RequestMembers, ForwardsTheOperatorsExtrasOnly) {
  const MemberPolicy policy{.extra_members = {"top_k", "repetition_penalty"}};
  EXPECT_TRUE(check(R"({"model":"m","messages":[],"top_k":5,"repetition_penalty":1.1})",
                    Endpoint::chat_completions, policy));
  expect_refused(R"({"model":"m","messages":[],"top_k":5,"min_p":0.1})", Error::member_not_allowed,
                 "min_p", Endpoint::chat_completions, policy);
}

TEST(RequestMembers, AllowsOneAnswerPerRequest) {
  expect_refused(R"({"model":"m","prompt":"p","best_of":3})", Error::n_not_allowed, "best_of",
                 Endpoint::completions);
  expect_refused(R"({"model":"m","messages":[],"n":2})", Error::n_not_allowed, "n");
  expect_refused(R"({"model":"m","prompt":["a","b"]})", Error::n_not_allowed, "prompt",
                 Endpoint::completions);
  expect_refused(R"({"model":"m","prompt":[[1,2],[3]]})", Error::n_not_allowed, "prompt",
                 Endpoint::completions);
  expect_refused(R"({"model":"m","prompt":[]})", Error::body_malformed, "prompt",
                 Endpoint::completions);
  for (const char* one : {R"("p")", R"(["p"])", "[1,2,3]", "[[1,2]]"}) {
    EXPECT_TRUE(check(std::string(R"({"model":"m","prompt":)") + one + "}", Endpoint::completions))
        << one;
  }
}

TEST(RequestMembers, RefusesMediaWithoutABoundAndCountsItWithOne) {
  const char* image = R"({"model":"m","messages":[{"role":"user","content":[
      {"type":"text","text":"what is this"},
      {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]})";
  expect_refused(image, Error::content_not_allowed, "messages[0].content[1]");
  auto shape = check(image, Endpoint::chat_completions, {.media_item_tokens = 1500});
  ASSERT_TRUE(shape);
  EXPECT_EQ(shape->media_items, 1);
  expect_refused(R"({"model":"m","messages":[{"role":"user","content":[{"type":"video"}]}]})",
                 Error::content_not_allowed, "messages[0].content[0]", Endpoint::chat_completions,
                 {.media_item_tokens = 1500});
  expect_refused(R"({"model":"m","messages":[],"modalities":["text","audio"]})",
                 Error::content_not_allowed, "modalities");
  EXPECT_TRUE(check(R"({"model":"m","messages":[],"modalities":["text"]})"));
}

TEST(RequestMembers, NoExtraMayChangeTheLength) {
  for (const char* m : {"n_predict", "max_new_tokens", "min_tokens", "ignore_eos", "best_of", "n",
                        "max_tokens", "options", "prompt"}) {
    EXPECT_TRUE(is_length_member(m)) << m;
  }
  EXPECT_FALSE(is_length_member("top_k"));
}

}  // namespace
}  // namespace dynaseal::server
