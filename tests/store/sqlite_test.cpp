#include "store/sqlite.hpp"

#include <sys/stat.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "store/sqlite_checkpointer.hpp"
#include "test_support.hpp"

namespace dynaseal::store {
namespace {

constexpr Migration kTwoSteps[] = {
    {1, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);"},
    {2, "ALTER TABLE t ADD COLUMN score INTEGER NOT NULL DEFAULT 0;"},
};

std::int64_t user_version(Sqlite& db) {
  Statement& s = db.statement("PRAGMA user_version");
  EXPECT_TRUE(s.step().value());
  const std::int64_t v = s.int64(0);
  s.reset();
  return v;
}

TEST(Sqlite, CreatesThePrivateFileInWalMode) {
  testing::TempDir dir;
  const auto path = dir.path() / "x.db";
  auto db = Sqlite::open(path);
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec("CREATE TABLE t (a INTEGER)"));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  Statement& mode = db->statement("PRAGMA journal_mode");
  ASSERT_TRUE(mode.step().value());
  EXPECT_EQ(mode.text(0), "wal");
  mode.reset();
}

TEST(Sqlite, BindsAndReadsEveryType) {
  auto db = Sqlite::open(":memory:");
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec("CREATE TABLE t (i INTEGER, r REAL, s TEXT, n TEXT)"));
  std::optional<std::string> none;
  ASSERT_TRUE(db->statement("INSERT INTO t VALUES (?1, ?2, ?3, ?4)")
                  .bind(1, std::int64_t{1} << 62)
                  .bind(2, 0.5)
                  .bind(3, std::string_view("a\0b", 3))
                  .bind(4, none)
                  .run());
  Statement& s = db->statement("SELECT i, r, s, n FROM t");
  ASSERT_TRUE(s.step().value());
  EXPECT_EQ(s.int64(0), std::int64_t{1} << 62);
  EXPECT_EQ(s.real(1), 0.5);
  EXPECT_EQ(s.text(2), std::string_view("a\0b", 3));
  EXPECT_TRUE(s.is_null(3));
  EXPECT_FALSE(s.step().value());
}

TEST(Sqlite, ReportsAUniqueViolationAsConflict) {
  auto db = Sqlite::open(":memory:");
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec("CREATE TABLE t (k TEXT PRIMARY KEY)"));
  Statement& insert = db->statement("INSERT INTO t VALUES (?1)");
  ASSERT_TRUE(insert.bind(1, "a").run());
  EXPECT_EQ(insert.bind(1, "a").run().error(), Error::conflict);
  EXPECT_TRUE(insert.bind(1, "b").run()) << "the cached statement is usable after an error";
}

TEST(Sqlite, RollsBackATransactionThatWasNotCommitted) {
  auto db = Sqlite::open(":memory:");
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec("CREATE TABLE t (a INTEGER)"));
  {
    auto tx = db->begin();
    ASSERT_TRUE(tx);
    ASSERT_TRUE(db->exec("INSERT INTO t VALUES (1)"));
  }
  {
    auto tx = db->begin();
    ASSERT_TRUE(tx);
    ASSERT_TRUE(db->exec("INSERT INTO t VALUES (2)"));
    ASSERT_TRUE(tx->commit());
  }
  Statement& s = db->statement("SELECT group_concat(a) FROM t");
  ASSERT_TRUE(s.step().value());
  EXPECT_EQ(s.text(0), "2");
  s.reset();
}

TEST(Sqlite, MigratesStepByStepAndOnlyOnce) {
  testing::TempDir dir;
  const auto path = dir.path() / "m.db";
  {
    auto db = Sqlite::open(path);
    ASSERT_TRUE(db);
    ASSERT_TRUE(migrate(*db, std::span(kTwoSteps).first(1), nullptr));
    EXPECT_EQ(user_version(*db), 1);
    ASSERT_TRUE(db->exec("INSERT INTO t (name) VALUES ('kept')"));
  }
  auto db = Sqlite::open(path);
  ASSERT_TRUE(db);
  ASSERT_TRUE(migrate(*db, kTwoSteps, nullptr));
  ASSERT_TRUE(migrate(*db, kTwoSteps, nullptr)) << "re-running is a no-op";
  EXPECT_EQ(user_version(*db), 2);
  Statement& s = db->statement("SELECT name, score FROM t");
  ASSERT_TRUE(s.step().value());
  EXPECT_EQ(s.text(0), "kept");
  EXPECT_EQ(s.int64(1), 0);
  s.reset();
}

TEST(Sqlite, RefusesASchemaNewerThanItKnows) {
  auto db = Sqlite::open(":memory:");
  ASSERT_TRUE(db);
  ASSERT_TRUE(migrate(*db, kTwoSteps, nullptr));
  std::string message;
  EXPECT_EQ(migrate(*db, std::span(kTwoSteps).first(1), &message).error(),
            Error::store_unavailable);
  EXPECT_NE(message.find("newer"), std::string::npos) << message;
}

TEST(Sqlite, LeavesNothingOfAFailedMigration) {
  auto db = Sqlite::open(":memory:");
  ASSERT_TRUE(db);
  constexpr Migration broken[] = {
      {1, "CREATE TABLE a (x INTEGER); CREATE TABLE b (y INTEGER); THIS IS NOT SQL;"}};
  std::string message;
  EXPECT_FALSE(migrate(*db, broken, &message));
  EXPECT_NE(message.find("version 1"), std::string::npos) << message;
  EXPECT_EQ(user_version(*db), 0);
  EXPECT_TRUE(db->exec("CREATE TABLE a (x INTEGER)")) << "table a was rolled back";
}

TEST(Sqlite, ReadsSqliteUrls) {
  EXPECT_EQ(sqlite_path("sqlite:x.db", "/etc/d"), std::filesystem::path("/etc/d/x.db"));
  EXPECT_EQ(sqlite_path("sqlite:/var/x.db", "/etc/d"), std::filesystem::path("/var/x.db"));
  EXPECT_EQ(sqlite_path("sqlite::memory:", "/etc/d"), std::filesystem::path(":memory:"));
  EXPECT_FALSE(sqlite_path("sqlite:", "/etc"));
  EXPECT_FALSE(sqlite_path("postgresql://db/x", "/etc"));
}

// A database file with a table t (id, body) for a checkpointer to watch.
class SqliteCheckpointerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = Sqlite::open(path);
    ASSERT_TRUE(opened);
    db = std::move(*opened);
    ASSERT_TRUE(db->exec("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"));
  }

  testing::TempDir dir;
  const std::filesystem::path path = dir.path() / "c.db";
  std::optional<Sqlite> db;
};

// One transaction inserting a row of most of a 4 KiB page into t (id, body): at least one new
// page in the WAL per call.
void commit_a_page_row(Sqlite& db) {
  static const std::string body(3000, 'x');
  auto tx = db.begin();
  ASSERT_TRUE(tx);
  ASSERT_TRUE(db.statement("INSERT INTO t (body) VALUES (?1)").bind(1, body).run());
  ASSERT_TRUE(tx->commit());
}

TEST_F(SqliteCheckpointerTest, CheckpointsOnItsOwnThreadOnceTheWalPassesItsSize) {
  SqliteCheckpointer checkpointer(*db, path, /*wal_pages=*/8);
  const auto db_size = [&] { return std::filesystem::file_size(path); };
  const auto before = db_size();
  EXPECT_EQ(checkpointer.completed(), 0);
  for (int i = 0; i < 40; ++i) commit_a_page_row(*db);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (checkpointer.completed() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GE(checkpointer.completed(), 1) << "no checkpoint on the background thread";
  EXPECT_GE(db_size(), before + 4 * 4096) << "the WAL's pages reached the database file";
  // The connection's own automatic checkpoint is off while the checkpointer lives.
  auto autockpt = db->prepare("PRAGMA wal_autocheckpoint");
  ASSERT_TRUE(autockpt);
  ASSERT_TRUE(*autockpt->step());
  EXPECT_EQ(autockpt->int64(0), 0);
}

// A reader holding its snapshot keeps the WAL from restarting, as steady writes do in the
// server: the WAL stays past `wal_pages`, and still the thread is woken once per `wal_pages` new
// pages, not after every commit.
TEST_F(SqliteCheckpointerTest, IsWokenOncePerWalPagesNewPagesNotAfterEveryCommit) {
  // Below the safety valve (16 × wal_pages), where the committing connection checkpoints itself.
  constexpr long kWalPages = 16;
  SqliteCheckpointer checkpointer(*db, path, kWalPages);
  commit_a_page_row(*db);
  auto reader = Sqlite::open(path, {.create = false});
  ASSERT_TRUE(reader);
  ASSERT_TRUE(reader->exec("BEGIN; SELECT count(*) FROM t;"));
  const auto wal_frames = [&] {
    constexpr std::uintmax_t kHeader = 32, kFrame = 24 + 4096;
    return static_cast<long>((std::filesystem::file_size(path.string() + "-wal") - kHeader) /
                             kFrame);
  };
  const long before = wal_frames();
  constexpr int kCommits = 60;
  for (int i = 0; i < kCommits; ++i) commit_a_page_row(*db);
  const long frames = wal_frames();
  ASSERT_GE(frames - before, kCommits) << "every commit added at least one page";
  ASSERT_LT(frames, 16 * kWalPages);
  EXPECT_GE(checkpointer.wakeups(), frames / kWalPages - 1);
  EXPECT_LE(checkpointer.wakeups(), frames / kWalPages)
      << "woken after commits that added few pages";
  ASSERT_TRUE(reader->exec("COMMIT"));
}

// Steady writes, as the server's DB thread makes them (a transaction of a few pages every
// half millisecond): commits land during every checkpoint, and still the WAL is wholly copied
// often enough to restart, so it never reaches the safety valve, whose checkpoint would run on
// the committing thread. Without the FULL catch-up pass the WAL restarts only when a pass
// happens to see no commit, and reaches the valve.
TEST_F(SqliteCheckpointerTest, CatchesUpSoTheWalRestartsUnderSteadyWrites) {
  constexpr int kWalPages = 64;  // the valve: 16 × 64 = 1,024 pages
  SqliteCheckpointer checkpointer(*db, path, kWalPages);
  const std::string body(3000, 'x');
  constexpr int kCommits = 1000, kRowsPerCommit = 4;  // 4,000 pages: the valve's size 4 times
  for (int i = 0; i < kCommits; ++i) {
    auto tx = db->begin();
    ASSERT_TRUE(tx);
    for (int r = 0; r < kRowsPerCommit; ++r) {
      ASSERT_TRUE(db->statement("INSERT INTO t (body) VALUES (?1)").bind(1, body).run());
    }
    ASSERT_TRUE(tx->commit());
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  EXPECT_EQ(checkpointer.valve_checkpoints(), 0) << "the committing thread checkpointed";
  EXPECT_GE(checkpointer.restarts(), 4) << "the WAL did not start over";
  constexpr std::uintmax_t kValveBytes = 16 * kWalPages * (24 + 4096);
  EXPECT_LT(std::filesystem::file_size(path.string() + "-wal"), kValveBytes);
}

}  // namespace
}  // namespace dynaseal::store
