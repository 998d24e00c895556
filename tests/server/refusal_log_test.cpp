#include "server/refusal_log.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace dynaseal::server {
namespace {

TEST(RefusalLog, LogsUpToItsRateAndCountsTheRestByCode) {
  RefusalLog log(3);
  int logged = 0;
  for (int i = 0; i < 10; ++i) logged += log.admit(Error::token_malformed, 100) ? 1 : 0;
  for (int i = 0; i < 4; ++i) logged += log.admit(Error::not_found, 100) ? 1 : 0;
  EXPECT_EQ(logged, 3);
  const auto summary = boost::json::parse(log.take_summary());
  EXPECT_EQ(summary.at("suppressed").at("token_malformed").to_number<std::uint64_t>(), 7u);
  EXPECT_EQ(summary.at("suppressed").at("not_found").to_number<std::uint64_t>(), 4u);
  EXPECT_EQ(log.take_summary(), "");  // taken
}

TEST(RefusalLog, StartsOverEachSecond) {
  RefusalLog log(1);
  EXPECT_TRUE(log.admit(Error::token_malformed, 100));
  EXPECT_FALSE(log.admit(Error::token_malformed, 100));
  EXPECT_TRUE(log.admit(Error::token_malformed, 101));  // and the summary of 100 went out
  EXPECT_EQ(log.take_summary(), "");
}

TEST(RefusalLog, ZeroLogsNoRefusalLine) {
  RefusalLog log(0);
  EXPECT_FALSE(log.admit(Error::body_malformed, 1));
}

}  // namespace
}  // namespace dynaseal::server
