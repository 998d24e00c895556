// The UseStore contract (store/use_store.hpp), run through the async interface the server uses
// (store/async_use_store.hpp) against every implementation in kStores: the memory store, run
// inline, and Redis, on the suite's shared redis-server with a key prefix of each test's own.
// Then what is particular to MemoryUseStore: sweep and the memory bound. What is particular to
// Redis (its clock, failures, pipelining): redis_use_store_test.cpp.
#include "store/use_store.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "store/async_use_store.hpp"
#include "store/memory_use_store.hpp"
#include "store/redis_fixture.hpp"
#include "store/redis_use_store.hpp"
#include "store/run_awaitable.hpp"
#include "support/services.hpp"

namespace dynaseal::store {
namespace {

using testing::run_awaitable;
using testing::unix_now;

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

// An AsyncUseStore and what it is built on.
struct Subject {
  std::unique_ptr<UseStore> backing;  // the synchronous store behind an InlineUseStore
  std::unique_ptr<AsyncUseStore> store;
};

struct StoreFactory {
  std::string name;
  std::function<Subject()> make;
  bool counts_entries = true;  // size() is exact (the Redis store does not count)
};

Subject inline_memory(MemoryUseStoreOptions options) {
  auto memory = std::make_unique<MemoryUseStore>(options);
  auto adapter = std::make_unique<InlineUseStore>(*memory);
  return {std::move(memory), std::move(adapter)};
}

// The shared Redis, with a generous timeout: the contended tests run 16 threads on 2 cores.
Subject redis_at(const std::string& url) {
  RedisUseStoreOptions options{.url = testing::redis_url_of(url),
                               .key_prefix = testing::unique_redis_prefix()};
  options.timeout = std::chrono::milliseconds(5000);
  return {nullptr, std::make_unique<RedisUseStore>(options)};
}

const std::vector<StoreFactory> kStores = {
    {"Memory", [] { return inline_memory({}); }, true},
    {"MemoryOneShard", [] { return inline_memory({.shards = 1}); }, true},
    {"Redis", [] { return redis_at(testing::shared_redis_url()); }, false},
    // Three masters: most issuers' slots live on a node other than the URL's (MOVED).
    {"RedisCluster", [] { return redis_at(testing::shared_redis_cluster_url()); }, false},
};

void PrintTo(const StoreFactory& factory, std::ostream* out) { *out << factory.name; }

// Runs `body(thread_index)` on `threads` threads started together.
void run_together(int threads, const std::function<void(int)>& body) {
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      body(t);
    });
  }
  go = true;
  for (auto& thread : pool) thread.join();
}

class UseStoreContract : public ::testing::TestWithParam<StoreFactory> {
 protected:
  // Each test's clock starts at the real time: Redis decides with the later of the caller's
  // clock and its own, so a clock in the past would find every key expired.
  const std::int64_t kNow = unix_now();
  const std::int64_t kExpiresAt = kNow + 600;

  // A key of "acme" for "user-42", issued 10 s ago, alive 600 s, asking for 100 tokens.
  ConsumeRequest key(std::string_view jti, std::int64_t uses = 1,
                     std::optional<std::int64_t> budget = std::nullopt) const {
    return {.iss = "acme",
            .jti = jti,
            .sub = "user-42",
            .iat = kNow - 10,
            .expires_at = kExpiresAt,
            .uses = uses,
            .budget = budget,
            .want_tokens = 100};
  }
  static ConsumeRequest wanting(ConsumeRequest req, std::int64_t tokens) {
    req.want_tokens = tokens;
    return req;
  }

  // Each operation, run to completion on `context` (this thread's, unless given).
  Result<UseGrant> consume(const ConsumeRequest& req) { return consume(req, kNow); }
  Result<UseGrant> consume(const ConsumeRequest& req, std::int64_t now) {
    return consume_on(context_, req, now);
  }
  Result<UseGrant> consume_on(asio::io_context& context, const ConsumeRequest& req,
                              std::int64_t now) {
    return run_awaitable(context, store().consume(req, now));
  }
  Error refusal(const ConsumeRequest& req) { return refusal(req, kNow); }
  Error refusal(const ConsumeRequest& req, std::int64_t now) {
    auto grant = consume(req, now);
    EXPECT_FALSE(grant) << "use " << (grant ? grant->use : 0) << " granted";
    return grant ? Error::internal : grant.error();
  }
  Result<void> settle(std::string_view jti, std::int64_t granted, std::int64_t actual,
                      std::int64_t now) {
    return settle_on(context_, jti, granted, actual, now);
  }
  Result<void> settle_on(asio::io_context& context, std::string_view jti, std::int64_t granted,
                         std::int64_t actual, std::int64_t now) {
    return run_awaitable(context, store().settle("acme", jti, 1, granted, actual, now));
  }
  Result<void> revoke_jti(std::string_view iss, std::string_view jti, std::int64_t until,
                          std::int64_t now) {
    return run_awaitable(context_, store().revoke_jti(iss, jti, until, now));
  }
  Result<void> revoke_sub(std::string_view iss, std::string_view sub, std::int64_t revoked_at,
                          std::int64_t until, std::int64_t now) {
    return run_awaitable(context_, store().revoke_sub(iss, sub, revoked_at, until, now));
  }
  AsyncUseStore& store() { return *subject_.store; }

  asio::io_context context_;
  Subject subject_ = GetParam().make();
};

INSTANTIATE_TEST_SUITE_P(Implementations, UseStoreContract, ::testing::ValuesIn(kStores),
                         [](const auto& instance) { return instance.param.name; });

// Uses

TEST_P(UseStoreContract, ServesASingleUseKeyOnce) {
  auto grant = consume(key("single-use-key-0001"));
  ASSERT_TRUE(grant);
  EXPECT_EQ(grant->use, 1);
  EXPECT_EQ(grant->granted_tokens, 100);
  EXPECT_EQ(refusal(key("single-use-key-0001")), Error::uses_exhausted);
  EXPECT_EQ(refusal(key("single-use-key-0001")), Error::uses_exhausted);
}

TEST_P(UseStoreContract, NumbersTheUsesOfAMultiUseKeyFromOne) {
  for (std::int64_t use = 1; use <= 5; ++use) {
    auto grant = consume(key("multi-use-key-0001", 5), kNow + use);
    ASSERT_TRUE(grant);
    EXPECT_EQ(grant->use, use);
  }
  EXPECT_EQ(refusal(key("multi-use-key-0001", 5), kNow + 6), Error::uses_exhausted);
}

TEST_P(UseStoreContract, CountsKeysOfDifferentIssuersApartEvenWithTheSameJti) {
  ConsumeRequest other = key("shared-jti-000001");
  other.iss = "globex";
  ASSERT_TRUE(consume(key("shared-jti-000001")));
  auto grant = consume(other);
  ASSERT_TRUE(grant);
  EXPECT_EQ(grant->use, 1);
}

TEST_P(UseStoreContract, AcceptsTheLargestUseCount) {
  auto grant = consume(key("many-uses-key-001", kMax));
  ASSERT_TRUE(grant);
  EXPECT_EQ(grant->use, 1);
}

// Budgets

TEST_P(UseStoreContract, ShrinksGrantsToTheBudgetsRemainder) {
  const auto req = key("budget-key-000001", 10, 250);
  EXPECT_EQ(consume(req)->granted_tokens, 100);
  EXPECT_EQ(consume(req)->granted_tokens, 100);
  EXPECT_EQ(consume(req)->granted_tokens, 50);
  EXPECT_EQ(refusal(req), Error::budget_exhausted);
}

TEST_P(UseStoreContract, RefusesWhileTheWholeBudgetIsReserved) {
  const auto req = key("budget-key-000002", 10, 100);
  ASSERT_TRUE(consume(req));
  EXPECT_EQ(refusal(req), Error::budget_exhausted);
}

TEST_P(UseStoreContract, SettleGivesBackWhatWasReservedButNotUsed) {
  const auto req = key("budget-key-000003", 10, 250);
  auto grant = consume(req);
  ASSERT_TRUE(grant);
  ASSERT_TRUE(settle(req.jti, grant->granted_tokens, 30, kNow));
  EXPECT_EQ(consume(req)->granted_tokens, 100);  // 250 - 30 spent - 0 reserved
  EXPECT_EQ(consume(req)->granted_tokens, 100);
  EXPECT_EQ(consume(req)->granted_tokens, 20);
  EXPECT_EQ(refusal(req), Error::budget_exhausted);
}

TEST_P(UseStoreContract, StopsAKeyAtItsBudget) {
  const auto req = key("budget-key-000004", 10, 200);
  for (int i = 0; i < 2; ++i) {
    auto grant = consume(req);
    ASSERT_TRUE(grant);
    ASSERT_TRUE(settle(req.jti, grant->granted_tokens, 100, kNow));
  }
  EXPECT_EQ(refusal(req), Error::budget_exhausted);
}

TEST_P(UseStoreContract, RefusesAfterASettleOvershootsTheBudget) {
  const auto req = wanting(key("budget-key-000005", 10, 100), 50);
  auto grant = consume(req);
  ASSERT_TRUE(grant);
  EXPECT_EQ(grant->granted_tokens, 50);
  ASSERT_TRUE(settle(req.jti, 50, 150, kNow));  // a long prompt
  EXPECT_EQ(refusal(req), Error::budget_exhausted);
  EXPECT_EQ(refusal(req), Error::budget_exhausted);
}

TEST_P(UseStoreContract, RefusesABudgetWithoutUsesLeftAsUsesExhausted) {
  const auto req = key("budget-key-000006", 1, 1000);
  ASSERT_TRUE(consume(req));
  EXPECT_EQ(refusal(req), Error::uses_exhausted);
}

TEST_P(UseStoreContract, SettlesAnUnknownKeyAsANoOp) {
  EXPECT_TRUE(settle("never-seen-key-01", 100, 100, kNow));
  EXPECT_TRUE(consume(key("never-seen-key-01")));
}

TEST_P(UseStoreContract, NeverOverflowsWithTheLargestBudgetAndTokens) {
  const auto req = wanting(key("huge-budget-key-1", kMax, kMax), kMax);
  auto grant = consume(req);
  ASSERT_TRUE(grant);
  EXPECT_EQ(grant->granted_tokens, kMax);
  EXPECT_EQ(refusal(req), Error::budget_exhausted);
  ASSERT_TRUE(settle(req.jti, kMax, kMax, kNow));
  ASSERT_TRUE(settle(req.jti, kMax, kMax, kNow));  // spent stops at the max
  EXPECT_EQ(refusal(req), Error::budget_exhausted);
}

TEST_P(UseStoreContract, NeverOverflowsReservationsWithoutABudget) {
  const auto req = wanting(key("huge-tokens-key-1", 3), kMax);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(consume(req)->granted_tokens, kMax);
  ASSERT_TRUE(settle(req.jti, kMax, kMax, kNow));
  ASSERT_TRUE(settle(req.jti, kMax, kMax, kNow));
  EXPECT_EQ(refusal(req), Error::uses_exhausted);
}

TEST_P(UseStoreContract, KeepsExactCountsBeyondWhatADoubleHolds) {
  // 2^53 + 1 is the first integer a double cannot hold: the Redis scripts must not round.
  constexpr std::int64_t kBig = (std::int64_t{1} << 53) + 1;
  const auto req = wanting(key("exact-count-key-1", 10, kBig + 2), kBig);
  EXPECT_EQ(consume(req)->granted_tokens, kBig);
  EXPECT_EQ(consume(req)->granted_tokens, 2);
  EXPECT_EQ(refusal(req), Error::budget_exhausted);
  ASSERT_TRUE(settle(req.jti, kBig, kBig - 1, kNow));
  EXPECT_EQ(consume(req)->granted_tokens, 1);
  EXPECT_EQ(refusal(req), Error::budget_exhausted);
}

TEST_P(UseStoreContract, RejectsArgumentsThatBreakTheContract) {
  EXPECT_EQ(refusal(key("bad-request-key-1", 0)), Error::internal);
  EXPECT_EQ(refusal(wanting(key("bad-request-key-1"), 0)), Error::internal);
  EXPECT_EQ(refusal(key("bad-request-key-1", 1, 0)), Error::internal);
  EXPECT_EQ(settle("bad-request-key-1", -1, 0, kNow).error(), Error::internal);
  EXPECT_EQ(settle("bad-request-key-1", 0, -1, kNow).error(), Error::internal);
  EXPECT_TRUE(consume(key("bad-request-key-1")));  // nothing was counted
}

// Revocation

TEST_P(UseStoreContract, RefusesARevokedJti) {
  ASSERT_TRUE(consume(key("revoked-key-00001", 5)));
  ASSERT_TRUE(revoke_jti("acme", "revoked-key-00001", kExpiresAt, kNow));
  EXPECT_EQ(refusal(key("revoked-key-00001", 5)), Error::token_revoked);
  EXPECT_TRUE(consume(key("other-key-0000001")));
}

TEST_P(UseStoreContract, RevokesAJtiBeforeItsFirstUse) {
  ASSERT_TRUE(revoke_jti("acme", "revoked-key-00002", kExpiresAt, kNow));
  EXPECT_EQ(refusal(key("revoked-key-00002")), Error::token_revoked);
}

TEST_P(UseStoreContract, RevokesAJtiOnlyForItsIssuer) {
  ASSERT_TRUE(revoke_jti("globex", "revoked-key-00003", kExpiresAt, kNow));
  EXPECT_TRUE(consume(key("revoked-key-00003")));
}

TEST_P(UseStoreContract, ForgetsAJtiRevocationAtItsUntil) {
  ASSERT_TRUE(revoke_jti("acme", "revoked-key-00004", kNow + 100, kNow));
  EXPECT_EQ(refusal(key("revoked-key-00004"), kNow + 99), Error::token_revoked);
  EXPECT_TRUE(consume(key("revoked-key-00004"), kNow + 100));
}

TEST_P(UseStoreContract, KeepsTheLaterUntilWhenAJtiIsRevokedTwice) {
  ASSERT_TRUE(revoke_jti("acme", "revoked-key-00005", kNow + 200, kNow));
  ASSERT_TRUE(revoke_jti("acme", "revoked-key-00005", kNow + 100, kNow));
  EXPECT_EQ(refusal(key("revoked-key-00005"), kNow + 150), Error::token_revoked);
}

TEST_P(UseStoreContract, IgnoresARevocationThatHasLapsedAlready) {
  ASSERT_TRUE(revoke_jti("acme", "revoked-key-00006", kNow, kNow));
  ASSERT_TRUE(revoke_sub("acme", "user-42", kNow, kNow - 1, kNow));
  EXPECT_TRUE(consume(key("revoked-key-00006")));
}

TEST_P(UseStoreContract, RevokesASubjectsKeysIssuedUpToTheRevocation) {
  ASSERT_TRUE(revoke_sub("acme", "user-42", kNow, kNow + 3600, kNow));
  EXPECT_EQ(refusal(key("subject-key-00001")), Error::token_revoked);  // iat = kNow - 10
  ConsumeRequest at_revocation = key("subject-key-00002");
  at_revocation.iat = kNow;
  EXPECT_EQ(refusal(at_revocation), Error::token_revoked);
  ConsumeRequest later = key("subject-key-00003");
  later.iat = kNow + 1;
  EXPECT_TRUE(consume(later, kNow + 1));
}

TEST_P(UseStoreContract, RevokesOnlyTheSubjectNamed) {
  ASSERT_TRUE(revoke_sub("acme", "user-42", kNow, kNow + 3600, kNow));
  ConsumeRequest other_sub = key("subject-key-00004");
  other_sub.sub = "user-43";
  EXPECT_TRUE(consume(other_sub));
  ConsumeRequest other_iss = key("subject-key-00005");
  other_iss.iss = "globex";
  EXPECT_TRUE(consume(other_iss));
}

TEST_P(UseStoreContract, ForgetsASubjectRevocationAtItsUntil) {
  ASSERT_TRUE(revoke_sub("acme", "user-42", kNow, kNow + 100, kNow));
  EXPECT_EQ(refusal(key("subject-key-00006"), kNow + 99), Error::token_revoked);
  EXPECT_TRUE(consume(key("subject-key-00006"), kNow + 100));
}

TEST_P(UseStoreContract, KeepsTheWiderOfTwoSubjectRevocations) {
  ASSERT_TRUE(revoke_sub("acme", "user-42", kNow - 100, kNow + 3600, kNow));
  ASSERT_TRUE(revoke_sub("acme", "user-42", kNow, kNow + 60, kNow));
  ConsumeRequest req = key("subject-key-00007");
  req.expires_at = kNow + 3600;
  EXPECT_EQ(refusal(req, kNow + 1000), Error::token_revoked);  // the earlier, longer one holds
}

TEST_P(UseStoreContract, ChecksRevocationBeforeUsesAndBudget) {
  const auto req = key("subject-key-00008", 1, 1);
  ASSERT_TRUE(consume(req));
  ASSERT_TRUE(revoke_jti("acme", req.jti, kExpiresAt, kNow));
  EXPECT_EQ(refusal(req), Error::token_revoked);
}

// Expiry. The server never consumes for an expired key (verify_key refuses it first); the store
// refuses too, since its state may be gone by then.

TEST_P(UseStoreContract, RefusesToCountForAKeyFromItsExpiry) {
  EXPECT_TRUE(consume(key("expiring-key-0001", 5), kExpiresAt - 1));
  EXPECT_EQ(refusal(key("expiring-key-0001", 5), kExpiresAt), Error::token_expired);
  EXPECT_EQ(refusal(key("expiring-key-0001", 5), kExpiresAt + 1), Error::token_expired);
  EXPECT_EQ(refusal(key("never-used-key-01"), kExpiresAt + 1), Error::token_expired);
}

TEST_P(UseStoreContract, RemembersAUsedKeyUntilItsExpiry) {
  ASSERT_TRUE(consume(key("expiring-key-0002")));
  EXPECT_EQ(refusal(key("expiring-key-0002"), kExpiresAt - 1), Error::uses_exhausted);
}

TEST_P(UseStoreContract, NeverRevivesAnExpiredKeyForACallerWhoseClockLags) {
  ASSERT_TRUE(consume(key("expiring-key-0003")));
  ASSERT_TRUE(settle("expiring-key-0003", 100, 1, kExpiresAt));       // may drop the state
  const Error e = refusal(key("expiring-key-0003"), kExpiresAt - 1);  // read its clock earlier
  EXPECT_TRUE(e == Error::token_expired || e == Error::uses_exhausted) << to_string(e);
}

TEST_P(UseStoreContract, SettlesAnExpiredKeyAsANoOp) {
  const auto req = key("expiring-key-0004", 1, 100);
  ASSERT_TRUE(consume(req));
  EXPECT_TRUE(settle(req.jti, 100, 100, kExpiresAt + 10));
}

TEST_P(UseStoreContract, IsHealthyOnceItServedAndCountsItsEntries) {
  if (GetParam().counts_entries) {
    EXPECT_EQ(store().size(), 0u);
  }
  ASSERT_TRUE(consume(key("counted-key-00001")));
  EXPECT_TRUE(store().healthy());
  EXPECT_TRUE(run_awaitable(context_, store().check()));
  ASSERT_TRUE(revoke_jti("acme", "counted-key-00002", kExpiresAt, kNow));
  ASSERT_TRUE(revoke_sub("acme", "user-7", kNow, kExpiresAt, kNow));
  if (GetParam().counts_entries) {
    EXPECT_EQ(store().size(), 3u);
  }
}

// Concurrency: each thread runs its own io_context (a server worker; for Redis, a connection of
// its own, as another replica would have).
//
// The contended tests go through many keys, every thread in the same order, so that threads on
// different cores really meet on one key instead of each finishing before the next starts.

TEST_P(UseStoreContract, ServesASingleUseKeyOnceAcrossSixteenThreads) {
  constexpr int kKeys = 300;
  std::vector<std::atomic<int>> served(kKeys);
  std::atomic<int> other_refusals{0};
  run_together(16, [&](int) {
    asio::io_context context;
    for (int k = 0; k < kKeys; ++k) {
      const std::string jti = "contended-key-" + std::to_string(1000 + k);
      for (int i = 0; i < 5; ++i) {
        auto grant = consume_on(context, key(jti), kNow);
        if (grant) {
          ++served[k];
        } else if (grant.error() != Error::uses_exhausted) {
          ++other_refusals;
        }
      }
    }
  });
  for (int k = 0; k < kKeys; ++k) EXPECT_EQ(served[k].load(), 1) << "key " << k;
  EXPECT_EQ(other_refusals.load(), 0);
}

TEST_P(UseStoreContract, HandsOutEveryUseNumberExactlyOnceAcrossThreads) {
  constexpr int kKeys = 10;
  std::vector<std::vector<std::int64_t>> uses(8 * kKeys);  // [thread * kKeys + key]
  run_together(8, [&](int t) {
    asio::io_context context;
    for (int k = 0; k < kKeys; ++k) {
      const std::string jti = "contended-key-" + std::to_string(2000 + k);
      for (int i = 0; i < 200; ++i) {
        if (auto grant = consume_on(context, key(jti, 1000), kNow)) {
          uses[t * kKeys + k].push_back(grant->use);
        }
      }
    }
  });
  std::vector<std::int64_t> expected(1000);
  std::iota(expected.begin(), expected.end(), 1);
  for (int k = 0; k < kKeys; ++k) {
    std::vector<std::int64_t> all;
    for (int t = 0; t < 8; ++t) {
      all.insert(all.end(), uses[t * kKeys + k].begin(), uses[t * kKeys + k].end());
    }
    std::sort(all.begin(), all.end());
    EXPECT_EQ(all, expected) << "key " << k;
  }
}

TEST_P(UseStoreContract, NeverGrantsMoreThanTheBudgetAcrossThreads) {
  const auto req = wanting(key("contended-key-003", kMax, 10'000), 7);
  std::vector<std::int64_t> granted(8, 0);
  run_together(8, [&](int t) {
    asio::io_context context;
    for (int i = 0; i < 500; ++i) {
      if (auto grant = consume_on(context, req, kNow)) granted[t] += grant->granted_tokens;
    }
  });
  EXPECT_EQ(std::accumulate(granted.begin(), granted.end(), std::int64_t{0}), 10'000);
}

TEST_P(UseStoreContract, NeverSpendsMoreThanTheBudgetWhenSettlingAcrossThreads) {
  const auto req = wanting(key("contended-key-004", kMax, 10'000), 7);
  std::vector<std::int64_t> used(8, 0);
  run_together(8, [&](int t) {
    asio::io_context context;
    for (int i = 0; i < 1000; ++i) {
      auto grant = consume_on(context, req, kNow);
      if (!grant) continue;
      const std::int64_t actual = grant->granted_tokens - (i % 3 == 0 ? 1 : 0);
      ASSERT_TRUE(settle_on(context, req.jti, grant->granted_tokens, actual, kNow));
      used[t] += actual;
    }
  });
  std::int64_t total = std::accumulate(used.begin(), used.end(), std::int64_t{0});
  EXPECT_LE(total, 10'000);
  // Tokens settled below their grant after the threads' last try are still there, not lost.
  while (auto grant = consume(req)) {
    ASSERT_TRUE(settle(req.jti, grant->granted_tokens, grant->granted_tokens, kNow));
    total += grant->granted_tokens;
  }
  EXPECT_EQ(total, 10'000);
}

TEST_P(UseStoreContract, RefusesEveryUseThatStartsAfterASubjectRevocationReturned) {
  std::atomic<bool> revoked{false};
  std::atomic<int> late_uses{0};
  run_together(5, [&](int t) {
    asio::io_context context;
    if (t == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      ASSERT_TRUE(
          run_awaitable(context, store().revoke_sub("acme", "user-42", kNow, kNow + 3600, kNow)));
      revoked = true;
      return;
    }
    const std::string jti = "racing-key-000" + std::to_string(t);
    for (int checked = 0; checked < 1000;) {
      const bool after = revoked.load();
      auto grant = consume_on(context, key(jti, kMax), kNow);
      if (!after) continue;
      ++checked;
      if (grant) ++late_uses;
    }
  });
  EXPECT_EQ(late_uses.load(), 0);
}

TEST_P(UseStoreContract, CountsManyKeysInParallel) {
  std::atomic<int> served{0};
  run_together(8, [&](int t) {
    asio::io_context context;
    for (int i = 0; i < 300; ++i) {
      const std::string jti = "parallel-key-" + std::to_string(t) + "-" + std::to_string(i);
      if (consume_on(context, key(jti), kNow)) ++served;
    }
  });
  EXPECT_EQ(served.load(), 8 * 300);
  if (GetParam().counts_entries) {
    EXPECT_EQ(store().size(), 8u * 300u);
  }
}

// MemoryUseStore in particular, called directly, on a fixed clock.

constexpr std::int64_t kClock = 1'700'000'000;
constexpr std::int64_t kDeadline = kClock + 600;

// Jtis that outlive every request viewing them.
const std::string& nth_key(int i) {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> all;
    for (int n = 0; n < 1000; ++n) all.push_back("bounded-key-" + std::to_string(100000 + n));
    return all;
  }();
  return names.at(i);
}

// A key of "acme" for "user-42", alive until kDeadline.
ConsumeRequest memory_key(std::string_view jti, std::int64_t uses = 1) {
  return {.iss = "acme",
          .jti = jti,
          .sub = "user-42",
          .iat = kClock - 10,
          .expires_at = kDeadline,
          .uses = uses,
          .budget = std::nullopt,
          .want_tokens = 100};
}

TEST(MemoryUseStore, SweepDropsExpiredKeysAndRevocations) {
  MemoryUseStore store;
  ASSERT_TRUE(store.consume(memory_key("sweep-key-000001"), kClock));
  ASSERT_TRUE(store.revoke_jti("acme", "sweep-key-000002", kClock + 100, kClock));
  ASSERT_TRUE(store.revoke_sub("acme", "user-9", kClock, kClock + 700, kClock));
  EXPECT_EQ(store.sweep(kClock + 99), 0u);
  EXPECT_EQ(store.sweep(kClock + 100), 1u);
  EXPECT_EQ(store.sweep(kDeadline), 1u);
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.sweep(kClock + 700), 1u);
  EXPECT_EQ(store.size(), 0u);
}

TEST(MemoryUseStore, RestoredUsesAndSpendingCountAfterARestart) {
  MemoryUseStore store({.shards = 1, .max_entries = 2});
  // A single-use key used before the restart, a 5-use key used 3 times with 90 tokens spent.
  ASSERT_TRUE(store.restore("acme", nth_key(0), 1, 0, kDeadline, kClock));
  ASSERT_TRUE(store.restore("acme", nth_key(1), 3, 90, kDeadline, kClock));
  EXPECT_EQ(store.consume(memory_key(nth_key(0)), kClock).error(), Error::uses_exhausted);
  auto budgeted = memory_key(nth_key(1), 5);
  budgeted.budget = 100;
  auto fourth = store.consume(budgeted, kClock);
  ASSERT_TRUE(fourth);
  EXPECT_EQ(fourth->use, 4);
  EXPECT_EQ(fourth->granted_tokens, 10) << "the budget's remainder after what was spent";
  // Restoring never lowers what the store holds, and a lapsed key needs no entry.
  ASSERT_TRUE(store.restore("acme", nth_key(1), 1, 0, kDeadline, kClock));
  EXPECT_EQ(store.consume(budgeted, kClock).error(), Error::budget_exhausted);
  ASSERT_TRUE(store.restore("acme", nth_key(2), 1, 0, kClock, kClock));
  EXPECT_EQ(store.size(), 2u);
  // Full: refused, so the server refuses to start rather than forget a use.
  EXPECT_EQ(store.restore("acme", nth_key(3), 1, 0, kDeadline, kClock).error(),
            Error::store_unavailable);
  EXPECT_EQ(store.restore("acme", nth_key(0), -1, 0, kDeadline, kClock).error(), Error::internal);
  EXPECT_EQ(store.restore("acme", nth_key(0), 1, -5, kDeadline, kClock).error(), Error::internal);
  // The restored entry dies with the key.
  EXPECT_EQ(store.sweep(kDeadline), 2u);
}

TEST(MemoryUseStore, DropsExpiredEntriesAsItGoes) {
  MemoryUseStore store({.shards = 1});
  for (int i = 0; i < 3; ++i) {
    auto req = memory_key(nth_key(i));
    req.expires_at = kClock + 10;
    ASSERT_TRUE(store.consume(req, kClock));
  }
  ASSERT_TRUE(store.consume(memory_key(nth_key(3)), kClock + 10));
  EXPECT_EQ(store.size(), 1u);
}

TEST(MemoryUseStore, SplitsItsBoundOverTheShards) {
  EXPECT_EQ(MemoryUseStore({.shards = 64, .max_entries = 1000}).shard_capacity(), 15u);
  EXPECT_EQ(MemoryUseStore({.shards = 10, .max_entries = 3}).shard_capacity(), 1u);
  EXPECT_EQ(MemoryUseStore({.shards = 0, .max_entries = 5}).shard_capacity(), 5u);
}

TEST(MemoryUseStore, RefusesNewKeysWhenFullButServesTheKeysItHolds) {
  MemoryUseStore store({.shards = 1, .max_entries = 2});
  ASSERT_TRUE(store.consume(memory_key(nth_key(0), 3), kClock));
  ASSERT_TRUE(store.consume(memory_key(nth_key(1), 3), kClock));
  EXPECT_EQ(store.consume(memory_key(nth_key(2)), kClock).error(), Error::store_unavailable);
  EXPECT_EQ(store.revoke_jti("acme", nth_key(2), kDeadline, kClock).error(),
            Error::store_unavailable);
  EXPECT_EQ(store.revoke_sub("acme", "user-1", kClock, kDeadline, kClock).error(),
            Error::store_unavailable);
  EXPECT_EQ(store.consume(memory_key(nth_key(0), 3), kClock)->use, 2);
  EXPECT_TRUE(store.revoke_jti("acme", nth_key(1), kDeadline, kClock));
  EXPECT_EQ(store.consume(memory_key(nth_key(1), 3), kClock).error(), Error::token_revoked);
  EXPECT_EQ(store.size(), 2u);
}

TEST(MemoryUseStore, NeverEvictsALiveSingleUseKeyToMakeRoom) {
  MemoryUseStore store({.shards = 1, .max_entries = 1});
  ASSERT_TRUE(store.consume(memory_key(nth_key(0)), kClock));
  for (int i = 1; i < 50; ++i) EXPECT_FALSE(store.consume(memory_key(nth_key(i)), kClock));
  EXPECT_EQ(store.consume(memory_key(nth_key(0)), kClock).error(), Error::uses_exhausted);
}

TEST(MemoryUseStore, TakesNewKeysAgainOnceOldOnesExpire) {
  MemoryUseStore store({.shards = 1, .max_entries = 2});
  ASSERT_TRUE(store.consume(memory_key(nth_key(0)), kClock));
  ASSERT_TRUE(store.consume(memory_key(nth_key(1)), kClock));
  auto later = memory_key(nth_key(2));
  later.expires_at = kDeadline + 600;
  EXPECT_EQ(store.consume(later, kDeadline - 1).error(), Error::store_unavailable);
  EXPECT_EQ(store.sweep(kDeadline), 2u);
  EXPECT_TRUE(store.consume(later, kDeadline));
  auto last = memory_key(nth_key(3));
  last.expires_at = kDeadline + 600;
  EXPECT_TRUE(store.consume(last, kDeadline));
}

TEST(MemoryUseStore, MakesRoomFromExpiredEntriesWithoutASweep) {
  MemoryUseStore store({.shards = 1, .max_entries = 1});
  ASSERT_TRUE(store.consume(memory_key(nth_key(0)), kClock));
  auto later = memory_key(nth_key(1));
  later.expires_at = kDeadline + 600;
  EXPECT_TRUE(store.consume(later, kDeadline));
}

TEST(MemoryUseStore, BoundsEveryShard) {
  MemoryUseStore store({.shards = 8, .max_entries = 80});
  int served = 0;
  for (int i = 0; i < 1000; ++i) served += store.consume(memory_key(nth_key(i)), kClock) ? 1 : 0;
  EXPECT_EQ(served, 80);
  EXPECT_EQ(store.size(), 80u);
}

}  // namespace
}  // namespace dynaseal::store
