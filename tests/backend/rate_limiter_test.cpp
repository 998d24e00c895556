#include "backend/rate_limiter.hpp"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace dynaseal::backend {
namespace {

constexpr std::int64_t kT0 = 1'800'000'000'000;  // ms

TEST(MintRateLimiter, AllowsABurstOfAMinutesWorthThenRefuses) {
  MintRateLimiter limiter;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.allow(1, 3, kT0)) << i;
  EXPECT_FALSE(limiter.allow(1, 3, kT0));
  EXPECT_FALSE(limiter.allow(1, 3, kT0 + 19'999));
}

TEST(MintRateLimiter, RefillsAtTheSteadyRate) {
  MintRateLimiter limiter;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(limiter.allow(1, 3, kT0));
  EXPECT_TRUE(limiter.allow(1, 3, kT0 + 20'000));  // 3 per minute: one every 20 s
  EXPECT_FALSE(limiter.allow(1, 3, kT0 + 20'000));
  EXPECT_FALSE(limiter.allow(1, 3, kT0 + 39'999));
  EXPECT_TRUE(limiter.allow(1, 3, kT0 + 40'000));
  // A long pause refills the bucket to its capacity and no further.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.allow(1, 3, kT0 + 3'600'000)) << i;
  EXPECT_FALSE(limiter.allow(1, 3, kT0 + 3'600'000));
}

TEST(MintRateLimiter, CountsEachUserSeparately) {
  MintRateLimiter limiter;
  EXPECT_TRUE(limiter.allow(1, 1, kT0));
  EXPECT_FALSE(limiter.allow(1, 1, kT0));
  EXPECT_TRUE(limiter.allow(2, 1, kT0));
  EXPECT_TRUE(limiter.allow(17, 1, kT0));  // same shard as user 1
}

TEST(MintRateLimiter, ALoweredRateTakesEffectAtOnce) {
  MintRateLimiter limiter;
  ASSERT_TRUE(limiter.allow(1, 100, kT0));
  EXPECT_TRUE(limiter.allow(1, 1, kT0));
  EXPECT_FALSE(limiter.allow(1, 1, kT0));
}

TEST(MintRateLimiter, ForgetsIdleUsersWithoutForgettingBusyOnes) {
  MintRateLimiter limiter;
  ASSERT_TRUE(limiter.allow(0, 1, kT0));
  for (std::int64_t user = 16; user < 16 * 5000; user += 16) limiter.allow(user, 1, kT0 - 60'000);
  EXPECT_FALSE(limiter.allow(0, 1, kT0 + 1));  // still remembered after the prune
}

TEST(MintRateLimiter, GrantsExactlyTheCapacityUnderConcurrency) {
  MintRateLimiter limiter;
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) allowed += limiter.allow(42, 50, kT0) ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 50);
}

}  // namespace
}  // namespace dynaseal::backend
