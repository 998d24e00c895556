// What only the PostgreSQL ServerStore has to prove: several replicas (connections) on one
// database at once, PostgreSQL restarting under it, and its schema. The contract itself is
// server_store_test.cpp.
#include "store/postgres_server_store.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "support/postgres_schema.hpp"
#include "support/services.hpp"

namespace dynaseal::store {
namespace {

using namespace outbox;

std::unique_ptr<PostgresServerStore> open_store(const std::string& url) {
  std::string message;
  auto store = PostgresServerStore::open(url, &message);
  if (!store) throw std::runtime_error("cannot open the store: " + message);
  return store;
}

OutboxKey key(int i) { return {"acme", "event-" + std::to_string(i) + "-aaaaaaaaaaaa", 1}; }

// Opens and finalizes `n` events, one transaction.
void queue(ServerStore& store, int n, std::int64_t now) {
  std::vector<OutboxWrite> writes;
  for (int i = 0; i < n; ++i) {
    writes.push_back(Open{key(i), "llm-1", "interrupted", now});
    writes.push_back(Finalize{key(i), "body-" + std::to_string(i), now});
  }
  auto r = store.apply(writes);
  ASSERT_TRUE(r);
  for (const auto& one : *r) ASSERT_FALSE(one);
}

TEST(PostgresServerStore, TwoReplicasClaimingAtOnceNeverGetTheSameEvent) {
  const std::string url = testing::fresh_postgres_url();
  auto first = open_store(url);
  queue(*first, 600, 1);
  std::mutex mutex;
  std::multiset<std::int64_t> claimed;
  std::vector<std::thread> replicas;
  for (int r = 0; r < 2; ++r) {
    replicas.emplace_back([&, mine = r == 0 ? std::move(first) : open_store(url)] {
      for (;;) {
        auto events = mine->claim_due("acme", 10, 7, 60'000);
        ASSERT_TRUE(events);
        if (events->empty()) return;
        std::lock_guard lock(mutex);
        for (const OutboxEvent& e : *events) claimed.insert(e.id);
      }
    });
  }
  for (auto& t : replicas) t.join();
  EXPECT_EQ(claimed.size(), 600u);
  EXPECT_EQ(std::set<std::int64_t>(claimed.begin(), claimed.end()).size(), 600u)
      << "an event was claimed twice";
}

TEST(PostgresServerStore, TwoReplicasRecoveringAtOnceRecoverEachEventOnce) {
  const std::string url = testing::fresh_postgres_url();
  auto a = open_store(url);
  auto b = open_store(url);
  std::vector<OutboxWrite> writes;
  for (int i = 0; i < 400; ++i) writes.push_back(Open{key(i), "dead", "interrupted", 1});
  ASSERT_TRUE(a->apply(writes));
  std::atomic<std::int64_t> total{0};
  std::thread other([&] { total += b->recover_stale(1'000, 2'000).value_or(-1'000'000); });
  total += a->recover_stale(1'000, 2'000).value_or(-1'000'000);
  other.join();
  EXPECT_EQ(total.load(), 400);
  EXPECT_EQ(a->stats()->pending, 400);
}

TEST(PostgresServerStore, ReplicasStartingAtOnceMigrateOnce) {
  const std::string url = testing::fresh_postgres_url();
  std::atomic<int> opened{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      std::string message;
      if (PostgresServerStore::open(url, &message)) {
        ++opened;
      } else {
        ADD_FAILURE() << message;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(opened.load(), 4);
}

TEST(PostgresServerStore, RefusesASchemaFromANewerBuild) {
  const std::string url = testing::fresh_postgres_url();
  open_store(url);
  testing::postgres_exec(url, "UPDATE dynaseal_schema SET version = 42 WHERE component = 'server'");
  std::string message;
  EXPECT_FALSE(PostgresServerStore::open(url, &message));
  EXPECT_NE(message.find("newer"), std::string::npos) << message;
}

TEST(PostgresServerStore, BadContentsAreAnErrorNotACrash) {
  const std::string url = testing::fresh_postgres_url();
  auto store = open_store(url);
  queue(*store, 1, 1);
  testing::postgres_exec(url, "UPDATE outbox SET queued_ms = NULL");
  EXPECT_EQ(store->claim_due("acme", 10, 10, 1000).error(), Error::store_unavailable);
  testing::postgres_exec(url,
                         "ALTER TABLE outbox ALTER COLUMN body DROP NOT NULL; "
                         "UPDATE outbox SET queued_ms = 1, body = NULL, lease_until_ms = 0");
  EXPECT_FALSE(store->claim_due("acme", 2'000, 10, 1000)) << "a NULL body is refused too";
  EXPECT_TRUE(store->stats()) << "what is still readable stays readable";
}

// After the first start a role that may only read and write the tables (no CREATE right, no
// superuser) is enough: the migration finds nothing to do and creates nothing.
TEST(PostgresServerStore, ARoleThatCanOnlyReadAndWriteOpensAMigratedSchema) {
  const std::string url = testing::fresh_postgres_url();
  open_store(url);
  const std::string schema = url.substr(url.rfind("%3D") + 3);
  const std::string role = "r" + schema;
  testing::postgres_exec(url, "CREATE ROLE " + role + " LOGIN; GRANT USAGE ON SCHEMA " + schema +
                                  " TO " + role +
                                  "; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL "
                                  "TABLES IN SCHEMA " +
                                  schema + " TO " + role);
  std::string message;
  auto probe = Postgres::connect(url + "&user=" + role, {}, &message);
  ASSERT_TRUE(probe) << message;
  EXPECT_FALSE(probe->exec("CREATE TABLE probe (n BIGINT)")) << "the role cannot create";
  auto limited = open_store(url + "&user=" + role);
  queue(*limited, 3, 1);
  EXPECT_EQ(limited->claim_due("acme", 10, 10, 1000)->size(), 3u);
}

TEST(PostgresServerStore, SurvivesAPostgresqlRestart) {
  testing::PostgresServer server;
  const std::string url = testing::fresh_postgres_url(server.url());
  auto store = open_store(url);
  ASSERT_TRUE(store->put_backend({"acme", "{}", "http://a/cb"}));
  server.restart();
  int failed = 0;
  while (!store->backends() && failed < 50) {
    ++failed;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_LE(failed, 1) << "only the call that found the connection dead fails";
  auto all = store->backends();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].callback_url, "http://a/cb");
  queue(*store, 200, 1);  // a pipelined batch on the new connection
  EXPECT_EQ(store->claim_due("acme", 10, 1000, 1000)->size(), 200u);
}

TEST(PostgresServerStore, AStoreDownAtTheStartSaysWhy) {
  std::string message;
  EXPECT_FALSE(PostgresServerStore::open("postgresql://u:secret@127.0.0.1:1/x", &message));
  EXPECT_NE(message.find("cannot connect to postgresql://u:***@127.0.0.1:1/x"), std::string::npos)
      << message;
  EXPECT_EQ(message.find("secret"), std::string::npos);
}

}  // namespace
}  // namespace dynaseal::store
