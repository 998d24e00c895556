// The per-user mint rate of a plan (mints_per_minute), in memory: a token bucket per user that
// holds up to `per_minute` mints and refills at per_minute / 60 per second, so a user may burst
// a minute's worth and then mint at the steady rate. State is per process (one backend node);
// a restart forgets it, which at worst allows one extra burst.
//
// Thread-safe: users are spread over shards, each with its own lock; the critical section is a
// few arithmetic operations. Buckets that have refilled completely are dropped when a shard
// grows, so memory follows the number of recently active users.
//
//   MintRateLimiter limiter;
//   if (!limiter.allow(user.id, plan.mints_per_minute, unix_ms())) return reject(rate_limited);
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace dynaseal::backend {

class MintRateLimiter {
 public:
  // True, taking one mint from the user's bucket, when the bucket holds one at `now_ms`.
  bool allow(std::int64_t user_id, std::int64_t per_minute, std::int64_t now_ms);

 private:
  struct Bucket {
    std::int64_t level = 0;  // in 1/60000 mints: a mint costs 60000, refill per ms = per_minute
    std::int64_t at_ms = 0;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::int64_t, Bucket> buckets;
  };
  static constexpr std::size_t kShards = 16;
  static constexpr std::size_t kPruneAbove = 4096;

  std::array<Shard, kShards> shards_;
};

}  // namespace dynaseal::backend
