#include "server/completion_request.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace dynaseal::server {
namespace {

Result<CompletionRequest> parse(std::string_view body, Endpoint e = Endpoint::chat_completions) {
  return parse_completion_request(body, e, 1 << 20);
}

TEST(CompletionRequest, ReadsTheFactsTheScopeNeeds) {
  auto r = parse(R"({"model":"demo","stream":true,"n":1,"max_tokens":50,
                     "stream_options":{"include_usage":true},"messages":[]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->model, "demo");
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->client_wants_usage);
  EXPECT_EQ(r->max_tokens, 50);
  const RequestFacts f = r->facts();
  EXPECT_EQ(f.model, "demo");
  EXPECT_EQ(f.n, 1);
  EXPECT_TRUE(f.stream);
}

TEST(CompletionRequest, TreatsNullsAsAbsent) {
  auto r =
      parse(R"({"model":"demo","stream":null,"n":null,"max_tokens":null,"stream_options":null})");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->stream);
  EXPECT_EQ(r->n, 1);
  EXPECT_FALSE(r->max_tokens);
}

TEST(CompletionRequest, ChecksTheLargerOfTheTwoMaxTokenFields) {
  auto r = parse(R"({"model":"demo","max_tokens":10,"max_completion_tokens":99})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->max_tokens, 99);
  r = parse(R"({"model":"demo","max_completion_tokens":7})");
  EXPECT_EQ(r->max_tokens, 7);
}

TEST(CompletionRequest, RefusesMalformedBodies) {
  for (std::string_view body :
       {"", "[]", "{", R"({"model":"demo","model":"other"})", R"({"model":7})",
        R"({"model":"demo","stream":"yes"})", R"({"model":"demo","n":1.5})",
        R"({"model":"demo","max_tokens":"10"})", R"({"model":"demo","max_tokens":1e3})",
        R"({"model":"demo","stream_options":[]})",
        R"({"model":"demo","stream_options":{"include_usage":1}})"}) {
    auto r = parse(body);
    ASSERT_FALSE(r) << body;
    EXPECT_EQ(r.error(), Error::body_malformed) << body;
  }
}

TEST(CompletionRequest, NamesAMissingModel) {
  EXPECT_EQ(parse(R"({"messages":[]})").error(), Error::model_missing);
  EXPECT_EQ(parse(R"({"model":null})").error(), Error::model_missing);
  EXPECT_EQ(parse(R"({"model":""})").error(), Error::model_missing);
}

TEST(CompletionRequest, BoundsTheBodySize) {
  EXPECT_EQ(parse_completion_request(R"({"model":"demo"})", Endpoint::completions, 5).error(),
            Error::body_malformed);
}

const std::vector<std::string> kMaxTokens{"max_tokens"};

TEST(CompletionRequest, InjectsTheCapWhenNoMaxTokensWasGiven) {
  auto r = parse(R"({"model":"demo","messages":[{"role":"user","content":"hi"}]})");
  const auto out = boost::json::parse(r->upstream_body(64, kMaxTokens)).as_object();
  EXPECT_EQ(out.at("max_tokens").as_int64(), 64);
  EXPECT_FALSE(out.contains("max_completion_tokens"));
  EXPECT_FALSE(out.contains("stream_options"));
  EXPECT_EQ(out.at("messages").as_array().size(), 1u);
}

TEST(CompletionRequest, SendsTheCapInTheEnginesFieldsOnly) {
  // The client's spelling goes; the engine's field(s) carry the cap.
  auto r = parse(R"({"model":"demo","max_completion_tokens":500})");
  auto out = boost::json::parse(r->upstream_body(40, kMaxTokens)).as_object();
  EXPECT_EQ(out.at("max_tokens").as_int64(), 40);
  EXPECT_FALSE(out.contains("max_completion_tokens"));
  r = parse(R"({"model":"demo","max_tokens":9,"max_completion_tokens":500})");
  out = boost::json::parse(r->upstream_body(40, {"max_tokens", "n_predict"})).as_object();
  EXPECT_EQ(out.at("max_tokens").as_int64(), 40);
  EXPECT_EQ(out.at("n_predict").as_int64(), 40);
  EXPECT_FALSE(out.contains("max_completion_tokens"));
  r = parse(R"({"model":"demo","max_tokens":9})");
  out = boost::json::parse(r->upstream_body(9, {"max_completion_tokens"})).as_object();
  EXPECT_EQ(out.at("max_completion_tokens").as_int64(), 9);
  EXPECT_FALSE(out.contains("max_tokens"));
}

TEST(CompletionRequest, AsksForUsageOnStreams) {
  auto r = parse(R"({"model":"demo","stream":true,"stream_options":{"include_usage":false}})");
  EXPECT_FALSE(r->client_wants_usage);
  auto out = boost::json::parse(r->upstream_body(8, kMaxTokens)).as_object();
  EXPECT_TRUE(out.at("stream_options").at("include_usage").as_bool());
  r = parse(R"({"model":"demo","stream":true})");
  out = boost::json::parse(r->upstream_body(8, kMaxTokens)).as_object();
  EXPECT_TRUE(out.at("stream_options").at("include_usage").as_bool());
}

TEST(CompletionRequest, MapsEndpointsToPaths) {
  EXPECT_EQ(endpoint_path(Endpoint::chat_completions), "/v1/chat/completions");
  EXPECT_EQ(endpoint_path(Endpoint::completions), "/v1/completions");
}

}  // namespace
}  // namespace dynaseal::server
