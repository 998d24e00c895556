#include "server/usage.hpp"

#include <unistd.h>

#include <thread>

#include <boost/json/parse.hpp>
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

TEST(LogUsageSink, WritesEveryRecordAsOneLineByTheTimeItIsDestroyed) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  // Read while the sink writes: the records are more than a pipe holds.
  std::string out;
  std::thread reader([&out, fd = fds[0]] {
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) {
      out.append(buf, static_cast<std::size_t>(n));
    }
  });
  constexpr int kRecords = 200;  // about 80 KB: many 4 KiB writes
  {
    LogUsageSink sink(fds[1]);
    for (int i = 0; i < kRecords; ++i) sink.submit(record("evt-" + std::to_string(i)));
    EXPECT_EQ(sink.submitted(), static_cast<std::uint64_t>(kRecords));
  }
  ::close(fds[1]);
  reader.join();
  ::close(fds[0]);
  int lines = 0;
  for (std::size_t start = 0, end; (end = out.find('\n', start)) != std::string::npos;
       start = end + 1) {
    const std::string_view line(out.data() + start, end - start);
    ASSERT_TRUE(line.starts_with("usage {")) << line;
    const auto body = boost::json::parse(line.substr(6)).as_object();
    EXPECT_EQ(body.at("event_id").as_string(), "evt-" + std::to_string(lines));
    ++lines;
  }
  EXPECT_EQ(lines, kRecords);
}

}  // namespace
}  // namespace dynaseal::server
