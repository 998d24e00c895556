// The UseStore contract, run against every implementation in kStores (add Redis and
// PostgreSQL there), then what is particular to MemoryUseStore: sweep and the memory bound.
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
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "store/memory_use_store.hpp"

namespace dynaseal::store {
namespace {

constexpr std::int64_t kNow = 1'700'000'000;
constexpr std::int64_t kExpiresAt = kNow + 600;
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

// A key of "acme" for "user-42", issued 10 s ago, alive 600 s, asking for 100 tokens.
ConsumeRequest key(std::string_view jti, std::int64_t uses = 1,
                   std::optional<std::int64_t> budget = std::nullopt) {
  return {.iss = "acme",
          .jti = jti,
          .sub = "user-42",
          .iat = kNow - 10,
          .expires_at = kExpiresAt,
          .uses = uses,
          .budget = budget,
          .want_tokens = 100};
}

ConsumeRequest wanting(ConsumeRequest req, std::int64_t tokens) {
  req.want_tokens = tokens;
  return req;
}

struct StoreFactory {
  std::string name;
  std::function<std::unique_ptr<UseStore>()> make;
};

const std::vector<StoreFactory> kStores = {
    {"Memory", [] { return std::make_unique<MemoryUseStore>(); }},
    {"MemoryOneShard",
     [] { return std::make_unique<MemoryUseStore>(MemoryUseStoreOptions{.shards = 1}); }},
};

void PrintTo(const StoreFactory& factory, std::ostream* out) { *out << factory.name; }

class UseStoreContract : public ::testing::TestWithParam<StoreFactory> {
 protected:
  Result<UseGrant> consume(const ConsumeRequest& req, std::int64_t now = kNow) {
    return store_->consume(req, now);
  }
  Error refusal(const ConsumeRequest& req, std::int64_t now = kNow) {
    auto grant = store_->consume(req, now);
    EXPECT_FALSE(grant) << "use " << (grant ? grant->use : 0) << " granted";
    return grant ? Error::internal : grant.error();
  }

  std::unique_ptr<UseStore> store_ = GetParam().make();
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
  ASSERT_TRUE(store_->settle("acme", req.jti, grant->granted_tokens, 30, kNow));
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
    ASSERT_TRUE(store_->settle("acme", req.jti, grant->granted_tokens, 100, kNow));
  }
  EXPECT_EQ(refusal(req), Error::budget_exhausted);
}

TEST_P(UseStoreContract, RefusesAfterASettleOvershootsTheBudget) {
  const auto req = wanting(key("budget-key-000005", 10, 100), 50);
  auto grant = consume(req);
  ASSERT_TRUE(grant);
  EXPECT_EQ(grant->granted_tokens, 50);
  ASSERT_TRUE(store_->settle("acme", req.jti, 50, 150, kNow));  // a long prompt
  EXPECT_EQ(refusal(req), Error::budget_exhausted);
  EXPECT_EQ(refusal(req), Error::budget_exhausted);
}

TEST_P(UseStoreContract, RefusesABudgetWithoutUsesLeftAsUsesExhausted) {
  const auto req = key("budget-key-000006", 1, 1000);
  ASSERT_TRUE(consume(req));
  EXPECT_EQ(refusal(req), Error::uses_exhausted);
}

TEST_P(UseStoreContract, SettlesAnUnknownKeyAsANoOp) {
  EXPECT_TRUE(store_->settle("acme", "never-seen-key-01", 100, 100, kNow));
  EXPECT_TRUE(consume(key("never-seen-key-01")));
}

TEST_P(UseStoreContract, NeverOverflowsWithTheLargestBudgetAndTokens) {
  const auto req = wanting(key("huge-budget-key-1", kMax, kMax), kMax);
  auto grant = consume(req);
  ASSERT_TRUE(grant);
  EXPECT_EQ(grant->granted_tokens, kMax);
  EXPECT_EQ(refusal(req), Error::budget_exhausted);
  ASSERT_TRUE(store_->settle("acme", req.jti, kMax, kMax, kNow));
  ASSERT_TRUE(store_->settle("acme", req.jti, kMax, kMax, kNow));  // spent stops at the max
  EXPECT_EQ(refusal(req), Error::budget_exhausted);
}

TEST_P(UseStoreContract, NeverOverflowsReservationsWithoutABudget) {
  const auto req = wanting(key("huge-tokens-key-1", 3), kMax);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(consume(req)->granted_tokens, kMax);
  ASSERT_TRUE(store_->settle("acme", req.jti, kMax, kMax, kNow));
  ASSERT_TRUE(store_->settle("acme", req.jti, kMax, kMax, kNow));
  EXPECT_EQ(refusal(req), Error::uses_exhausted);
}

TEST_P(UseStoreContract, RejectsArgumentsThatBreakTheContract) {
  EXPECT_EQ(refusal(key("bad-request-key-1", 0)), Error::internal);
  EXPECT_EQ(refusal(wanting(key("bad-request-key-1"), 0)), Error::internal);
  EXPECT_EQ(refusal(key("bad-request-key-1", 1, 0)), Error::internal);
  EXPECT_EQ(store_->settle("acme", "bad-request-key-1", -1, 0, kNow).error(), Error::internal);
  EXPECT_EQ(store_->settle("acme", "bad-request-key-1", 0, -1, kNow).error(), Error::internal);
  EXPECT_TRUE(consume(key("bad-request-key-1")));  // nothing was counted
}

// Revocation

TEST_P(UseStoreContract, RefusesARevokedJti) {
  ASSERT_TRUE(consume(key("revoked-key-00001", 5)));
  ASSERT_TRUE(store_->revoke_jti("acme", "revoked-key-00001", kExpiresAt, kNow));
  EXPECT_EQ(refusal(key("revoked-key-00001", 5)), Error::token_revoked);
  EXPECT_TRUE(consume(key("other-key-0000001")));
}

TEST_P(UseStoreContract, RevokesAJtiBeforeItsFirstUse) {
  ASSERT_TRUE(store_->revoke_jti("acme", "revoked-key-00002", kExpiresAt, kNow));
  EXPECT_EQ(refusal(key("revoked-key-00002")), Error::token_revoked);
}

TEST_P(UseStoreContract, RevokesAJtiOnlyForItsIssuer) {
  ASSERT_TRUE(store_->revoke_jti("globex", "revoked-key-00003", kExpiresAt, kNow));
  EXPECT_TRUE(consume(key("revoked-key-00003")));
}

TEST_P(UseStoreContract, ForgetsAJtiRevocationAtItsUntil) {
  ASSERT_TRUE(store_->revoke_jti("acme", "revoked-key-00004", kNow + 100, kNow));
  EXPECT_EQ(refusal(key("revoked-key-00004"), kNow + 99), Error::token_revoked);
  EXPECT_TRUE(consume(key("revoked-key-00004"), kNow + 100));
}

TEST_P(UseStoreContract, KeepsTheLaterUntilWhenAJtiIsRevokedTwice) {
  ASSERT_TRUE(store_->revoke_jti("acme", "revoked-key-00005", kNow + 200, kNow));
  ASSERT_TRUE(store_->revoke_jti("acme", "revoked-key-00005", kNow + 100, kNow));
  EXPECT_EQ(refusal(key("revoked-key-00005"), kNow + 150), Error::token_revoked);
}

TEST_P(UseStoreContract, IgnoresARevocationThatHasLapsedAlready) {
  ASSERT_TRUE(store_->revoke_jti("acme", "revoked-key-00006", kNow, kNow));
  ASSERT_TRUE(store_->revoke_sub("acme", "user-42", kNow, kNow - 1, kNow));
  EXPECT_TRUE(consume(key("revoked-key-00006")));
}

TEST_P(UseStoreContract, RevokesASubjectsKeysIssuedUpToTheRevocation) {
  ASSERT_TRUE(store_->revoke_sub("acme", "user-42", kNow, kNow + 3600, kNow));
  EXPECT_EQ(refusal(key("subject-key-00001")), Error::token_revoked);  // iat = kNow - 10
  ConsumeRequest at_revocation = key("subject-key-00002");
  at_revocation.iat = kNow;
  EXPECT_EQ(refusal(at_revocation), Error::token_revoked);
  ConsumeRequest later = key("subject-key-00003");
  later.iat = kNow + 1;
  EXPECT_TRUE(consume(later, kNow + 1));
}

TEST_P(UseStoreContract, RevokesOnlyTheSubjectNamed) {
  ASSERT_TRUE(store_->revoke_sub("acme", "user-42", kNow, kNow + 3600, kNow));
  ConsumeRequest other_sub = key("subject-key-00004");
  other_sub.sub = "user-43";
  EXPECT_TRUE(consume(other_sub));
  ConsumeRequest other_iss = key("subject-key-00005");
  other_iss.iss = "globex";
  EXPECT_TRUE(consume(other_iss));
}

TEST_P(UseStoreContract, ForgetsASubjectRevocationAtItsUntil) {
  ASSERT_TRUE(store_->revoke_sub("acme", "user-42", kNow, kNow + 100, kNow));
  EXPECT_EQ(refusal(key("subject-key-00006"), kNow + 99), Error::token_revoked);
  EXPECT_TRUE(consume(key("subject-key-00006"), kNow + 100));
}

TEST_P(UseStoreContract, KeepsTheWiderOfTwoSubjectRevocations) {
  ASSERT_TRUE(store_->revoke_sub("acme", "user-42", kNow - 100, kNow + 3600, kNow));
  ASSERT_TRUE(store_->revoke_sub("acme", "user-42", kNow, kNow + 60, kNow));
  ConsumeRequest req = key("subject-key-00007");
  req.expires_at = kNow + 3600;
  EXPECT_EQ(refusal(req, kNow + 1000), Error::token_revoked);  // the earlier, longer one holds
}

TEST_P(UseStoreContract, ChecksRevocationBeforeUsesAndBudget) {
  const auto req = key("subject-key-00008", 1, 1);
  ASSERT_TRUE(consume(req));
  ASSERT_TRUE(store_->revoke_jti("acme", req.jti, kExpiresAt, kNow));
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
  ASSERT_TRUE(store_->settle("acme", "expiring-key-0003", 100, 1, kExpiresAt));  // drops state
  EXPECT_FALSE(consume(key("expiring-key-0003"), kExpiresAt - 1));  // read its clock earlier
}

TEST_P(UseStoreContract, SettlesAnExpiredKeyAsANoOp) {
  const auto req = key("expiring-key-0004", 1, 100);
  ASSERT_TRUE(consume(req));
  EXPECT_TRUE(store_->settle("acme", req.jti, 100, 100, kExpiresAt + 10));
}

TEST_P(UseStoreContract, IsHealthyAndCountsItsEntries) {
  EXPECT_TRUE(store_->healthy());
  EXPECT_EQ(store_->size(), 0u);
  ASSERT_TRUE(consume(key("counted-key-00001")));
  ASSERT_TRUE(store_->revoke_jti("acme", "counted-key-00002", kExpiresAt, kNow));
  ASSERT_TRUE(store_->revoke_sub("acme", "user-7", kNow, kExpiresAt, kNow));
  EXPECT_EQ(store_->size(), 3u);
}

// Concurrency

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

// The contended tests go through many keys, every thread in the same order, so that threads on
// different cores really meet on one key instead of each finishing before the next starts.

TEST_P(UseStoreContract, ServesASingleUseKeyOnceAcrossSixteenThreads) {
  constexpr int kKeys = 300;
  std::vector<std::atomic<int>> served(kKeys);
  std::atomic<int> other_refusals{0};
  run_together(16, [&](int) {
    for (int k = 0; k < kKeys; ++k) {
      const std::string jti = "contended-key-" + std::to_string(1000 + k);
      for (int i = 0; i < 5; ++i) {
        auto grant = consume(key(jti));
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
    for (int k = 0; k < kKeys; ++k) {
      const std::string jti = "contended-key-" + std::to_string(2000 + k);
      for (int i = 0; i < 200; ++i) {
        if (auto grant = consume(key(jti, 1000))) uses[t * kKeys + k].push_back(grant->use);
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
    for (int i = 0; i < 500; ++i) {
      if (auto grant = consume(req)) granted[t] += grant->granted_tokens;
    }
  });
  EXPECT_EQ(std::accumulate(granted.begin(), granted.end(), std::int64_t{0}), 10'000);
}

TEST_P(UseStoreContract, NeverSpendsMoreThanTheBudgetWhenSettlingAcrossThreads) {
  const auto req = wanting(key("contended-key-004", kMax, 10'000), 7);
  std::vector<std::int64_t> used(8, 0);
  run_together(8, [&](int t) {
    for (int i = 0; i < 1000; ++i) {
      auto grant = consume(req);
      if (!grant) continue;
      const std::int64_t actual = grant->granted_tokens - (i % 3 == 0 ? 1 : 0);
      ASSERT_TRUE(store_->settle("acme", req.jti, grant->granted_tokens, actual, kNow));
      used[t] += actual;
    }
  });
  std::int64_t total = std::accumulate(used.begin(), used.end(), std::int64_t{0});
  EXPECT_LE(total, 10'000);
  // Tokens settled below their grant after the threads' last try are still there, not lost.
  while (auto grant = consume(req)) {
    ASSERT_TRUE(
        store_->settle("acme", req.jti, grant->granted_tokens, grant->granted_tokens, kNow));
    total += grant->granted_tokens;
  }
  EXPECT_EQ(total, 10'000);
}

TEST_P(UseStoreContract, RefusesEveryUseThatStartsAfterASubjectRevocationReturned) {
  std::atomic<bool> revoked{false};
  std::atomic<int> late_uses{0};
  run_together(5, [&](int t) {
    if (t == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      ASSERT_TRUE(store_->revoke_sub("acme", "user-42", kNow, kNow + 3600, kNow));
      revoked = true;
      return;
    }
    const std::string jti = "racing-key-000" + std::to_string(t);
    for (int checked = 0; checked < 1000;) {
      const bool after = revoked.load();
      auto grant = consume(key(jti, kMax));
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
    for (int i = 0; i < 300; ++i) {
      const std::string jti = "parallel-key-" + std::to_string(t) + "-" + std::to_string(i);
      if (consume(key(jti))) ++served;
    }
  });
  EXPECT_EQ(served.load(), 8 * 300);
  EXPECT_EQ(store_->size(), 8u * 300u);
}

// MemoryUseStore in particular

// Jtis that outlive every request viewing them.
const std::string& nth_key(int i) {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> all;
    for (int n = 0; n < 1000; ++n) all.push_back("bounded-key-" + std::to_string(100000 + n));
    return all;
  }();
  return names.at(i);
}

TEST(MemoryUseStore, SweepDropsExpiredKeysAndRevocations) {
  MemoryUseStore store;
  ASSERT_TRUE(store.consume(key("sweep-key-000001"), kNow));
  ASSERT_TRUE(store.revoke_jti("acme", "sweep-key-000002", kNow + 100, kNow));
  ASSERT_TRUE(store.revoke_sub("acme", "user-9", kNow, kNow + 700, kNow));
  EXPECT_EQ(store.sweep(kNow + 99), 0u);
  EXPECT_EQ(store.sweep(kNow + 100), 1u);
  EXPECT_EQ(store.sweep(kExpiresAt), 1u);
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.sweep(kNow + 700), 1u);
  EXPECT_EQ(store.size(), 0u);
}

TEST(MemoryUseStore, DropsExpiredEntriesAsItGoes) {
  MemoryUseStore store({.shards = 1});
  for (int i = 0; i < 3; ++i) {
    auto req = key(nth_key(i));
    req.expires_at = kNow + 10;
    ASSERT_TRUE(store.consume(req, kNow));
  }
  ASSERT_TRUE(store.consume(key(nth_key(3)), kNow + 10));
  EXPECT_EQ(store.size(), 1u);
}

TEST(MemoryUseStore, SplitsItsBoundOverTheShards) {
  EXPECT_EQ(MemoryUseStore({.shards = 64, .max_entries = 1000}).shard_capacity(), 15u);
  EXPECT_EQ(MemoryUseStore({.shards = 10, .max_entries = 3}).shard_capacity(), 1u);
  EXPECT_EQ(MemoryUseStore({.shards = 0, .max_entries = 5}).shard_capacity(), 5u);
}

TEST(MemoryUseStore, RefusesNewKeysWhenFullButServesTheKeysItHolds) {
  MemoryUseStore store({.shards = 1, .max_entries = 2});
  ASSERT_TRUE(store.consume(key(nth_key(0), 3), kNow));
  ASSERT_TRUE(store.consume(key(nth_key(1), 3), kNow));
  EXPECT_EQ(store.consume(key(nth_key(2)), kNow).error(), Error::store_unavailable);
  EXPECT_EQ(store.revoke_jti("acme", nth_key(2), kExpiresAt, kNow).error(),
            Error::store_unavailable);
  EXPECT_EQ(store.revoke_sub("acme", "user-1", kNow, kExpiresAt, kNow).error(),
            Error::store_unavailable);
  EXPECT_EQ(store.consume(key(nth_key(0), 3), kNow)->use, 2);
  EXPECT_TRUE(store.revoke_jti("acme", nth_key(1), kExpiresAt, kNow));
  EXPECT_EQ(store.consume(key(nth_key(1), 3), kNow).error(), Error::token_revoked);
  EXPECT_EQ(store.size(), 2u);
}

TEST(MemoryUseStore, NeverEvictsALiveSingleUseKeyToMakeRoom) {
  MemoryUseStore store({.shards = 1, .max_entries = 1});
  ASSERT_TRUE(store.consume(key(nth_key(0)), kNow));
  for (int i = 1; i < 50; ++i) EXPECT_FALSE(store.consume(key(nth_key(i)), kNow));
  EXPECT_EQ(store.consume(key(nth_key(0)), kNow).error(), Error::uses_exhausted);
}

TEST(MemoryUseStore, TakesNewKeysAgainOnceOldOnesExpire) {
  MemoryUseStore store({.shards = 1, .max_entries = 2});
  ASSERT_TRUE(store.consume(key(nth_key(0)), kNow));
  ASSERT_TRUE(store.consume(key(nth_key(1)), kNow));
  auto later = key(nth_key(2));
  later.expires_at = kExpiresAt + 600;
  EXPECT_EQ(store.consume(later, kExpiresAt - 1).error(), Error::store_unavailable);
  EXPECT_EQ(store.sweep(kExpiresAt), 2u);
  EXPECT_TRUE(store.consume(later, kExpiresAt));
  auto last = key(nth_key(3));
  last.expires_at = kExpiresAt + 600;
  EXPECT_TRUE(store.consume(last, kExpiresAt));
}

TEST(MemoryUseStore, MakesRoomFromExpiredEntriesWithoutASweep) {
  MemoryUseStore store({.shards = 1, .max_entries = 1});
  ASSERT_TRUE(store.consume(key(nth_key(0)), kNow));
  auto later = key(nth_key(1));
  later.expires_at = kExpiresAt + 600;
  EXPECT_TRUE(store.consume(later, kExpiresAt));
}

TEST(MemoryUseStore, BoundsEveryShard) {
  MemoryUseStore store({.shards = 8, .max_entries = 80});
  int served = 0;
  for (int i = 0; i < 1000; ++i) served += store.consume(key(nth_key(i)), kNow) ? 1 : 0;
  EXPECT_EQ(served, 80);
  EXPECT_EQ(store.size(), 80u);
}

}  // namespace
}  // namespace dynaseal::store
