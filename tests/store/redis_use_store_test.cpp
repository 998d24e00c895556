// What is particular to the Redis use store (the contract itself: use_store_test.cpp): Redis's
// clock, the key layout on a real server, NOSCRIPT, corrupt state, a stopped and a paused
// Redis, pipelining on one io_context, AUTH and SELECT.
#include "store/redis_use_store.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include "store/raw_redis.hpp"
#include "store/redis_fixture.hpp"
#include "store/redis_keys.hpp"
#include "store/redis_scripts.hpp"
#include "store/run_awaitable.hpp"
#include "support/services.hpp"

namespace dynaseal::store {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;
using testing::RawRedis;
using testing::RedisServer;
using testing::run_awaitable;
using Clock = std::chrono::steady_clock;

// Redis's own clock (TIME), in seconds.
std::int64_t redis_time(RawRedis& redis) {
  auto reply = redis.command({"TIME"});
  return std::stoll(std::string(reply->element[0]->str, reply->element[0]->len));
}

long long connected_clients(RawRedis& redis) {
  auto reply = redis.command({"INFO", "clients"});
  const std::string info(reply->str, reply->len);
  const auto at = info.find("connected_clients:");
  if (at == std::string::npos) throw std::runtime_error("INFO clients without connected_clients");
  return std::stoll(info.substr(at + 18));
}

// Polls `condition` every 20 ms for up to `limit`.
template <class F>
bool eventually(F condition, std::chrono::milliseconds limit = 3000ms) {
  const auto end = Clock::now() + limit;
  while (!condition()) {
    if (Clock::now() > end) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

class RedisUseStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<RedisUseStore> make(const std::string& url,
                                      std::chrono::milliseconds timeout = 2000ms) {
    RedisUseStoreOptions options{.url = testing::redis_url_of(url), .key_prefix = prefix_};
    options.timeout = timeout;
    return std::make_unique<RedisUseStore>(options);
  }
  // A single-use key of "acme" for "user-42", issued 10 s before `now`, alive 600 s.
  static ConsumeRequest key(std::string_view jti, std::int64_t now, std::int64_t uses = 1) {
    return {.iss = "acme",
            .jti = jti,
            .sub = "user-42",
            .iat = now - 10,
            .expires_at = now + 600,
            .uses = uses,
            .budget = std::nullopt,
            .want_tokens = 100};
  }
  Result<UseGrant> consume(RedisUseStore& store, const ConsumeRequest& req, std::int64_t now) {
    return run_awaitable(context_, store.consume(req, now));
  }
  // Every page of issuer `iss`'s journal, merged.
  JournalPage whole_journal(RedisUseStore& store, std::string_view iss) {
    JournalPage all;
    std::uint64_t cursor = 0;
    do {
      auto page = run_awaitable(context_, store.journal(iss, cursor));
      if (!page) throw std::runtime_error("journal: " + std::string(to_string(page.error())));
      for (auto& e : page->entries) all.entries.push_back(std::move(e));
      for (auto& c : page->corrupt) all.corrupt.push_back(std::move(c));
      cursor = page->cursor;
    } while (cursor != 0);
    return all;
  }
  static ConsumeRequest journaled(ConsumeRequest req) {
    req.event_head = R"({"event_id":"x","use":)";
    // As long as a real event's: Redis keeps a hash of short values in one listpack, which
    // HSCAN returns whole.
    req.event_tail = R"(,"status":"interrupted","request_sha256":)"
                     R"("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"})";
    return req;
  }

  const std::int64_t now_ = testing::unix_now();
  const std::string prefix_ = testing::unique_redis_prefix();
  asio::io_context context_;
};

// Clock

TEST_F(RedisUseStoreTest, DecidesWithTheClockOfRedisWhenTheCallersLags) {
  RawRedis raw(testing::shared_redis_url());
  auto store = make(testing::shared_redis_url());
  const std::int64_t redis_now = redis_time(raw);
  ConsumeRequest req = key("lagging-clock-key-1", redis_now - 20);
  req.expires_at = redis_now - 5;
  // The caller believes it is 10 s earlier, before the key's expiry; Redis knows better.
  EXPECT_EQ(consume(*store, req, redis_now - 10).error(), Error::token_expired);
  // A revocation that has lapsed by Redis's clock is not written either.
  EXPECT_TRUE(
      run_awaitable(context_, store->revoke_jti("acme", "k", redis_now - 5, redis_now - 10)));
  EXPECT_TRUE(raw.keys(prefix_ + ":*").empty());
}

TEST_F(RedisUseStoreTest, LetsRedisDropStateAtTheDeadlineWithoutEverReusingTheKey) {
  RawRedis raw(testing::shared_redis_url());
  auto store = make(testing::shared_redis_url());
  const std::int64_t redis_now = redis_time(raw);
  ConsumeRequest req = key("expiring-by-redis-1", redis_now);
  req.expires_at = redis_now + 2;
  ASSERT_TRUE(consume(*store, req, redis_now));
  const std::string name = redis_jti_key(prefix_, "acme", req.jti);
  EXPECT_EQ(raw.integer({"EXPIRETIME", name}), req.expires_at);  // EXPIREAT at the deadline
  ASSERT_TRUE(eventually([&] { return raw.integer({"EXISTS", name}) == 0; }, 5000ms));
  // Gone from Redis, and a caller whose clock still reads before the deadline asks again: it
  // must not count from zero.
  EXPECT_EQ(consume(*store, req, req.expires_at - 1).error(), Error::token_expired);
}

// Keys

TEST_F(RedisUseStoreTest, KeepsHostileNamesApartAndInTheDocumentedLayout) {
  RawRedis raw(testing::shared_redis_url());
  auto store = make(testing::shared_redis_url());
  struct Name {
    std::string iss, jti, sub;
  };
  const std::vector<Name> names = {
      {"a", "b:k:c", "u"},   {"a:k:b", "c", "u"},     {"a}", "b", "u"},       {"a", "}:k:b", "u"},
      {"x\0y"s, "\0"s, "{"}, {"x", "\0y"s, "{"},      {"{", "}", ":"},        {"", "~", "u"},
      {"~", "", "u"},        {"a", "s:u:k:b", "k:b"}, {"a{b}", "c", "\0\0"s}, {"a", "b{c}", "\0"s},
  };
  for (const Name& n : names) {
    const ConsumeRequest req{.iss = n.iss,
                             .jti = n.jti,
                             .sub = n.sub,
                             .iat = now_ - 10,
                             .expires_at = now_ + 600,
                             .uses = 1,
                             .budget = std::nullopt,
                             .want_tokens = 1};
    auto grant = consume(*store, req, now_);
    ASSERT_TRUE(grant) << "a collision: " << to_string(grant.error());
    EXPECT_EQ(grant->use, 1);
  }
  // Revoking ("a", "u:s:x") or ("a", "u\0") revokes neither ("a", "u") nor anyone else's "u".
  ASSERT_TRUE(run_awaitable(context_, store->revoke_sub("a", "u:s:x", now_, now_ + 60, now_)));
  ASSERT_TRUE(run_awaitable(context_, store->revoke_sub("a", "u\0"s, now_, now_ + 60, now_)));
  ASSERT_TRUE(run_awaitable(context_, store->revoke_sub("a}", "u", now_, now_ + 60, now_)));
  const ConsumeRequest fresh{.iss = "a",
                             .jti = "fresh",
                             .sub = "u",
                             .iat = now_ - 10,
                             .expires_at = now_ + 600,
                             .uses = 1,
                             .budget = std::nullopt,
                             .want_tokens = 1};
  EXPECT_TRUE(consume(*store, fresh, now_));

  std::set<std::string> expected;
  for (const Name& n : names) expected.insert(redis_jti_key(prefix_, n.iss, n.jti));
  for (const std::string& sub : {"u:s:x"s, "u\0"s})
    expected.insert(redis_sub_key(prefix_, "a", sub));
  expected.insert(redis_sub_key(prefix_, "a}", "u"));
  expected.insert(redis_jti_key(prefix_, "a", "fresh"));
  const auto found = raw.keys(prefix_ + ":*");
  EXPECT_EQ(std::set<std::string>(found.begin(), found.end()), expected);
}

// The journal

TEST_F(RedisUseStoreTest, JournalsEachUseWithItsEventUntilItIsSettledOrForgotten) {
  RawRedis raw(testing::shared_redis_url());
  auto store = make(testing::shared_redis_url());
  const auto req = journaled(key("journal-key-0001", now_, 3));
  ASSERT_EQ(consume(*store, req, now_)->use, 1);
  ASSERT_EQ(consume(*store, req, now_)->use, 2);
  const std::int64_t redis_now = redis_time(raw);
  auto journal = whole_journal(*store, "acme");
  ASSERT_EQ(journal.entries.size(), 2u);
  EXPECT_TRUE(journal.corrupt.empty());
  std::sort(journal.entries.begin(), journal.entries.end(),
            [](const auto& a, const auto& b) { return a.use < b.use; });
  for (std::int64_t use = 1; use <= 2; ++use) {
    const JournalEntry& e = journal.entries[static_cast<std::size_t>(use - 1)];
    EXPECT_EQ(e.jti, "journal-key-0001");
    EXPECT_EQ(e.use, use);
    EXPECT_EQ(e.event,
              std::string(req.event_head) + std::to_string(use) + std::string(req.event_tail));
    EXPECT_LE(std::abs(e.consumed_at - redis_now), 1);
  }
  EXPECT_TRUE(whole_journal(*store, "other-issuer").entries.empty());  // per issuer

  ASSERT_TRUE(run_awaitable(context_, store->settle("acme", req.jti, 1, 100, 10, now_)));
  journal = whole_journal(*store, "acme");
  ASSERT_EQ(journal.entries.size(), 1u);
  EXPECT_EQ(journal.entries[0].use, 2);
  ASSERT_TRUE(run_awaitable(context_, store->forget("acme", req.jti, 2)));
  EXPECT_TRUE(whole_journal(*store, "acme").entries.empty());
  EXPECT_TRUE(run_awaitable(context_, store->forget("acme", req.jti, 2)));  // already gone
  // The journal lives in the issuer's hash tag, next to its keys.
  const auto found = raw.keys(prefix_ + ":*");
  EXPECT_EQ(std::count(found.begin(), found.end(), redis_journal_key(prefix_, "acme")), 0)
      << "an empty journal is no key at all";
}

TEST_F(RedisUseStoreTest, JournalsNothingWithoutAnEventOrForARefusedUse) {
  auto store = make(testing::shared_redis_url());
  ASSERT_TRUE(consume(*store, key("journal-key-0002", now_), now_));  // no event given
  const auto req = journaled(key("journal-key-0003", now_));
  ASSERT_TRUE(consume(*store, req, now_));
  EXPECT_EQ(consume(*store, req, now_).error(), Error::uses_exhausted);
  const auto journal = whole_journal(*store, "acme");
  ASSERT_EQ(journal.entries.size(), 1u);
  EXPECT_EQ(journal.entries[0].jti, "journal-key-0003");
}

TEST_F(RedisUseStoreTest, PagesThroughAJournalOfManyEntries) {
  auto store = make(testing::shared_redis_url());
  std::set<std::string> consumed;
  for (int i = 0; i < 300; ++i) {
    const std::string jti = "journal-page-" + std::to_string(1000 + i);
    ASSERT_TRUE(consume(*store, journaled(key(jti, now_)), now_));
    consumed.insert(jti);
  }
  auto first = run_awaitable(context_, store->journal("acme", 0));
  ASSERT_TRUE(first);
  EXPECT_LT(first->entries.size(), 300u) << "one page holds about a hundred entries";
  EXPECT_NE(first->cursor, 0u);
  std::set<std::string> seen;
  for (const JournalEntry& e : whole_journal(*store, "acme").entries) seen.insert(e.jti);
  EXPECT_EQ(seen, consumed);
}

TEST_F(RedisUseStoreTest, ReportsJournalEntriesItCannotReadAndLeavesThemAlone) {
  RawRedis raw(testing::shared_redis_url());
  auto store = make(testing::shared_redis_url());
  const std::string journal = redis_journal_key(prefix_, "acme");
  raw.command({"HSET",  journal,  "no-use-here", "1 {}",   "key.0",
               "1 {}",  "key.-1", "1 {}",        "key.x1", "1 {}",
               "key.7", "-5 {}",  "key.8",       "1",      "key.9",
               "1 ",    "key.10", "soon {}",     "key.11", "99999999999999999999 {}"});
  ASSERT_TRUE(consume(*store, journaled(key("journal-key-0004", now_)), now_));
  const auto page = whole_journal(*store, "acme");
  ASSERT_EQ(page.entries.size(), 1u);
  EXPECT_EQ(page.entries[0].jti, "journal-key-0004");
  EXPECT_EQ(std::set<std::string>(page.corrupt.begin(), page.corrupt.end()),
            (std::set<std::string>{"no-use-here", "key.0", "key.-1", "key.x1", "key.7", "key.8",
                                   "key.9", "key.10", "key.11"}));
  EXPECT_EQ(raw.command({"HLEN", journal})->integer, 10);
}

TEST_F(RedisUseStoreTest, RefusesAJournalThatIsNotAHash) {
  RawRedis raw(testing::shared_redis_url());
  auto store = make(testing::shared_redis_url());
  raw.command({"SET", redis_journal_key(prefix_, "acme"), "not a hash"});
  EXPECT_EQ(run_awaitable(context_, store->journal("acme", 0)).error(), Error::store_unavailable);
  EXPECT_EQ(run_awaitable(context_, store->forget("acme", "k", 1)).error(),
            Error::store_unavailable);
  // consume writes its entry in the same step as the use: a use that cannot be journaled is
  // not taken.
  const auto req = journaled(key("journal-key-0005", now_));
  EXPECT_EQ(consume(*store, req, now_).error(), Error::store_unavailable);
  raw.command({"DEL", redis_journal_key(prefix_, "acme")});
  EXPECT_EQ(consume(*store, req, now_)->use, 1);
}

// Scripts and stored state

TEST_F(RedisUseStoreTest, SendsTheScriptAgainWhenRedisForgotIt) {
  RawRedis raw(testing::shared_redis_url());
  auto store = make(testing::shared_redis_url());
  const auto req = key("noscript-key-00001", now_, 5);
  ASSERT_EQ(consume(*store, req, now_)->use, 1);
  raw.command({"SCRIPT", "FLUSH"});  // as after a restart of Redis
  EXPECT_EQ(consume(*store, req, now_)->use, 2);
  raw.command({"SCRIPT", "FLUSH"});
  EXPECT_TRUE(run_awaitable(context_, store->settle("acme", req.jti, 2, 100, 10, now_)));
  raw.command({"SCRIPT", "FLUSH"});
  EXPECT_TRUE(run_awaitable(context_, store->revoke_sub("acme", "user-1", now_, now_ + 60, now_)));
  raw.command({"SCRIPT", "FLUSH"});
  EXPECT_TRUE(run_awaitable(context_, store->revoke_jti("acme", req.jti, now_ + 60, now_)));
  EXPECT_EQ(consume(*store, req, now_).error(), Error::token_revoked);
  auto loaded = raw.command({"SCRIPT", "EXISTS", redis_consume_script().sha1});
  EXPECT_EQ(loaded->element[0]->integer, 1);  // EVAL cached it again
}

TEST_F(RedisUseStoreTest, FailsClosedOnStateItDidNotWrite) {
  RawRedis raw(testing::shared_redis_url());
  auto store = make(testing::shared_redis_url());
  const std::string deadline = std::to_string(now_ + 600);
  const auto name = [&](const char* jti) { return redis_jti_key(prefix_, "acme", jti); };
  raw.command({"HSET", name("corrupt-key-00001"), "uses", "x", "reserved", "0", "spent", "0",
               "revoked", "0", "deadline", deadline});
  raw.command({"HSET", name("corrupt-key-00002"), "uses", "99999999999999999999", "reserved", "0",
               "spent", "0", "revoked", "0", "deadline", deadline});
  raw.command({"HSET", name("corrupt-key-00003"), "deadline", "1e99"});
  raw.command({"SET", name("corrupt-key-00004"), "not a hash"});
  for (const char* jti :
       {"corrupt-key-00001", "corrupt-key-00002", "corrupt-key-00003", "corrupt-key-00004"}) {
    EXPECT_EQ(consume(*store, key(jti, now_), now_).error(), Error::store_unavailable) << jti;
  }
  EXPECT_FALSE(store->healthy());
  EXPECT_EQ(
      run_awaitable(context_, store->settle("acme", "corrupt-key-00003", 1, 1, 1, now_)).error(),
      Error::store_unavailable);
  EXPECT_TRUE(consume(*store, key("good-key-00000001", now_), now_));
  EXPECT_TRUE(store->healthy());
  // A subject revocation without its revoked_at.
  raw.command({"HSET", redis_sub_key(prefix_, "acme", "user-42"), "until", deadline});
  EXPECT_EQ(consume(*store, key("good-key-00000002", now_), now_).error(),
            Error::store_unavailable);
  raw.command({"DEL", redis_sub_key(prefix_, "acme", "user-42")});
  EXPECT_TRUE(consume(*store, key("good-key-00000002", now_), now_));
  EXPECT_TRUE(store->healthy());
}

// Failures

TEST_F(RedisUseStoreTest, FailsFastWhileRedisIsDownAndRecoversWhenItReturns) {
  RedisServer redis;
  auto store = make(redis.url(), 2000ms);  // failing fast means far quicker than this
  ASSERT_TRUE(consume(*store, key("down-key-00000001", now_), now_));
  EXPECT_TRUE(store->healthy());
  redis.stop();

  auto started = Clock::now();
  EXPECT_EQ(consume(*store, key("down-key-00000002", now_), now_).error(),
            Error::store_unavailable);
  EXPECT_LT(Clock::now() - started, 500ms);
  EXPECT_FALSE(store->healthy());
  EXPECT_FALSE(run_awaitable(context_, store->check()));
  started = Clock::now();
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(consume(*store, key("down-key-00000003", now_), now_).error(),
              Error::store_unavailable);
  }
  EXPECT_LT(Clock::now() - started, 500ms) << "calls while Redis is down must fail fast";

  redis.start();  // same port, empty
  EXPECT_TRUE(
      eventually([&] { return bool(consume(*store, key("down-key-00000004", now_), now_)); }));
  EXPECT_TRUE(store->healthy());
  EXPECT_TRUE(run_awaitable(context_, store->check()));
  EXPECT_EQ(consume(*store, key("down-key-00000004", now_), now_).error(), Error::uses_exhausted);
}

TEST_F(RedisUseStoreTest, GivesUpOnAHungRedisWithinItsTimeoutAndRecovers) {
  RedisServer redis;
  auto store = make(redis.url(), 150ms);
  ASSERT_TRUE(consume(*store, key("hung-key-00000001", now_), now_));
  redis.pause();

  // Twenty calls pipelined on the one connection: all fail, together, at the deadline.
  std::vector<Result<UseGrant>> results;
  std::vector<std::string> jtis;
  for (int i = 0; i < 20; ++i) jtis.push_back("hung-key-1" + std::to_string(1000000 + i));
  std::vector<ConsumeRequest> requests;
  for (const auto& jti : jtis) requests.push_back(key(jti, now_));
  const auto started = Clock::now();
  for (const auto& req : requests) {
    asio::co_spawn(context_, store->consume(req, now_),
                   [&](std::exception_ptr, Result<UseGrant> r) { results.push_back(r); });
  }
  while (results.size() < requests.size()) context_.run_one();
  const auto took = Clock::now() - started;
  for (const auto& r : results) EXPECT_EQ(r.error(), Error::store_unavailable);
  EXPECT_GE(took, 140ms);
  EXPECT_LT(took, 1150ms);  // the timeout, plus slack for a loaded machine
  EXPECT_FALSE(store->healthy());

  redis.resume();
  EXPECT_TRUE(
      eventually([&] { return bool(consume(*store, key("hung-key-00000002", now_), now_)); }));
  EXPECT_TRUE(store->healthy());
}

// Connections

TEST_F(RedisUseStoreTest, PipelinesTheCallsOfOneIoContextOnOneConnection) {
  RedisServer redis;
  RawRedis raw(redis.url());
  const long long before = connected_clients(raw);
  auto store = make(redis.url());
  const auto single = key("pipelined-single-1", now_);
  const auto hundred = key("pipelined-hundred", now_, 100);
  std::vector<Result<UseGrant>> singles, hundreds;
  for (int i = 0; i < 500; ++i) {
    asio::co_spawn(context_, store->consume(single, now_),
                   [&](std::exception_ptr, Result<UseGrant> r) { singles.push_back(r); });
    asio::co_spawn(context_, store->consume(hundred, now_),
                   [&](std::exception_ptr, Result<UseGrant> r) { hundreds.push_back(r); });
  }
  while (singles.size() + hundreds.size() < 1000) context_.run_one();
  EXPECT_EQ(connected_clients(raw), before + 1);

  int served = 0;
  for (const auto& r : singles) {
    if (r)
      ++served;
    else
      EXPECT_EQ(r.error(), Error::uses_exhausted);
  }
  EXPECT_EQ(served, 1);
  std::set<std::int64_t> uses;
  for (const auto& r : hundreds) {
    if (r)
      uses.insert(r->use);
    else
      EXPECT_EQ(r.error(), Error::uses_exhausted);
  }
  EXPECT_EQ(uses.size(), 100u);
  EXPECT_EQ(*uses.begin(), 1);
  EXPECT_EQ(*uses.rbegin(), 100);

  // Another thread's io_context gets a connection of its own.
  std::thread([&] {
    asio::io_context other;
    EXPECT_TRUE(run_awaitable(other, store->consume(key("other-thread-key1", now_), now_)));
    EXPECT_EQ(connected_clients(raw), before + 2);
  }).join();
}

TEST_F(RedisUseStoreTest, ClosesItsConnectionWithTheStoreOrTheIoContext) {
  RedisServer redis;
  RawRedis raw(redis.url());
  const long long before = connected_clients(raw);
  auto store = make(redis.url());
  ASSERT_TRUE(consume(*store, key("closing-key-00001", now_), now_));
  EXPECT_EQ(connected_clients(raw), before + 1);
  store.reset();
  context_.poll();  // runs the close the store posted to this io_context
  EXPECT_TRUE(eventually([&] { return connected_clients(raw) == before; }));

  store = make(redis.url());
  {
    asio::io_context gone;
    ASSERT_TRUE(run_awaitable(gone, store->consume(key("closing-key-00002", now_), now_)));
  }
  EXPECT_TRUE(eventually([&] { return connected_clients(raw) == before; }));
  EXPECT_TRUE(consume(*store, key("closing-key-00003", now_), now_));  // a new io_context
}

TEST_F(RedisUseStoreTest, AuthenticatesAndSelectsTheDatabaseOfItsUrl) {
  RedisServer redis;
  RawRedis(redis.url()).command({"CONFIG", "SET", "requirepass", "s3cret"});
  const std::string base = "redis://:s3cret@127.0.0.1:" + std::to_string(redis.port());
  auto store = make(base + "/3");
  ASSERT_TRUE(consume(*store, key("auth-select-key-1", now_), now_));
  EXPECT_EQ(RawRedis(base + "/3").keys(prefix_ + ":*").size(), 1u);
  EXPECT_TRUE(RawRedis(base + "/0").keys(prefix_ + ":*").empty());

  const std::string port = std::to_string(redis.port());
  for (const std::string& url : {"redis://:wrong@127.0.0.1:" + port + "/3",
                                 "redis://127.0.0.1:" + port + "/3", base + "/99"}) {
    auto refused = make(url, 300ms);
    EXPECT_EQ(consume(*refused, key("auth-select-key-2", now_), now_).error(),
              Error::store_unavailable)
        << url;
    EXPECT_FALSE(refused->healthy()) << url;
  }
  EXPECT_TRUE(RawRedis(base + "/0").keys(prefix_ + ":*").empty());  // never on the wrong db
}

TEST_F(RedisUseStoreTest, RefusesBadOptions) {
  const auto url = testing::redis_url_of("redis://127.0.0.1:1");
  EXPECT_THROW(RedisUseStore({.url = url, .key_prefix = "a:b"}), std::invalid_argument);
  EXPECT_THROW(RedisUseStore({.url = url, .key_prefix = ""}), std::invalid_argument);
  EXPECT_THROW(RedisUseStore({.url = url, .timeout = 0ms}), std::invalid_argument);
  EXPECT_THROW(RedisUseStore({.url = url, .min_backoff = 10ms, .max_backoff = 5ms}),
               std::invalid_argument);
}

}  // namespace
}  // namespace dynaseal::store
