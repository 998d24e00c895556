// The libpq wrapper: parameters, strict reading, errors, transactions, pipelines, migrations,
// and surviving a PostgreSQL restart.
#include "store/postgres.hpp"

#include <atomic>
#include <chrono>
#include <limits>
#include <thread>

#include <gtest/gtest.h>

#include "store/postgres_migrate.hpp"
#include "support/postgres_schema.hpp"
#include "support/services.hpp"

namespace dynaseal::store {
namespace {

Postgres connect_to(const std::string& url, Postgres::Options options = {}) {
  std::string message;
  auto db = Postgres::connect(url, options, &message);
  if (!db) throw std::runtime_error("cannot connect: " + message);
  return std::move(*db);
}

class PostgresTest : public ::testing::Test {
 protected:
  std::string url = testing::fresh_postgres_url();
  Postgres db = connect_to(url);
};

TEST_F(PostgresTest, SendsParametersAsTheyAre) {
  const std::string tricky = "it's a \"test\" \\ with 'quotes'; DROP TABLE x; -- ünïcödé";
  const std::int64_t lowest = std::numeric_limits<std::int64_t>::min();
  const std::int64_t highest = std::numeric_limits<std::int64_t>::max();
  auto rows = db.query("SELECT $1::text, $2::bigint, $3::bigint, $4::text IS NULL, $5::text, $6",
                       {tricky, lowest, highest, nullptr, "", true});
  ASSERT_TRUE(rows) << db.error_message();
  ASSERT_EQ(rows->size(), 1);
  EXPECT_EQ(rows->text(0, 0), tricky);
  EXPECT_EQ(rows->int64(0, 1), lowest);
  EXPECT_EQ(rows->int64(0, 2), highest);
  EXPECT_TRUE(rows->boolean(0, 3));
  EXPECT_EQ(rows->text(0, 4), "") << "an empty string is not NULL";
  EXPECT_TRUE(rows->boolean(0, 5));
  EXPECT_TRUE(rows->ok());
}

TEST_F(PostgresTest, ReadsNullsOnlyWhereTheyAreAllowed) {
  auto rows = db.query("SELECT NULL::bigint, NULL::text");
  ASSERT_TRUE(rows);
  EXPECT_EQ(rows->optional_int64(0, 0), std::nullopt);
  EXPECT_TRUE(rows->ok()) << "an optional number may be NULL";
  EXPECT_EQ(rows->int64(0, 0), 0);
  EXPECT_FALSE(rows->ok());
  EXPECT_EQ(rows->check().error(), Error::store_unavailable);
  auto text = db.query("SELECT NULL::text");
  ASSERT_TRUE(text);
  EXPECT_EQ(text->text(0, 0), "");
  EXPECT_FALSE(text->ok());
}

TEST_F(PostgresTest, RefusesMalformedNumbersWithoutCrashing) {
  for (const char* sql : {"SELECT '12a'::text", "SELECT '99999999999999999999'::text",
                          "SELECT ''::text", "SELECT '1.5'::text", "SELECT ' 7'::text"}) {
    auto rows = db.query(sql);
    ASSERT_TRUE(rows) << sql;
    EXPECT_EQ(rows->int64(0, 0), 0) << sql;
    EXPECT_FALSE(rows->ok()) << sql;
  }
  auto rows = db.query("SELECT 1");
  ASSERT_TRUE(rows);
  EXPECT_EQ(rows->int64(0, 5), 0) << "no such column";
  EXPECT_EQ(rows->int64(3, 0), 0) << "no such row";
  EXPECT_FALSE(rows->ok());
  auto flag = db.query("SELECT 'yes'::text");
  EXPECT_FALSE(flag->boolean(0, 0));
  EXPECT_FALSE(flag->ok());
}

TEST_F(PostgresTest, AUniqueViolationIsAConflictAndOtherErrorsAreStoreUnavailable) {
  ASSERT_TRUE(db.exec("CREATE TABLE t (k TEXT PRIMARY KEY, n BIGINT NOT NULL)"));
  EXPECT_EQ(db.execute("INSERT INTO t VALUES ($1, $2)", {"a", 1}), 1);
  EXPECT_EQ(db.execute("INSERT INTO t VALUES ($1, $2)", {"a", 2}).error(), Error::conflict);
  EXPECT_EQ(db.execute("INSERT INTO t VALUES ($1, $2)", {"b", nullptr}).error(),
            Error::store_unavailable);
  EXPECT_NE(db.error_message().find("null value"), std::string::npos) << db.error_message();
  EXPECT_EQ(db.query("SELECT nonsense FROM t").error(), Error::store_unavailable);
  EXPECT_EQ(db.execute("UPDATE t SET n = n + 1 WHERE k = $1", {"a"}), 1) << "still usable";
}

TEST_F(PostgresTest, ATransactionRollsBackUnlessCommitted) {
  ASSERT_TRUE(db.exec("CREATE TABLE t (k TEXT PRIMARY KEY)"));
  {
    auto tx = db.begin();
    ASSERT_TRUE(tx);
    ASSERT_TRUE(db.execute("INSERT INTO t VALUES ('dropped')"));
    EXPECT_EQ(db.begin().error(), Error::internal) << "no nesting: savepoints are for that";
  }
  auto tx = db.begin();
  ASSERT_TRUE(tx);
  ASSERT_TRUE(db.execute("INSERT INTO t VALUES ('kept')"));
  ASSERT_TRUE(tx->commit());
  auto rows = db.query("SELECT string_agg(k, ',') FROM t");
  EXPECT_EQ(rows->text(0, 0), "kept");
}

TEST_F(PostgresTest, ACommitAfterAFailedStatementFails) {
  ASSERT_TRUE(db.exec("CREATE TABLE t (k TEXT PRIMARY KEY)"));
  auto tx = db.begin();
  ASSERT_TRUE(tx);
  ASSERT_TRUE(db.execute("INSERT INTO t VALUES ('a')"));
  EXPECT_EQ(db.execute("INSERT INTO t VALUES ('a')").error(), Error::conflict);
  EXPECT_EQ(tx->commit().error(), Error::store_unavailable) << "PostgreSQL rolled it back";
  EXPECT_EQ(db.query("SELECT count(*) FROM t")->int64(0, 0), 0);
}

TEST_F(PostgresTest, ASavepointUndoesOnlyWhatFollowedIt) {
  ASSERT_TRUE(db.exec("CREATE TABLE t (k TEXT PRIMARY KEY)"));
  auto tx = db.begin();
  ASSERT_TRUE(tx);
  ASSERT_TRUE(db.execute("INSERT INTO t VALUES ('a')"));
  ASSERT_TRUE(db.savepoint("one"));
  EXPECT_EQ(db.execute("INSERT INTO t VALUES ('a')").error(), Error::conflict);
  ASSERT_TRUE(db.rollback_to("one"));
  ASSERT_TRUE(db.release("one"));
  ASSERT_TRUE(db.execute("INSERT INTO t VALUES ('b')"));
  ASSERT_TRUE(tx->commit());
  EXPECT_EQ(db.query("SELECT count(*) FROM t")->int64(0, 0), 2);
}

TEST_F(PostgresTest, APipelineAnswersEveryStatementInOrder) {
  ASSERT_TRUE(db.exec("CREATE TABLE t (k BIGINT PRIMARY KEY)"));
  std::vector<std::int64_t> keys;
  for (int i = 0; i < 1000; ++i) keys.push_back(i % 700);  // 300 duplicates
  std::vector<PgCall> calls;
  for (const std::int64_t& k : keys) {
    calls.push_back({"INSERT INTO t VALUES ($1) ON CONFLICT DO NOTHING", {k}});
  }
  calls.push_back({"SELECT count(*) FROM t", {}});
  auto results = db.pipeline(calls);
  ASSERT_TRUE(results);
  ASSERT_EQ(results->size(), calls.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    ASSERT_TRUE((*results)[i]);
    EXPECT_EQ((*results)[i]->affected(), i < 700 ? 1 : 0) << i;
  }
  EXPECT_EQ(results->back()->int64(0, 0), 700);
  EXPECT_TRUE(db.query("SELECT 1")) << "back out of pipeline mode";
}

TEST_F(PostgresTest, AFailedStatementInAPipelineAbortsTheRestOfItsTransaction) {
  ASSERT_TRUE(db.exec("CREATE TABLE t (k BIGINT PRIMARY KEY)"));
  auto tx = db.begin();
  ASSERT_TRUE(tx);
  const std::vector<PgCall> calls{{"INSERT INTO t VALUES ($1)", {std::int64_t{1}}},
                                  {"INSERT INTO t VALUES ($1)", {std::int64_t{1}}},
                                  {"INSERT INTO t VALUES ($1)", {std::int64_t{2}}}};
  auto results = db.pipeline(calls);
  ASSERT_TRUE(results);
  EXPECT_TRUE((*results)[0]);
  EXPECT_EQ((*results)[1].error(), Error::conflict);
  EXPECT_EQ((*results)[2].error(), Error::store_unavailable);
  EXPECT_FALSE(tx->commit());
  EXPECT_EQ(db.query("SELECT count(*) FROM t")->int64(0, 0), 0);
}

TEST_F(PostgresTest, AStatementTimeoutEndsASlowStatementAndTheConnectionGoesOn) {
  Postgres quick = connect_to(url, {.statement_timeout = std::chrono::milliseconds(200)});
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(quick.query("SELECT pg_sleep(5)").error(), Error::store_unavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_NE(quick.error_message().find("statement timeout"), std::string::npos)
      << quick.error_message();
  EXPECT_TRUE(quick.query("SELECT 1"));
}

TEST_F(PostgresTest, TheUrlMaySetItsOwnStatementTimeout) {
  Postgres own = connect_to(url + "%20-cstatement_timeout%3D1234");
  auto rows = own.query("SHOW statement_timeout");
  ASSERT_TRUE(rows);
  EXPECT_EQ(rows->text(0, 0), "1234ms");
  auto ours = db.query("SHOW statement_timeout");
  EXPECT_EQ(ours->text(0, 0), "30s");
}

TEST(PostgresConnect, SaysWhyItCannotConnectWithoutThePassword) {
  std::string message;
  auto db = Postgres::connect("postgresql://acme:hunter2@127.0.0.1:1/x", {}, &message);
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error(), Error::store_unavailable);
  EXPECT_NE(message.find("postgresql://acme:***@127.0.0.1:1/x"), std::string::npos) << message;
  EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
  EXPECT_FALSE(Postgres::connect("postgresql://acme:hunter2@db:x/y", {}, &message));
  EXPECT_NE(message.find("malformed"), std::string::npos) << message;
  EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
}

// ---- Migrations -----------------------------------------------------------------------------

// Version 2 takes a while, so that processes starting together overlap.
constexpr PgMigration kSteps[] = {
    {1, "CREATE TABLE runs (n BIGINT NOT NULL); INSERT INTO runs VALUES (1);"},
    {2, "SELECT pg_sleep(0.3); INSERT INTO runs VALUES (2);"},
};

TEST_F(PostgresTest, MigratesOnceWhenSeveralProcessesStartAtOnce) {
  std::atomic<int> migrated{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&] {
      Postgres mine = connect_to(url);
      std::string message;
      if (migrate(mine, "test", kSteps, &message)) {
        ++migrated;
      } else {
        ADD_FAILURE() << message;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(migrated.load(), 3);
  EXPECT_EQ(db.query("SELECT count(*) FROM runs")->int64(0, 0), 2) << "each step ran once";
  EXPECT_EQ(db.query("SELECT version FROM dynaseal_schema WHERE component = 'test'")->int64(0, 0),
            2);
}

TEST_F(PostgresTest, UpgradesStepByStepAndRefusesANewerSchema) {
  std::string message;
  ASSERT_TRUE(migrate(db, "test", std::span(kSteps).first(1), &message)) << message;
  ASSERT_TRUE(migrate(db, "test", kSteps, &message)) << message;
  EXPECT_EQ(db.query("SELECT count(*) FROM runs")->int64(0, 0), 2);
  ASSERT_TRUE(migrate(db, "other", {}, &message)) << "components are versioned apart";
  auto refused = migrate(db, "test", std::span(kSteps).first(1), &message);
  EXPECT_EQ(refused.error(), Error::store_unavailable);
  EXPECT_NE(message.find("newer than this program knows"), std::string::npos) << message;
}

TEST_F(PostgresTest, AFailedMigrationChangesNothing) {
  constexpr PgMigration kBroken[] = {{1, "CREATE TABLE a (n BIGINT)"}, {2, "SELECT nonsense"}};
  std::string message;
  EXPECT_FALSE(migrate(db, "test", kBroken, &message));
  EXPECT_NE(message.find("version 2"), std::string::npos) << message;
  EXPECT_EQ(db.query("SELECT to_regclass('a') IS NULL")->boolean(0, 0), true);
}

// ---- Restarts -------------------------------------------------------------------------------

// Calls `f` until it succeeds, for at most ~10 s; how many calls failed first.
template <class F>
int failures_before_success(F&& f) {
  for (int failed = 0; failed < 100; ++failed) {
    if (f()) return failed;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ADD_FAILURE() << "never succeeded";
  return -1;
}

TEST(PostgresRestart, TheConnectionComesBackAfterPostgresqlRestarts) {
  testing::PostgresServer server;
  const std::string url = testing::fresh_postgres_url(server.url());
  Postgres db = connect_to(url);
  ASSERT_TRUE(db.exec("CREATE TABLE t (n BIGINT)"));
  ASSERT_TRUE(db.execute("INSERT INTO t VALUES ($1)", {std::int64_t{1}}));
  server.restart();
  const int failed = failures_before_success(
      [&] { return db.execute("INSERT INTO t VALUES ($1)", {std::int64_t{2}}).has_value(); });
  EXPECT_LE(failed, 1) << "only the call that found the connection dead fails";
  EXPECT_EQ(db.query("SELECT count(*) FROM t")->int64(0, 0), 2);
}

TEST(PostgresRestart, ATransactionCutByARestartFailsAndTheNextOneWorks) {
  testing::PostgresServer server;
  const std::string url = testing::fresh_postgres_url(server.url());
  Postgres db = connect_to(url);
  ASSERT_TRUE(db.exec("CREATE TABLE t (n BIGINT)"));
  {
    auto tx = db.begin();
    ASSERT_TRUE(tx);
    ASSERT_TRUE(db.execute("INSERT INTO t VALUES (1)"));
    server.restart();
    EXPECT_FALSE(db.execute("INSERT INTO t VALUES (2)"));
    EXPECT_FALSE(db.execute("INSERT INTO t VALUES (3)")) << "never outside its transaction";
    EXPECT_FALSE(tx->commit());
  }
  failures_before_success([&] {
    auto tx = db.begin();
    return tx && db.execute("INSERT INTO t VALUES (4)") && tx->commit();
  });
  auto rows = db.query("SELECT string_agg(n::text, ',') FROM t");
  ASSERT_TRUE(rows);
  EXPECT_EQ(rows->text(0, 0), "4");
}

TEST(PostgresRestart, APipelineCutByARestartFailsAsAWhole) {
  testing::PostgresServer server;
  Postgres db = connect_to(testing::fresh_postgres_url(server.url()));
  ASSERT_TRUE(db.exec("CREATE TABLE t (n BIGINT)"));
  server.stop();
  const std::vector<PgCall> calls{{"INSERT INTO t VALUES ($1)", {std::int64_t{1}}},
                                  {"INSERT INTO t VALUES ($1)", {std::int64_t{2}}}};
  EXPECT_EQ(db.pipeline(calls).error(), Error::store_unavailable);
  EXPECT_EQ(db.query("SELECT 1").error(), Error::store_unavailable) << "still down";
  server.start();
  failures_before_success([&] { return db.pipeline(calls).has_value(); });
  EXPECT_EQ(db.query("SELECT count(*) FROM t")->int64(0, 0), 2);
}

}  // namespace
}  // namespace dynaseal::store
