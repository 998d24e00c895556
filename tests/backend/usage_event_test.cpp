#include "backend/usage_event.hpp"

#include <sodium.h>

#include <gtest/gtest.h>

#include "backend_fixture.hpp"
#include "core/claims.hpp"

namespace dynaseal::backend {
namespace {

using test::Delivery;
using test::EventSpec;
using test::kNow;

class Callback : public ::testing::Test {
 protected:
  const SigningKey server = testing::seeded_key(21);
  const std::vector<PublicKey> pinned{server.public_key()};

  Result<UsageEvent> check(const Delivery& d, std::int64_t now = kNow) const {
    const CallbackContext ctx{.backend_id = "acme",
                              .server_id = "llm-1",
                              .server_keys = pinned,
                              .now = now,
                              .tolerance = 300};
    return check_callback(d.headers(), d.body, ctx);
  }
  Error error_of(const Delivery& d, std::int64_t now = kNow) const {
    auto r = check(d, now);
    return r ? Error::internal : r.error();
  }
};

TEST_F(Callback, AcceptsASignedEventAndReadsEveryField) {
  EventSpec spec;
  spec.use = 3;
  spec.ctx = "task-9";
  auto e = check(test::sign_event(server, spec));
  ASSERT_TRUE(e) << to_string(e.error());
  EXPECT_EQ(e->event_id, test::kJti);
  EXPECT_EQ(e->use, 3);
  EXPECT_EQ(e->webhook_id(), std::string(test::kJti) + ".3");
  EXPECT_EQ(e->server, "llm-1");
  EXPECT_EQ(e->iss, "acme");
  EXPECT_EQ(e->sub, "bob");
  EXPECT_EQ(e->model, "demo");
  EXPECT_EQ(e->endpoint, "chat.completions");
  EXPECT_TRUE(e->stream);
  EXPECT_EQ(e->status, "ok");
  EXPECT_EQ(e->prompt_tokens, 10);
  EXPECT_EQ(e->completion_tokens, 20);
  EXPECT_EQ(e->total_tokens, 30);
  EXPECT_EQ(e->finished_at, "2027-01-15T08:00:00.250Z");
  EXPECT_EQ(e->finished_unix, kNow);
  EXPECT_EQ(e->ctx, "task-9");
}

TEST_F(Callback, AcceptsEveryStatusOfDesignSection5) {
  for (const char* status : {"ok", "upstream_error", "client_disconnected", "interrupted"}) {
    EventSpec spec;
    spec.status = status;
    EXPECT_TRUE(check(test::sign_event(server, spec))) << status;
  }
}

TEST_F(Callback, RefusesAForgedSignature) {
  const Delivery forged = test::sign_event(testing::seeded_key(22), EventSpec{});
  EXPECT_EQ(error_of(forged), Error::signature_invalid);
  Delivery unsigned_one = test::sign_event(server, EventSpec{});
  unsigned_one.signature = "";
  EXPECT_EQ(error_of(unsigned_one), Error::signature_invalid);
  unsigned_one.signature = "v1,bm90IGFuIGhtYWM=";  // HMAC scheme: never trusted
  EXPECT_EQ(error_of(unsigned_one), Error::signature_invalid);
}

TEST_F(Callback, RefusesEveryBitFlipAndTruncationOfTheSignature) {
  const Delivery good = test::sign_event(server, EventSpec{});
  ASSERT_TRUE(check(good));
  const std::string b64 = good.signature.substr(4);
  Signature sig{};
  std::size_t len = 0;
  ASSERT_EQ(sodium_base642bin(sig.data(), sig.size(), b64.data(), b64.size(), nullptr, &len,
                              nullptr, sodium_base64_VARIANT_ORIGINAL),
            0);
  for (std::size_t bit = 0; bit < sig.size() * 8; ++bit) {
    Signature flipped = sig;
    flipped[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    char text[89];
    sodium_bin2base64(text, sizeof text, flipped.data(), flipped.size(),
                      sodium_base64_VARIANT_ORIGINAL);
    Delivery d = good;
    d.signature = "v1a," + std::string(text);
    EXPECT_EQ(error_of(d), Error::signature_invalid) << "bit " << bit;
  }
  for (std::size_t n = 0; n < good.signature.size(); ++n) {
    Delivery d = good;
    d.signature.resize(n);
    EXPECT_EQ(error_of(d), Error::signature_invalid) << "truncated to " << n;
  }
}

TEST_F(Callback, RefusesABodyChangedAfterSigning) {
  Delivery d = test::sign_event(server, EventSpec{});
  const std::size_t at = d.body.find("\"prompt_tokens\":10");
  ASSERT_NE(at, std::string::npos);
  d.body.replace(at, 18, "\"prompt_tokens\":1");
  EXPECT_EQ(error_of(d), Error::signature_invalid);
}

TEST_F(Callback, RefusesStaleAndFutureTimestamps) {
  const Delivery d = test::sign_event(server, EventSpec{}, kNow);
  EXPECT_TRUE(check(d, kNow + 300));
  EXPECT_TRUE(check(d, kNow - 300));
  EXPECT_EQ(error_of(d, kNow + 301), Error::timestamp_stale);
  EXPECT_EQ(error_of(d, kNow - 301), Error::timestamp_stale);
  // A replay of an old delivery with a fresh timestamp needs a fresh signature.
  Delivery replayed = d;
  replayed.timestamp = std::to_string(kNow + 3600);
  EXPECT_EQ(error_of(replayed, kNow + 3600), Error::signature_invalid);
}

TEST_F(Callback, RefusesAnEventFromAnotherServerOrForAnotherBackend) {
  EventSpec other_server;
  other_server.server = "llm-2";
  EXPECT_EQ(error_of(test::sign_event(server, other_server)), Error::webhook_malformed);
  EventSpec other_backend;
  other_backend.iss = "globex";
  EXPECT_EQ(error_of(test::sign_event(server, other_backend)), Error::webhook_malformed);
}

TEST_F(Callback, TheWebhookIdMustBeTheEventIdDotUse) {
  const EventSpec spec;
  for (const std::string& id :
       {std::string(test::kJti) + ".2", std::string(test::kJti),
        std::string("BBBBBBBBBBBBBBBBBBBBBB.1"), std::string(test::kJti) + ".01"}) {
    EXPECT_EQ(error_of(test::sign_delivery(server, id, spec.body())), Error::webhook_malformed)
        << id;
  }
  EXPECT_EQ(error_of(test::sign_delivery(server, "has space.1", spec.body())),
            Error::webhook_malformed);
}

TEST_F(Callback, RefusesInconsistentOrMalformedBodies) {
  const auto signed_body = [&](const std::string& body) {
    return test::sign_delivery(server, EventSpec{}.webhook_id(), body);
  };
  const auto with = [](auto change) {
    boost::json::object o = EventSpec{}.json();
    change(o);
    return boost::json::serialize(o);
  };
  using Obj = boost::json::object;
  const std::vector<std::string> bad = {
      "not json",
      "[]",
      EventSpec{}.body() + " ",  // fine JSON with trailing space is still one value...
      with([](Obj& o) { o["type"] = "receipt"; }),
      with([](Obj& o) { o.erase("model"); }),
      with([](Obj& o) { o["use"] = "1"; }),
      with([](Obj& o) { o["use"] = 0; }),
      with([](Obj& o) { o["event_id"] = "short"; }),
      with([](Obj& o) { o["status"] = "fine"; }),
      with([](Obj& o) { o["endpoint"] = "embeddings"; }),
      with([](Obj& o) { o["stream"] = "yes"; }),
      with([](Obj& o) { o["usage"].as_object()["total_tokens"] = 31; }),
      with([](Obj& o) { o["usage"].as_object()["prompt_tokens"] = -1; }),
      with([](Obj& o) { o["usage"].as_object()["completion_tokens"] = 2.0; }),
      with([](Obj& o) { o["usage"] = nullptr; }),
      with([](Obj& o) { o["finished_at"] = "yesterday"; }),
      with([](Obj& o) { o["started_at"] = "2027-02-30T00:00:00Z"; }),
      with([](Obj& o) { o["request_sha256"] = "abc"; }),
      with([](Obj& o) { o["response_sha256"] = std::string(64, 'B'); }),
      with([](Obj& o) { o["ctx"] = 5; }),
      with([](Obj& o) { o["ctx"] = std::string(1025, 'c'); }),
      with([](Obj& o) { o["sub"] = std::string(257, 's'); }),
  };
  for (std::size_t i = 0; i < bad.size(); ++i) {
    if (i == 2) continue;  // trailing whitespace is valid JSON; checked below
    EXPECT_EQ(error_of(signed_body(bad[i])), Error::webhook_malformed) << i << ": " << bad[i];
  }
  EXPECT_TRUE(check(signed_body(bad[2])));
  // Duplicate members are refused even when both say the same.
  std::string dup = EventSpec{}.body();
  dup.insert(1, R"("use":1,)");
  EXPECT_EQ(error_of(signed_body(dup)), Error::webhook_malformed);
}

TEST_F(Callback, IgnoresUnknownMembersTheServerMayAdd) {
  boost::json::object o = EventSpec{}.json();
  o["response"] = "opted-in content";
  EXPECT_TRUE(
      check(test::sign_delivery(server, EventSpec{}.webhook_id(), boost::json::serialize(o))));
}

TEST_F(Callback, RefusesASignatureCheckWithNothingPinned) {
  const CallbackContext ctx{.backend_id = "acme", .server_id = "llm-1", .now = kNow};
  const Delivery d = test::sign_event(server, EventSpec{});
  EXPECT_EQ(check_callback(d.headers(), d.body, ctx).error(), Error::signature_invalid);
}

TEST(Rfc3339, ParsesUtcOffsetsAndFractions) {
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339("2027-01-15T08:00:00Z"), kNow);
  EXPECT_EQ(parse_rfc3339("2027-01-15T08:00:00.999999999Z"), kNow);
  EXPECT_EQ(parse_rfc3339("2027-01-15t08:00:00z"), kNow);
  EXPECT_EQ(parse_rfc3339("2027-01-15T10:30:00+02:30"), kNow);
  EXPECT_EQ(parse_rfc3339("2027-01-15T07:00:00-01:00"), kNow);
  EXPECT_EQ(parse_rfc3339("2024-02-29T00:00:00Z"), 1709164800);
  EXPECT_EQ(parse_rfc3339("9999-12-31T23:59:59Z"), kMaxTime);
}

TEST(Rfc3339, RefusesAnythingElse) {
  for (const char* bad :
       {"", "2027-01-15", "2027-01-15T08:00:00", "2027-01-15 08:00:00Z", "2027-1-15T08:00:00Z",
        "2027-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "2027-01-15T24:00:00Z",
        "2027-01-15T08:60:00Z", "2027-01-15T08:00:60Z", "2027-01-15T08:00:00.Z",
        "2027-01-15T08:00:00.1234567890Z", "2027-01-15T08:00:00+2:00", "2027-01-15T08:00:00+24:00",
        "1969-12-31T23:59:59Z", "2027-01-15T08:00:00ZZ", "+027-01-15T08:00:00Z"}) {
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
  }
}

TEST(Rfc3339, FormatsUtcDaysAndTimes) {
  EXPECT_EQ(utc_day(0), "1970-01-01");
  EXPECT_EQ(utc_day(kNow), "2027-01-15");
  EXPECT_EQ(utc_day(kNow + 16 * 3600 - 1), "2027-01-15");
  EXPECT_EQ(utc_day(kNow + 16 * 3600), "2027-01-16");
  EXPECT_EQ(format_rfc3339(kNow + 3723), "2027-01-15T09:02:03Z");
  EXPECT_EQ(parse_rfc3339(format_rfc3339(kNow + 59)), kNow + 59);
}

}  // namespace
}  // namespace dynaseal::backend
