#include "backend/rate_limiter.hpp"

#include <algorithm>

namespace dynaseal::backend {
namespace {

constexpr std::int64_t kMintCost = 60'000;  // ms per minute: refill `per_minute` units per ms

}  // namespace

bool MintRateLimiter::allow(std::int64_t user_id, std::int64_t per_minute, std::int64_t now_ms) {
  if (per_minute < 1) return false;
  const std::int64_t capacity = per_minute * kMintCost;
  Shard& shard = shards_[static_cast<std::uint64_t>(user_id) % kShards];
  std::lock_guard lock(shard.mutex);
  if (shard.buckets.size() > kPruneAbove) {
    // Full buckets carry no information: a missing bucket starts full.
    std::erase_if(shard.buckets,
                  [&](const auto& entry) { return now_ms - entry.second.at_ms >= kMintCost; });
  }
  auto [it, fresh] = shard.buckets.try_emplace(user_id, Bucket{capacity, now_ms});
  Bucket& b = it->second;
  if (!fresh && now_ms > b.at_ms) {
    // Elapsed time beyond a minute refills completely; capping it first avoids overflow.
    const std::int64_t elapsed = std::min(now_ms - b.at_ms, kMintCost);
    b.level = std::min(capacity, b.level + elapsed * per_minute);
    b.at_ms = now_ms;
  }
  b.level = std::min(b.level, capacity);  // the plan's rate may have been lowered
  if (b.level < kMintCost) return false;
  b.level -= kMintCost;
  return true;
}

}  // namespace dynaseal::backend
