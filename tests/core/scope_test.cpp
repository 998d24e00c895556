#include "core/scope.hpp"

#include <gtest/gtest.h>

namespace dynaseal {
namespace {

Scope demo_scope() {
  Scope s;
  s.models = {"demo", "big"};
  s.max_tokens = 100;
  return s;
}

TEST(Scope, ForwardsTheRequestedMaxTokens) {
  EXPECT_EQ(check_scope(demo_scope(), {.model = "demo", .max_tokens = 40}), 40);
  EXPECT_EQ(check_scope(demo_scope(), {.model = "big", .max_tokens = 100}), 100);
}

TEST(Scope, InjectsTheCapWhenTheRequestGivesNone) {
  EXPECT_EQ(check_scope(demo_scope(), {.model = "demo"}), 100);
}

TEST(Scope, RefusesMaxTokensAboveTheCap) {
  EXPECT_EQ(check_scope(demo_scope(), {.model = "demo", .max_tokens = 101}).error(),
            Error::max_tokens_exceeded);
}

TEST(Scope, RefusesNonPositiveNumbersAsMalformed) {
  EXPECT_EQ(check_scope(demo_scope(), {.model = "demo", .max_tokens = 0}).error(),
            Error::body_malformed);
  EXPECT_EQ(check_scope(demo_scope(), {.model = "demo", .n = 0}).error(), Error::body_malformed);
}

TEST(Scope, RefusesModelsOutsideTheScope) {
  EXPECT_EQ(check_scope(demo_scope(), {.model = "Demo"}).error(), Error::model_not_allowed);
  EXPECT_EQ(check_scope(demo_scope(), {.model = ""}).error(), Error::model_not_allowed);
}

TEST(Scope, RefusesMoreThanOneChoice) {
  EXPECT_EQ(check_scope(demo_scope(), {.model = "demo", .n = 2}).error(), Error::n_not_allowed);
  EXPECT_TRUE(check_scope(demo_scope(), {.model = "demo", .n = 1}));
}

TEST(Scope, RefusesStreamingWhenTheScopeForbidsIt) {
  Scope s = demo_scope();
  EXPECT_TRUE(check_scope(s, {.model = "demo", .stream = true}));
  s.stream = false;
  EXPECT_EQ(check_scope(s, {.model = "demo", .stream = true}).error(), Error::stream_not_allowed);
  EXPECT_TRUE(check_scope(s, {.model = "demo", .stream = false}));
}

TEST(Scope, RefusesEndpointsOutsideTheScope) {
  Scope s = demo_scope();
  s.endpoints = static_cast<std::uint8_t>(Endpoint::completions);
  EXPECT_EQ(check_scope(s, {.endpoint = Endpoint::chat_completions, .model = "demo"}).error(),
            Error::endpoint_not_allowed);
  EXPECT_TRUE(check_scope(s, {.endpoint = Endpoint::completions, .model = "demo"}));
}

TEST(Scope, ChecksInTheDocumentedOrder) {
  Scope s = demo_scope();
  s.stream = false;
  s.endpoints = static_cast<std::uint8_t>(Endpoint::completions);
  RequestFacts all_wrong{.endpoint = Endpoint::chat_completions,
                         .model = "x",
                         .max_tokens = 1000,
                         .n = 3,
                         .stream = true};
  EXPECT_EQ(check_scope(s, all_wrong).error(), Error::endpoint_not_allowed);
  all_wrong.endpoint = Endpoint::completions;
  EXPECT_EQ(check_scope(s, all_wrong).error(), Error::model_not_allowed);
  all_wrong.model = "demo";
  EXPECT_EQ(check_scope(s, all_wrong).error(), Error::stream_not_allowed);
  all_wrong.stream = false;
  EXPECT_EQ(check_scope(s, all_wrong).error(), Error::n_not_allowed);
  all_wrong.n = 1;
  EXPECT_EQ(check_scope(s, all_wrong).error(), Error::max_tokens_exceeded);
}

TEST(Scope, NamesEndpointsAsTheTokenDoes) {
  EXPECT_EQ(to_string(Endpoint::chat_completions), "chat.completions");
  EXPECT_EQ(parse_endpoint("completions"), Endpoint::completions);
  EXPECT_FALSE(parse_endpoint("embeddings"));
}

}  // namespace
}  // namespace dynaseal
