// The ServerStore contract, run against every implementation (SQLite and PostgreSQL). What
// only PostgreSQL has to prove (replicas at once, restarts) is in postgres_server_store_test.cpp.
#include "store/server_store.hpp"

#include <functional>
#include <map>
#include <memory>

#include <gtest/gtest.h>

#include "store/postgres_server_store.hpp"
#include "store/sqlite_server_store.hpp"
#include "support/postgres_schema.hpp"
#include "test_support.hpp"

namespace dynaseal::store {
namespace {

using namespace outbox;

// Where a test's database lives (a file in its directory, or a schema of its own), and how to
// open a store on it.
struct Implementation {
  const char* name;
  std::function<std::string(const std::filesystem::path& dir)> locate;
  std::function<std::unique_ptr<ServerStore>(const std::string& location, std::string* message)>
      open;
  bool single_process;  // recover() may end every lease: no other process delivers
};

// Test names say which implementation, not the bytes of this struct.
void PrintTo(const Implementation& implementation, std::ostream* out) {
  *out << implementation.name;
}

const Implementation kImplementations[] = {
    {"sqlite", [](const std::filesystem::path& dir) { return (dir / "server.db").string(); },
     [](const std::string& location, std::string* message) -> std::unique_ptr<ServerStore> {
       return SqliteServerStore::open(location, message);
     },
     true},
    {"postgresql", [](const std::filesystem::path&) { return testing::fresh_postgres_url(); },
     [](const std::string& location, std::string* message) -> std::unique_ptr<ServerStore> {
       return PostgresServerStore::open(location, message);
     },
     false},
};

class ServerStoreTest : public ::testing::TestWithParam<Implementation> {
 protected:
  void SetUp() override {
    location = GetParam().locate(dir.path());
    reopen();
  }
  void reopen() {
    store.reset();
    std::string message;
    store = GetParam().open(location, &message);
    ASSERT_TRUE(store) << message;
  }

  OutboxKey key(std::string jti, std::int64_t use = 1, std::string iss = "acme") {
    return {std::move(iss), std::move(jti), use};
  }
  std::vector<OutboxWriteResult> apply(std::vector<OutboxWrite> writes) {
    auto r = store->apply(writes);
    EXPECT_TRUE(r);
    return r ? *r : std::vector<OutboxWriteResult>{};
  }
  // Opens and finalizes one event at `now`, body "final-<jti>".
  void queue(const std::string& jti, std::int64_t now, std::string iss = "acme") {
    auto r = apply({Open{key(jti, 1, iss), "llm-1", "interrupted-" + jti, now},
                    Finalize{key(jti, 1, iss), "final-" + jti, now}});
    ASSERT_EQ(r.size(), 2u);
    EXPECT_FALSE(r[0]);
    EXPECT_FALSE(r[1]);
  }
  std::vector<OutboxEvent> claim(std::int64_t now, std::size_t limit = 100,
                                 std::string iss = "acme") {
    auto r = store->claim_due(iss, now, limit, 60'000);
    EXPECT_TRUE(r);
    return r ? *r : std::vector<OutboxEvent>{};
  }

  OutboxEvent only_event(std::int64_t now) {
    auto events = claim(now);
    EXPECT_EQ(events.size(), 1u);
    return events.empty() ? OutboxEvent{} : events[0];
  }

  testing::TempDir dir;
  std::string location;
  std::unique_ptr<ServerStore> store;
};

TEST_P(ServerStoreTest, RefusesToOpenTheSameUseTwice) {
  auto r = apply({Open{key("jti-aaaaaaaaaaaaaaaa"), "llm-1", "b", 1},
                  Open{key("jti-aaaaaaaaaaaaaaaa"), "llm-1", "b", 2},
                  Open{key("jti-aaaaaaaaaaaaaaaa", 2), "llm-1", "b", 2},
                  Open{key("jti-aaaaaaaaaaaaaaaa", 1, "other"), "llm-1", "b", 2}});
  ASSERT_EQ(r.size(), 4u);
  EXPECT_FALSE(r[0]);
  EXPECT_EQ(r[1], Error::conflict);
  EXPECT_FALSE(r[2]) << "another use of the key";
  EXPECT_FALSE(r[3]) << "the same jti of another backend";
}

TEST_P(ServerStoreTest, DeliversOnlyFinalizedEventsWithTheirFinalBody) {
  apply({Open{key("open-only-aaaaaaaaaaa"), "llm-1", "never", 1}});
  queue("finalized-aaaaaaaaaaa", 1);
  auto events = claim(10);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].webhook_id, "finalized-aaaaaaaaaaa.1");
  EXPECT_EQ(events[0].body, "final-finalized-aaaaaaaaaaa");
  EXPECT_EQ(events[0].attempts, 0);
  EXPECT_EQ(apply({Finalize{key("no-open-aaaaaaaaaaaaa"), "x", 1}})[0], Error::not_found);
}

TEST_P(ServerStoreTest, LeasesClaimedEventsSoNoOneElseClaimsThem) {
  queue("leased-aaaaaaaaaaaaaa", 1);
  EXPECT_EQ(claim(10).size(), 1u);
  EXPECT_TRUE(claim(20).empty()) << "still leased";
  EXPECT_EQ(claim(10 + 60'000).size(), 1u) << "the lease ended without an outcome";
}

TEST_P(ServerStoreTest, ClaimsPerBackendOldestFirstUpToTheLimit) {
  queue("b-aaaaaaaaaaaaaaaaaa", 3);
  queue("a-aaaaaaaaaaaaaaaaaa", 2);
  queue("other-aaaaaaaaaaaaaa", 1, "other");
  auto events = claim(10, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].webhook_id, "a-aaaaaaaaaaaaaaaaaa.1");
  EXPECT_EQ(claim(10, 10).size(), 1u);
  EXPECT_EQ(claim(10, 10, "other").size(), 1u);
}

TEST_P(ServerStoreTest, RetriesAFailureWhenDueAndForgetsADelivery) {
  queue("retry-aaaaaaaaaaaaaaa", 1);
  auto events = claim(10);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_FALSE(apply({Failed{events[0].id, 11, 500, false, "http 500"}})[0]);
  EXPECT_TRUE(claim(499).empty()) << "not due yet";
  events = claim(500);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].attempts, 1);
  EXPECT_FALSE(apply({Delivered{events[0].id, 501, 204}})[0]);
  EXPECT_TRUE(claim(100'000).empty());
  auto stats = store->stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->delivered, 1);
  EXPECT_EQ(stats->pending, 0);
  EXPECT_EQ(apply({Delivered{events[0].id, 502, 204}})[0], Error::not_found)
      << "a second outcome for a delivered event changes nothing";
}

TEST_P(ServerStoreTest, KeepsDeadLettersVisibleAndReplaysThem) {
  queue("dead-aaaaaaaaaaaaaaaa", 1);
  queue("dead-bbbbbbbbbbbbbbbb", 1);
  for (const OutboxEvent& e : claim(10)) {
    EXPECT_FALSE(apply({Failed{e.id, 11, 0, true, "http 410"}})[0]);
  }
  auto dead = store->dead_letters(10);
  ASSERT_TRUE(dead);
  ASSERT_EQ(dead->size(), 2u);
  EXPECT_EQ((*dead)[0].last_error, "http 410");
  EXPECT_EQ((*dead)[0].attempts, 1);
  EXPECT_TRUE(claim(1'000'000).empty());

  auto one = store->replay("acme", "dead-aaaaaaaaaaaaaaaa.1", 20);
  ASSERT_TRUE(one);
  EXPECT_EQ(*one, 1);
  auto events = claim(20);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].attempts, 0);
  auto all = store->replay("", "", 30);
  ASSERT_TRUE(all);
  EXPECT_EQ(*all, 1);
}

TEST_P(ServerStoreTest, RecoversOpenRecordsAsInterruptedEventsAfterARestart) {
  apply({Open{key("cut-off-aaaaaaaaaaaaa"), "llm-1", "interrupted-body", 1},
         Open{key("other-owner-aaaaaaaaa"), "llm-2", "theirs", 1}});
  queue("leased-aaaaaaaaaaaaaa", 1);
  EXPECT_EQ(claim(2).size(), 1u);  // leased by the process that is about to die
  reopen();
  auto n = store->recover("llm-1", 5);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1);
  auto events = claim(5);
  if (GetParam().single_process) {
    ASSERT_EQ(events.size(), 2u) << "the recovered event and the one whose lease died";
  } else {
    ASSERT_EQ(events.size(), 1u) << "another replica may hold the lease: it runs out instead";
    EXPECT_EQ(claim(2 + 60'000).size(), 1u) << "the lease ran out";
  }
  for (const OutboxEvent& e : events) {
    if (e.webhook_id == "cut-off-aaaaaaaaaaaaa.1") {
      EXPECT_EQ(e.body, "interrupted-body");
    }
  }
  auto stats = store->stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->open, 1) << "another replica's open record is not ours to recover";
}

TEST_P(ServerStoreTest, ExpiresOldPendingEventsAndDropsOldDeliveries) {
  queue("old-aaaaaaaaaaaaaaaaa", 1);
  queue("new-aaaaaaaaaaaaaaaaa", 100);
  queue("done-aaaaaaaaaaaaaaaa", 1, "other");
  auto done = claim(1, 10, "other");
  ASSERT_EQ(done.size(), 1u);
  apply({Delivered{done[0].id, 2, 200}});
  auto died = store->expire(50, 10, 200);
  ASSERT_TRUE(died);
  EXPECT_EQ(*died, 1);
  auto stats = store->stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->dead, 1);
  EXPECT_EQ(stats->pending, 1);
  EXPECT_EQ(stats->delivered, 0) << "past retention";
  auto dead = store->dead_letters(10);
  ASSERT_TRUE(dead);
  EXPECT_EQ((*dead)[0].last_error, "expired: never attempted");
  auto due = store->next_due_ms("acme");
  ASSERT_TRUE(due);
  EXPECT_EQ(*due, 100);
  due = store->next_due_ms("beta");
  ASSERT_TRUE(due);
  EXPECT_FALSE(due->has_value()) << "per backend";
}

TEST_P(ServerStoreTest, StoresRegisteredBackendsAcrossRestarts) {
  ASSERT_TRUE(store->put_backend({"acme", R"({"keys":[]})", "http://a/cb"}));
  ASSERT_TRUE(store->put_backend({"beta", "{}", ""}));
  ASSERT_TRUE(store->put_backend({"acme", "{}", "http://a/cb2"}));
  ASSERT_TRUE(store->delete_backend("beta"));
  reopen();
  auto all = store->backends();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].id, "acme");
  EXPECT_EQ((*all)[0].callback_url, "http://a/cb2");
}

TEST_P(ServerStoreTest, AppliesABigBatchWithAResultPerWrite) {
  // More writes than one pipelined round trip carries, a duplicate and a stray among them.
  std::vector<OutboxWrite> writes;
  for (int i = 0; i < 300; ++i) {
    const std::string jti = "batch-" + std::to_string(i) + "-aaaaaaaaaaaaa";
    writes.push_back(Open{key(jti), "llm-1", "interrupted", 1});
    writes.push_back(Finalize{key(jti), "final-" + std::to_string(i), 2});
  }
  writes.insert(writes.begin() + 101, Open{key("batch-7-aaaaaaaaaaaaa"), "llm-1", "again", 1});
  writes.push_back(Finalize{key("batch-none-aaaaaaaaaa"), "x", 2});
  auto r = apply(writes);
  ASSERT_EQ(r.size(), writes.size());
  for (std::size_t i = 0; i + 1 < r.size(); ++i) {
    EXPECT_EQ(r[i], i == 101 ? std::optional(Error::conflict) : std::nullopt) << i;
  }
  EXPECT_EQ(r.back(), Error::not_found);
  auto stats = store->stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->pending, 300);
  EXPECT_EQ(stats->open, 0);
}

TEST_P(ServerStoreTest, ASilentReplicasOpenRecordsAreRecoveredByTheOthers) {
  ASSERT_TRUE(store->heartbeat("dead", 1'000));
  ASSERT_TRUE(store->heartbeat("alive", 1'000));
  apply({Open{key("dead-one-aaaaaaaaaaaa"), "dead", "dead-interrupted", 1'000},
         Open{key("alive-one-aaaaaaaaaaa"), "alive", "alive-interrupted", 1'000}});
  ASSERT_TRUE(store->heartbeat("alive", 9'000));  // a long request, still running
  auto n = store->recover_stale(5'000, 10'000);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1);
  const OutboxEvent e = only_event(10'000);
  EXPECT_EQ(e.webhook_id, "dead-one-aaaaaaaaaaaa.1");
  EXPECT_EQ(e.body, "dead-interrupted");
  EXPECT_EQ(e.queued_ms, 10'000);
  EXPECT_EQ(store->stats()->open, 1) << "the live replica's request is not touched";
  EXPECT_EQ(*store->recover_stale(5'000, 10'001), 0) << "nothing left to recover";
}

TEST_P(ServerStoreTest, AReplicaThatNeverHeartbeatedLosesOnlyItsOldOpenRecords) {
  apply({Open{key("old-open-aaaaaaaaaaaa"), "quiet", "old", 1'000},
         Open{key("new-open-aaaaaaaaaaaa"), "quiet", "new", 6'000}});
  EXPECT_EQ(*store->recover_stale(5'000, 10'000), 1)
      << "an open younger than the cut-off proves its owner was alive then";
  EXPECT_EQ(only_event(10'000).body, "old");
  EXPECT_EQ(*store->recover_stale(7'000, 12'000), 1);
}

TEST_P(ServerStoreTest, AHeartbeatNeverMovesBackInTime) {
  ASSERT_TRUE(store->heartbeat("r1", 9'000));
  ASSERT_TRUE(store->heartbeat("r1", 2'000));  // a late, reordered heartbeat
  apply({Open{key("kept-aaaaaaaaaaaaaaaa"), "r1", "b", 1'000}});
  EXPECT_EQ(*store->recover_stale(5'000, 10'000), 0);
  EXPECT_EQ(*store->recover_stale(9'001, 10'000), 1);
}

TEST_P(ServerStoreTest, AForgottenReplicaThatComesBackIsJudgedByItsNewHeartbeats) {
  ASSERT_TRUE(store->heartbeat("r1", 1'000));
  EXPECT_EQ(*store->recover_stale(5'000, 10'000), 0);  // stale, nothing open: forgotten
  ASSERT_TRUE(store->heartbeat("r1", 20'000));
  apply({Open{key("back-aaaaaaaaaaaaaaaa"), "r1", "b", 11'000}});
  EXPECT_EQ(*store->recover_stale(15'000, 21'000), 0) << "alive again";
}

TEST_P(ServerStoreTest, ALateFinalizeWinsWhileTheRecoveredEventWasNotClaimed) {
  apply({Open{key("slow-aaaaaaaaaaaaaaaa"), "slow", "interrupted", 1'000}});
  ASSERT_EQ(*store->recover_stale(5'000, 10'000), 1);
  // The replica was only slow: its real body replaces the interrupted one, nothing was sent.
  EXPECT_FALSE(apply({Finalize{key("slow-aaaaaaaaaaaaaaaa"), "real", 11'000}})[0]);
  EXPECT_EQ(apply({Finalize{key("slow-aaaaaaaaaaaaaaaa"), "again", 12'000}})[0], Error::not_found)
      << "only once";
  const OutboxEvent e = only_event(12'000);
  EXPECT_EQ(e.body, "real");
  EXPECT_EQ(e.queued_ms, 11'000);
}

TEST_P(ServerStoreTest, ALateFinalizeChangesNothingOnceTheRecoveredEventWasClaimed) {
  apply({Open{key("slow-aaaaaaaaaaaaaaaa"), "slow", "interrupted", 1'000}});
  ASSERT_EQ(*store->recover_stale(5'000, 10'000), 1);
  const OutboxEvent sent = only_event(10'000);  // on its way with the interrupted body
  EXPECT_EQ(apply({Finalize{key("slow-aaaaaaaaaaaaaaaa"), "real", 11'000}})[0], Error::not_found);
  EXPECT_FALSE(apply({Failed{sent.id, 12'000, 12'000, false, "http 500"}})[0]);
  EXPECT_EQ(apply({Finalize{key("slow-aaaaaaaaaaaaaaaa"), "real", 13'000}})[0], Error::not_found)
      << "it was attempted: the backend may have recorded the interrupted body";
  EXPECT_EQ(only_event(13'000).body, "interrupted");
}

TEST_P(ServerStoreTest, ALateFinalizeAfterARestartRecoveryWinsToo) {
  apply({Open{key("cut-aaaaaaaaaaaaaaaaa"), "llm-1", "interrupted", 1}});
  ASSERT_EQ(*store->recover("llm-1", 5), 1);
  EXPECT_FALSE(apply({Finalize{key("cut-aaaaaaaaaaaaaaaaa"), "real", 6}})[0]);
  EXPECT_EQ(only_event(6).body, "real");
}

TEST_P(ServerStoreTest, AReplayedEventTakesNoLateFinalize) {
  apply({Open{key("dead-aaaaaaaaaaaaaaaa"), "slow", "interrupted", 1'000}});
  ASSERT_EQ(*store->recover_stale(5'000, 10'000), 1);
  EXPECT_FALSE(apply({Failed{only_event(10'000).id, 11'000, 0, true, "http 410"}})[0]);
  ASSERT_EQ(*store->replay("", "", 12'000), 1);
  EXPECT_EQ(apply({Finalize{key("dead-aaaaaaaaaaaaaaaa"), "real", 13'000}})[0], Error::not_found);
  EXPECT_EQ(only_event(13'000).body, "interrupted");
}

TEST_P(ServerStoreTest, AnOpenAndItsFinalizeInOneBatchLeaveWhatTwoBatchesWould) {
  // One batch (a request that finished before its Open was committed) and two batches.
  apply({Open{key("together"), "llm-1", "interrupted", 100},
         Finalize{key("together"), "final", 150}});
  apply({Open{key("apart"), "llm-1", "interrupted", 100}});
  apply({Finalize{key("apart"), "final", 150}});
  auto events = claim(150);
  ASSERT_EQ(events.size(), 2u);
  for (const OutboxEvent& e : events) {
    EXPECT_EQ(e.body, "final") << e.webhook_id;
    EXPECT_EQ(e.queued_ms, 150) << e.webhook_id;
    EXPECT_EQ(e.attempts, 0) << e.webhook_id;
  }
  EXPECT_TRUE(claim(151).empty()) << "both leased";

  // The key exists already: the Open conflicts and the Finalize does what it would alone.
  apply({Open{key("was-open"), "llm-1", "interrupted", 100}});
  auto r =
      apply({Open{key("was-open"), "llm-1", "again", 200}, Finalize{key("was-open"), "f", 210}});
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0], Error::conflict);
  EXPECT_FALSE(r[1]) << "the existing open record is finalized";
  queue("was-done", 100);
  r = apply({Open{key("was-done"), "llm-1", "again", 200}, Finalize{key("was-done"), "f2", 210}});
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0], Error::conflict);
  EXPECT_EQ(r[1], Error::not_found) << "a finished record is not finalized twice";
  // A Finalize before its Open in the batch is not paired: not_found, then an open record.
  r = apply({Finalize{key("backwards"), "f", 5}, Open{key("backwards"), "llm-1", "i", 5}});
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0], Error::not_found);
  EXPECT_FALSE(r[1]);
  auto stats = store->stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->open, 1);
  EXPECT_EQ(stats->pending, 4);
}

TEST_P(ServerStoreTest, TellsWhichUsesOfRecentKeysWereTaken) {
  auto final_body = [](int total) {
    return R"({"status":"ok","usage":{"prompt_tokens":1,"completion_tokens":)" +
           std::to_string(total - 1) + R"(,"total_tokens":)" + std::to_string(total) + "}}";
  };
  apply({Open{key("old-key"), "llm-1", "i", 999}, Finalize{key("old-key"), final_body(7), 999},
         Open{key("multi", 1), "llm-1", "i", 1000}, Finalize{key("multi", 1), final_body(30), 1001},
         Open{key("multi", 3), "llm-1", "i", 1500}, Finalize{key("multi", 3), final_body(12), 1501},
         Open{key("multi", 2), "llm-1", R"({"status":"interrupted"})", 1200},
         Open{key("multi", 1, "other"), "llm-1", "i", 1100},
         Finalize{key("multi", 1, "other"), final_body(5), 1100},
         // Bodies that are not what the server writes count no tokens, and break nothing.
         Open{key("odd"), "llm-1", "i", 2000}, Finalize{key("odd"), "not json {", 2000},
         Open{key("odd", 2), "llm-1", "i", 2000},
         Finalize{key("odd", 2), R"({"usage":{"total_tokens":"12"}})", 2000},
         Open{key("odd", 3), "llm-1", "i", 2000},
         Finalize{key("odd", 3), R"({"usage":{"total_tokens":-40}})", 2000},
         Open{key("odd", 4), "llm-1", "i", 2000},
         Finalize{key("odd", 4), R"({"usage":{"total_tokens":4}})", 2000}});
  auto used = store->used_keys(1000);
  ASSERT_TRUE(used);
  std::map<std::string, UsedKey> by_key;
  for (const UsedKey& k : *used) by_key[k.iss + "/" + k.event_id] = k;
  ASSERT_EQ(by_key.size(), 3u) << "old-key was opened before the window";
  EXPECT_EQ(by_key["acme/multi"].uses, 3);
  EXPECT_EQ(by_key["acme/multi"].spent_tokens, 42);
  EXPECT_EQ(by_key["acme/multi"].first_ms, 1000);
  EXPECT_EQ(by_key["other/multi"].uses, 1);
  EXPECT_EQ(by_key["other/multi"].spent_tokens, 5);
  EXPECT_EQ(by_key["acme/odd"].uses, 4);
  EXPECT_EQ(by_key["acme/odd"].spent_tokens, 4);
  auto none = store->used_keys(3000);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

// The gauges: every way an event moves between states, and the moves that change nothing.
TEST_P(ServerStoreTest, CountsEveryMoveBetweenStates) {
  const auto expect_counts = [&](std::int64_t open, std::int64_t pending, std::int64_t delivered,
                                 std::int64_t dead, const char* after) {
    auto stats = store->stats();
    ASSERT_TRUE(stats) << after;
    EXPECT_EQ(stats->open, open) << after;
    EXPECT_EQ(stats->pending, pending) << after;
    EXPECT_EQ(stats->delivered, delivered) << after;
    EXPECT_EQ(stats->dead, dead) << after;
  };
  expect_counts(0, 0, 0, 0, "nothing yet");
  apply({Open{key("a"), "llm-1", "i", 1}, Open{key("b"), "llm-1", "i", 1},
         Open{key("c"), "llm-2", "i", 1}, Open{key("a"), "llm-1", "i", 1}});
  expect_counts(3, 0, 0, 0, "three opens and a conflict");
  apply({Finalize{key("a"), "final-a", 10}, Finalize{key("nobody"), "x", 10}});
  queue("d", 10);
  expect_counts(2, 2, 0, 0, "a finalized, d opened and finalized in one batch, one not found");

  auto events = claim(20);
  ASSERT_EQ(events.size(), 2u);
  const std::int64_t a = events[0].webhook_id == "a.1" ? events[0].id : events[1].id;
  const std::int64_t d = events[0].webhook_id == "d.1" ? events[0].id : events[1].id;
  apply({Delivered{a, 21, 200}, Delivered{a, 22, 200}, Failed{d, 21, 25, false, "http 500"}});
  expect_counts(2, 1, 1, 0, "a delivered (twice: once counted), d to retry");
  apply({Failed{d, 26, 0, true, "http 410"}, Failed{d, 27, 0, true, "http 410"}});
  expect_counts(2, 0, 1, 1, "d dead-lettered (twice: once counted)");
  ASSERT_EQ(*store->replay("", "", 30), 1);
  expect_counts(2, 1, 1, 0, "d replayed");

  reopen();
  expect_counts(2, 1, 1, 0, "the same after a restart");
  ASSERT_EQ(*store->recover("llm-1", 40), 1);
  expect_counts(1, 2, 1, 0, "b recovered as interrupted");
  EXPECT_FALSE(apply({Finalize{key("b"), "final-b", 45}})[0]) << "b's late Finalize";
  expect_counts(1, 2, 1, 0, "a late Finalize moves nothing");

  // d (replayed at 30) and b (queued again at 45) are past max_age at 50; a past retention.
  ASSERT_EQ(*store->expire(50, 1'000, 60), 2);
  expect_counts(1, 0, 0, 2, "expired and dropped");
  ASSERT_EQ(*store->recover_stale(100, 110), 1);
  expect_counts(0, 1, 0, 2, "c recovered from a silent replica");
}

INSTANTIATE_TEST_SUITE_P(All, ServerStoreTest, ::testing::ValuesIn(kImplementations),
                         [](const auto& param) { return std::string(param.param.name); });

// A database from before the counts were kept (schema version 5) gets them counted once, when
// its schema is brought up to date.
TEST(SqliteServerStore, CountsTheEventsOfAnOlderDatabaseOnce) {
  testing::TempDir dir;
  const auto path = dir.path() / "server.db";
  std::string message;
  auto store = SqliteServerStore::open(path, &message);
  ASSERT_TRUE(store) << message;
  ASSERT_TRUE(store->apply(
      {Open{{"acme", "open", 1}, "llm-1", "i", 1}, Open{{"acme", "pending", 1}, "llm-1", "i", 1},
       Finalize{{"acme", "pending", 1}, "f", 2}, Open{{"acme", "dead", 1}, "llm-1", "i", 1},
       Finalize{{"acme", "dead", 1}, "f", 2}}));
  auto dead = store->claim_due("acme", 3, 10, 1'000);
  ASSERT_TRUE(dead);
  ASSERT_EQ(dead->size(), 2u);
  ASSERT_TRUE(store->apply({Failed{(*dead)[0].id, 4, 0, true, "http 410"}}));
  store.reset();
  {
    auto db = Sqlite::open(path);
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->exec(
        "DROP TABLE outbox_counts; DROP INDEX outbox_queued; CREATE INDEX outbox_next ON outbox "
        "(next_attempt_ms) WHERE state = 'pending'; PRAGMA user_version = 5;"));
  }
  store = SqliteServerStore::open(path, &message);
  ASSERT_TRUE(store) << message;
  auto stats = store->stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->open, 1);
  EXPECT_EQ(stats->pending, 1);
  EXPECT_EQ(stats->dead, 1);
  EXPECT_EQ(stats->delivered, 0);
  EXPECT_EQ(stats->oldest_pending_ms, 2);
}

}  // namespace
}  // namespace dynaseal::store
