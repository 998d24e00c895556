// Replaying the use store's journal (server/use_journal.hpp) into a real outbox (SQLite) from a
// real Redis: a use without a record is reported once; a use with one is only forgotten; young,
// foreign and malformed entries are left alone.
#include "server/use_journal.hpp"

#include <set>

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "server/outbox.hpp"
#include "store/memory_use_store.hpp"
#include "store/raw_redis.hpp"
#include "store/redis_fixture.hpp"
#include "store/redis_keys.hpp"
#include "store/redis_use_store.hpp"
#include "store/run_awaitable.hpp"
#include "store/sqlite_server_store.hpp"
#include "support/services.hpp"
#include "test_support.hpp"

namespace dynaseal::server {
namespace {

using testing::run_awaitable;

// Built outside coroutines (GCC 12 and braced temporaries in coroutine frames).
store::OutboxWrite open_of(const std::string& jti, std::int64_t use, const std::string& body) {
  return store::outbox::Open{
      .key = {"acme", jti, use}, .owner = "r1", .interrupted_body = body, .now_ms = 1};
}

class UseJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string message;
    auto sqlite = store::SqliteServerStore::open(dir_.path() / "outbox.db", &message);
    ASSERT_TRUE(sqlite) << message;
    db_ = std::make_unique<DbWorker>(std::move(sqlite));
    store::RedisUseStoreOptions options{.url = testing::redis_url_of(testing::shared_redis_url()),
                                        .key_prefix = prefix_};
    options.timeout = std::chrono::milliseconds(2000);
    uses_ = std::make_unique<store::RedisUseStore>(options);
  }

  // Takes a use of key `jti` (of acme, up to 5 uses) as the gateway does, journaling the event
  // that reports it as interrupted; returns that event.
  std::string consume(const std::string& jti) {
    UsageRecord record{.event_id = jti,
                       .server = "llm-1",
                       .iss = "acme",
                       .sub = "user-42",
                       .model = "demo",
                       .started_at_ms = now_ * 1000,
                       .request_sha256 = std::string(64, 'a')};
    const UsageEventJson interrupted = interrupted_event_around_use(record);
    const store::ConsumeRequest req{.iss = "acme",
                                    .jti = jti,
                                    .sub = "user-42",
                                    .iat = now_ - 10,
                                    .expires_at = now_ + 600,
                                    .uses = 5,
                                    .budget = std::nullopt,
                                    .want_tokens = 10,
                                    .event_head = interrupted.head,
                                    .event_tail = interrupted.tail};
    auto grant = run_awaitable(io_, uses_->consume(req, now_));
    if (!grant) throw std::runtime_error("consume failed");
    return interrupted.with_use(grant->use);
  }

  JournalPass pass(std::int64_t consumed_by, store::AsyncUseStore* uses = nullptr) {
    return run_awaitable(io_, replay_journal_once(uses ? *uses : *uses_, *db_, {"acme", "other"},
                                                  "r2", consumed_by));
  }

  std::vector<store::OutboxEvent> due() {
    return query<Result<std::vector<store::OutboxEvent>>>(
               [](store::ServerStore& s) { return s.claim_due("acme", 1LL << 50, 100, 1); })
        .value();
  }
  store::OutboxStats stats() {
    return query<Result<store::OutboxStats>>([](store::ServerStore& s) { return s.stats(); })
        .value();
  }
  template <class T>
  T query(std::function<T(store::ServerStore&)> f) {
    return run_awaitable(io_, db_->query<T>(std::move(f)));
  }
  std::size_t journal_size() {
    testing::RawRedis raw(testing::shared_redis_url());
    return static_cast<std::size_t>(
        raw.command({"HLEN", store::redis_journal_key(prefix_, "acme")})->integer);
  }

  const std::int64_t now_ = testing::unix_now();
  const std::string prefix_ = testing::unique_redis_prefix();
  testing::TempDir dir_;
  asio::io_context io_;
  std::unique_ptr<DbWorker> db_;
  std::unique_ptr<store::RedisUseStore> uses_;
};

TEST_F(UseJournalTest, ReportsAConsumedUseWithoutARecordAsInterruptedOnce) {
  const std::string event = consume("journal-lost-00001");
  ASSERT_EQ(journal_size(), 1u);
  const JournalPass first = pass(now_ + 1);
  EXPECT_EQ(first.replayed, 1);
  EXPECT_EQ(first.forgotten, 0);
  EXPECT_TRUE(first.complete);
  EXPECT_EQ(journal_size(), 0u);
  const auto events = due();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].webhook_id, "journal-lost-00001.1");
  EXPECT_EQ(events[0].body, event);
  const auto body = boost::json::parse(events[0].body).as_object();
  EXPECT_EQ(body.at("status").as_string(), "interrupted");
  EXPECT_EQ(body.at("use").as_int64(), 1);
  EXPECT_EQ(stats().open, 0) << "written as a finished event, not left open";

  const JournalPass again = pass(now_ + 1);
  EXPECT_EQ(again.replayed + again.forgotten, 0);
}

TEST_F(UseJournalTest, OnlyForgetsAUseWhoseRecordExists) {
  const std::string event = consume("journal-kept-00001");
  ASSERT_FALSE(run_awaitable(io_, db_->write_durable(open_of("journal-kept-00001", 1, event))));
  const JournalPass p = pass(now_ + 1);
  EXPECT_EQ(p.replayed, 0);
  EXPECT_EQ(p.forgotten, 1);
  EXPECT_EQ(journal_size(), 0u);
  EXPECT_EQ(stats().open, 1) << "the live request's record is untouched";
  EXPECT_TRUE(due().empty());
}

TEST_F(UseJournalTest, LeavesUsesTooRecentToJudge) {
  consume("journal-young-0001");
  const JournalPass p = pass(now_ - 30);
  EXPECT_EQ(p.replayed + p.forgotten + p.corrupt, 0);
  EXPECT_EQ(journal_size(), 1u);
  EXPECT_EQ(stats().open + stats().pending, 0);
}

TEST_F(UseJournalTest, NeverSendsAnEntryThatDoesNotDescribeItsUse) {
  const std::string event = consume("journal-good-00001");  // use 1
  testing::RawRedis raw(testing::shared_redis_url());
  const std::string journal = store::redis_journal_key(prefix_, "acme");
  const std::string old = std::to_string(now_ - 100) + " ";
  std::string ok_status = event;
  ok_status.replace(ok_status.find("\"interrupted\""), 13, "\"ok\"");
  std::string other_iss = event;
  other_iss.replace(other_iss.find("\"iss\":\"acme\""), 12, "\"iss\":\"evil\"");
  raw.command({"HSET", journal,
               // another key's event under this name
               "journal-else-00001.1", old + event,
               // the right key, another use
               "journal-good-00001.2", old + event,
               // not what consume writes
               "journal-good-00001.3", old + "not json", "journal-good-00001.4", old + ok_status,
               "journal-good-00001.5", old + other_iss, "journal-good-00001.6", old + "[1]"});
  const JournalPass p = pass(now_ + 1);
  EXPECT_EQ(p.replayed, 1);  // the true entry
  EXPECT_EQ(p.corrupt, 6);
  ASSERT_EQ(due().size(), 1u);
  EXPECT_EQ(journal_size(), 6u) << "left for an operator to read";
}

TEST_F(UseJournalTest, ReplaysTheJournalsOfEveryIssuerGiven) {
  consume("journal-many-00001");
  consume("journal-many-00001");
  consume("journal-many-00002");
  const JournalPass p = pass(now_ + 1);
  EXPECT_EQ(p.replayed, 3);
  std::set<std::string> ids;
  for (const auto& e : due()) ids.insert(e.webhook_id);
  EXPECT_EQ(ids, (std::set<std::string>{"journal-many-00001.1", "journal-many-00001.2",
                                        "journal-many-00002.1"}));
}

TEST_F(UseJournalTest, DoesNothingOnAStoreWithoutAJournal) {
  store::MemoryUseStore memory;
  store::InlineUseStore inline_uses(memory);
  consume("journal-redis-0001");
  const JournalPass p = pass(now_ + 1, &inline_uses);
  EXPECT_EQ(p.replayed + p.forgotten + p.corrupt, 0);
  EXPECT_TRUE(p.complete);
  EXPECT_EQ(journal_size(), 1u);
}

}  // namespace
}  // namespace dynaseal::server
