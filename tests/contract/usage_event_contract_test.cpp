// The usage event's contract between the two processes that share it (issue 15): every event the
// server writes — each status, with and without estimated counts, with odd strings — is one the
// backend's gate accepts, member for member. Once, events the server wrote for failed uses
// (an empty response_sha256) were refused by the backend, and only a stand-in receiver saw them.

#include <gtest/gtest.h>

#include "backend/usage_event.hpp"
#include "core/usage_event.hpp"
#include "server/outbox.hpp"
#include "server/usage.hpp"

namespace dynaseal {
namespace {

server::UsageRecord record(UsageStatus status, UsageEstimate estimate) {
  return {.event_id = "evt_0123456789abcdef",
          .use = 3,
          .server = "llm-1",
          .iss = "acme",
          .sub = "user \"42\"\n\u00e9",
          .model = "demo",
          .endpoint = Endpoint::completions,
          .stream = true,
          .status = status,
          .usage = {.prompt = 412, .completion = 17},
          .usage_reported = estimate == UsageEstimate::none,
          .estimate = estimate,
          .started_at_ms = 1'800'000'000'123,
          .finished_at_ms = 1'800'000'001'456,
          .request_sha256 = std::string(64, 'a'),
          .ctx = "opaque \\ context"};
}

TEST(UsageEventContract, TheBackendAcceptsEveryEventTheServerWrites) {
  for (UsageStatus status : {UsageStatus::ok, UsageStatus::over_cap, UsageStatus::upstream_error,
                             UsageStatus::client_disconnected, UsageStatus::interrupted}) {
    for (UsageEstimate estimate : {UsageEstimate::none, UsageEstimate::prompt_bound}) {
      const server::UsageRecord r = record(status, estimate);
      auto event = backend::parse_usage_event(server::usage_event_json(r));
      ASSERT_TRUE(event) << to_string(status) << " " << to_string(estimate) << ": "
                         << server::usage_event_json(r);
      EXPECT_EQ(event->status, to_string(status));
      EXPECT_EQ(event->event_id, r.event_id);
      EXPECT_EQ(event->use, r.use);
      EXPECT_EQ(event->sub, r.sub);
      EXPECT_EQ(event->endpoint, "completions");
      EXPECT_EQ(event->prompt_tokens, 412);
      EXPECT_EQ(event->completion_tokens, 17);
      EXPECT_EQ(event->total_tokens, 429);
      EXPECT_EQ(event->request_sha256, r.request_sha256);
      EXPECT_EQ(event->response_sha256, kEmptySha256);  // the client received nothing
      EXPECT_EQ(event->ctx, r.ctx);
      if (estimate == UsageEstimate::none) {
        EXPECT_FALSE(event->usage_estimate);
      } else {
        EXPECT_EQ(event->usage_estimate, std::optional<std::string>("prompt_bound"));
      }
    }
  }
}

// The event a server's journal or outbox holds for a use it may not finish: if the server dies,
// this body is what the backend receives, with the prompt's bound as an estimate.
TEST(UsageEventContract, TheInterruptedEventIsAcceptedAndBillsThePromptBound) {
  server::UsageRecord r = record(UsageStatus::ok, UsageEstimate::none);
  r.prompt_bound = 530;
  auto event = backend::parse_usage_event(server::interrupted_event_json(r));
  ASSERT_TRUE(event) << server::interrupted_event_json(r);
  EXPECT_EQ(event->status, "interrupted");
  EXPECT_EQ(event->prompt_tokens, 530);
  EXPECT_EQ(event->completion_tokens, 0);
  EXPECT_EQ(event->usage_estimate, std::optional<std::string>("prompt_bound"));
}

TEST(UsageEventContract, EveryStatusAndEstimateRoundTripsThroughItsName) {
  for (UsageStatus s : {UsageStatus::ok, UsageStatus::over_cap, UsageStatus::upstream_error,
                        UsageStatus::client_disconnected, UsageStatus::interrupted}) {
    EXPECT_EQ(parse_usage_status(to_string(s)), s);
  }
  EXPECT_FALSE(parse_usage_status("failed"));
  EXPECT_EQ(parse_usage_estimate(to_string(UsageEstimate::prompt_bound)),
            UsageEstimate::prompt_bound);
  EXPECT_FALSE(parse_usage_estimate("none"));  // never written: the member is absent instead
}

}  // namespace
}  // namespace dynaseal
