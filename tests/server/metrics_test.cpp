#include "server/metrics.hpp"

#include <gtest/gtest.h>

namespace dynaseal::server {
namespace {

TEST(Metrics, CountsRequestsByEndpointStatusAndCode) {
  Metrics m({"demo"});
  m.request(Route::chat_completions, 200, std::nullopt, 0.002);
  m.request(Route::chat_completions, 200, std::nullopt, 0.003);
  m.request(Route::completions, 401, Error::token_expired, 0.0001);
  m.request(Route::completions, 418, Error::upstream_error, 0.0001);
  const std::string out = m.render(7);
  EXPECT_NE(
      out.find(
          "dynaseal_requests_total{endpoint=\"chat.completions\",status=\"200\",code=\"ok\"} 2\n"),
      std::string::npos)
      << out;
  EXPECT_NE(out.find("dynaseal_auth_failures_total{code=\"token_expired\"} 1\n"),
            std::string::npos);
  EXPECT_NE(out.find("status=\"other\",code=\"upstream_error\"} 1\n"), std::string::npos);
  EXPECT_NE(out.find("dynaseal_open_connections 7\n"), std::string::npos);
}

TEST(Metrics, RendersCumulativeHistograms) {
  Metrics m({});
  m.request(Route::models, 200, std::nullopt, 0.0004);
  m.request(Route::models, 200, std::nullopt, 0.2);
  const std::string out = m.render(0);
  EXPECT_NE(
      out.find("dynaseal_request_duration_seconds_bucket{endpoint=\"models\",le=\"0.0005\"} 1\n"),
      std::string::npos)
      << out;
  EXPECT_NE(
      out.find("dynaseal_request_duration_seconds_bucket{endpoint=\"models\",le=\"+Inf\"} 2\n"),
      std::string::npos);
  EXPECT_NE(out.find("dynaseal_request_duration_seconds_count{endpoint=\"models\"} 2\n"),
            std::string::npos);
}

TEST(Metrics, CountsTokensOfKnownModels) {
  Metrics m({"demo"});
  m.tokens("demo", {12, 40});
  m.tokens("unknown", {1, 1});
  const std::string out = m.render(0);
  EXPECT_NE(out.find("dynaseal_tokens_total{model=\"demo\",kind=\"prompt\"} 12\n"),
            std::string::npos);
  EXPECT_NE(out.find("dynaseal_tokens_total{model=\"demo\",kind=\"completion\"} 40\n"),
            std::string::npos);
}

}  // namespace
}  // namespace dynaseal::server
