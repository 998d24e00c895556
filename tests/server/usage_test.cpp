#include "server/usage.hpp"

#include <unistd.h>

#include <thread>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

namespace dynaseal::server {
namespace {

UsageRecord record(std::string event_id) {
  return UsageRecord{.event_id = std::move(event_id),
                     .use = 2,
                     .server = "llm-1",
                     .iss = "acme",
                     .sub = "user-42",
                     .model = "demo",
                     .endpoint = Endpoint::completions,
                     .stream = true,
                     .status = UsageStatus::client_disconnected,
                     .usage = {12, 40},
                     .started_at_ms = 1700000000123,
                     .finished_at_ms = 1700000001456,
                     .request_sha256 = "aa",
                     .response_sha256 = "bb",
                     .ctx = "order-7"};
}

TEST(Usage, WritesTheCallbackBodyOfDesign) {
  const auto body = boost::json::parse(usage_event_json(record("evt-1"))).as_object();
  EXPECT_EQ(body.at("type").as_string(), "usage");
  EXPECT_EQ(body.at("event_id").as_string(), "evt-1");
  EXPECT_EQ(body.at("use").as_int64(), 2);
  EXPECT_EQ(body.at("endpoint").as_string(), "completions");
  EXPECT_EQ(body.at("status").as_string(), "client_disconnected");
  EXPECT_EQ(body.at("usage").at("total_tokens").as_int64(), 52);
  EXPECT_EQ(body.at("started_at").as_string(), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(body.at("finished_at").as_string(), "2023-11-14T22:13:21.456Z");
  EXPECT_EQ(body.at("ctx").as_string(), "order-7");
}

TEST(Usage, CutsTheBodyAroundTheUseSoThatAStoreCanNumberIt) {
  // Hostile bytes in the strings must not move the cut: it sits after event_id, always.
  UsageRecord r = record(R"(evt,"use":0,"x\)");
  const UsageEventJson parts = usage_event_json_around_use(r);
  EXPECT_TRUE(parts.head.ends_with(R"(,"use":)")) << parts.head;
  EXPECT_TRUE(parts.tail.starts_with(R"(,"server":)")) << parts.tail;
  for (std::int64_t use : {1LL, 42LL, 9223372036854775807LL}) {
    r.use = use;
    EXPECT_EQ(parts.with_use(use), usage_event_json(r));
    const auto body = boost::json::parse(parts.with_use(use)).as_object();
    EXPECT_EQ(body.at("use").as_int64(), use);
    EXPECT_EQ(body.at("event_id").as_string(), R"(evt,"use":0,"x\)");
    EXPECT_EQ(body.at("ctx").as_string(), "order-7");
  }
}

// The body is written member by member; it must be the bytes boost::json writes for the same
// object, whatever the strings hold.
TEST(Usage, WritesTheBytesOfTheSameObjectSerialized) {
  for (const bool with_ctx : {true, false}) {
    UsageRecord r = record("evt\"\\\n\x01\xc3\xa9");
    r.sub = "user \"quoted\" \t\x1f";
    r.model = "m\xf0\x9f\x98\x80";
    r.usage = {9'000'000'000'000'000'000, 0};
    r.stream = !with_ctx;
    r.status = UsageStatus::upstream_error;
    if (!with_ctx) r.ctx.reset();
    boost::json::object o;
    o["type"] = "usage";
    o["event_id"] = r.event_id;
    o["use"] = r.use;
    o["server"] = r.server;
    o["iss"] = r.iss;
    o["sub"] = r.sub;
    o["model"] = r.model;
    o["endpoint"] = "completions";
    o["stream"] = r.stream;
    o["status"] = "upstream_error";
    o["usage"] = {{"prompt_tokens", r.usage.prompt},
                  {"completion_tokens", r.usage.completion},
                  {"total_tokens", r.usage.total()}};
    o["started_at"] = "2023-11-14T22:13:20.123Z";
    o["finished_at"] = "2023-11-14T22:13:21.456Z";
    o["request_sha256"] = "aa";
    o["response_sha256"] = "bb";
    if (with_ctx) o["ctx"] = "order-7";
    EXPECT_EQ(usage_event_json(r), boost::json::serialize(o));
  }
}

TEST(Usage, WritesRfc3339TimesWithMilliseconds) {
  EXPECT_EQ(rfc3339(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(rfc3339(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(rfc3339(1709164800007), "2024-02-29T00:00:00.007Z");
  EXPECT_EQ(rfc3339(1798761599999), "2026-12-31T23:59:59.999Z");
  EXPECT_EQ(rfc3339(253402300799999), "9999-12-31T23:59:59.999Z");
  // Beyond four-digit years: the nearest time RFC 3339 can write.
  EXPECT_EQ(rfc3339(INT64_MAX), "9999-12-31T23:59:59.999Z");
  EXPECT_EQ(rfc3339(INT64_MIN), "0000-01-01T00:00:00.000Z");
}

TEST(Usage, ReadsUsageOnlyWhenWellFormed) {
  auto usage = [](std::string_view json) {
    return read_usage(boost::json::parse(json).as_object());
  };
  EXPECT_EQ(usage(R"({"usage":{"prompt_tokens":3,"completion_tokens":4}})")->total(), 7);
  EXPECT_FALSE(usage(R"({"usage":null})"));
  EXPECT_FALSE(usage(R"({"usage":{"prompt_tokens":3}})"));
  EXPECT_FALSE(usage(R"({"usage":{"prompt_tokens":-1,"completion_tokens":4}})"));
  EXPECT_FALSE(usage(R"({"usage":{"prompt_tokens":1.5,"completion_tokens":4}})"));
}

}  // namespace
}  // namespace dynaseal::server
