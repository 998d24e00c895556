#include "server/outbox.hpp"

#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <stdexcept>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "store/sqlite_server_store.hpp"
#include "test_support.hpp"

namespace dynaseal::server {
namespace {

using std::chrono::milliseconds;

TEST(RetryDelay, DoublesFromTheBaseUpToTheCapWithHalfOfItJittered) {
  OutboxOptions o;
  o.retry_base = milliseconds(1000);
  o.retry_max_delay = milliseconds(60'000);
  EXPECT_EQ(retry_delay(o, 1, 0.0), milliseconds(500));
  EXPECT_EQ(retry_delay(o, 1, 0.999999), milliseconds(999));
  EXPECT_EQ(retry_delay(o, 3, 0.0), milliseconds(2000));
  EXPECT_EQ(retry_delay(o, 7, 0.0), milliseconds(30'000));
  EXPECT_EQ(retry_delay(o, 8, 0.0), milliseconds(30'000)) << "capped at 60 s, half fixed";
  EXPECT_EQ(retry_delay(o, 1000, 0.5), milliseconds(45'000)) << "no overflow for huge attempts";
}

TEST(RetryDelay, ReachesTheDefaultMaxAgeAfterAboutThirtyAttempts) {
  const OutboxOptions o;
  std::int64_t total = 0;
  int attempts = 0;
  while (milliseconds(total) < o.max_age) total += retry_delay(o, ++attempts, 0.5).count();
  // 1 s doubling to the 6 h cap (about 15 attempts, 7 h), then every 3-6 h: about 30.
  EXPECT_GE(attempts, 25);
  EXPECT_LE(attempts, 35);
}

TEST(Outbox, DescribesAnInterruptedRequestWithoutUsage) {
  UsageRecord r{.event_id = "evt-aaaaaaaaaaaaaaaa",
                .use = 2,
                .server = "llm-1",
                .iss = "acme",
                .sub = "u",
                .model = "demo",
                .stream = true,
                .status = UsageStatus::ok,
                .usage = {5, 7},
                .started_at_ms = 1'800'000'000'000,
                .finished_at_ms = 1'800'000'001'000,
                .request_sha256 = std::string(64, 'a'),
                .response_sha256 = std::string(64, 'b')};
  const auto event = boost::json::parse(interrupted_event_json(r)).as_object();
  EXPECT_EQ(event.at("status").as_string(), "interrupted");
  EXPECT_EQ(event.at("use").as_int64(), 2);
  EXPECT_EQ(event.at("usage").at("total_tokens").as_int64(), 0);
  EXPECT_EQ(event.at("finished_at"), event.at("started_at"));
  EXPECT_EQ(event.at("request_sha256").as_string(), std::string(64, 'a'));
  EXPECT_EQ(event.at("response_sha256").as_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// Counts transactions, to see writes grouped; refuses them while `refusing` is set.
class CountingStore final : public store::ServerStore {
 public:
  explicit CountingStore(std::unique_ptr<store::ServerStore> inner,
                         milliseconds delay = milliseconds(5))
      : inner_(std::move(inner)), delay_(delay) {}
  std::atomic<int> transactions{0};
  std::atomic<std::size_t> largest{0};
  std::atomic<bool> refusing{false};
  std::atomic<int> due_queries{0};

  Result<std::vector<store::OutboxWriteResult>> apply(
      const std::vector<store::OutboxWrite>& writes) override {
    transactions++;
    if (writes.size() > largest) largest = writes.size();
    std::this_thread::sleep_for(delay_);  // a slow disk: writes pile up meanwhile
    if (refusing) return Unexpected(Error::store_unavailable);
    return inner_->apply(writes);
  }
  Result<std::vector<store::OutboxEvent>> claim_due(std::string_view iss, std::int64_t now,
                                                    std::size_t limit,
                                                    std::int64_t lease) override {
    return inner_->claim_due(iss, now, limit, lease);
  }
  Result<std::int64_t> recover(std::string_view owner, std::int64_t now) override {
    return inner_->recover(owner, now);
  }
  Result<void> heartbeat(std::string_view owner, std::int64_t now) override {
    return inner_->heartbeat(owner, now);
  }
  Result<std::int64_t> recover_stale(std::int64_t stale_before, std::int64_t now) override {
    return inner_->recover_stale(stale_before, now);
  }
  Result<std::int64_t> expire(std::int64_t a, std::int64_t b, std::int64_t c) override {
    return inner_->expire(a, b, c);
  }
  Result<std::optional<std::int64_t>> next_due_ms(std::string_view iss) override {
    due_queries++;
    return inner_->next_due_ms(iss);
  }
  Result<store::OutboxStats> stats() override { return inner_->stats(); }
  Result<std::vector<store::DeadLetter>> dead_letters(std::size_t n) override {
    return inner_->dead_letters(n);
  }
  Result<std::int64_t> replay(std::string_view i, std::string_view w, std::int64_t n) override {
    return inner_->replay(i, w, n);
  }
  Result<std::vector<store::UsedKey>> used_keys(std::int64_t since) override {
    return inner_->used_keys(since);
  }
  Result<std::vector<store::RegisteredBackend>> backends() override { return inner_->backends(); }
  Result<void> put_backend(const store::RegisteredBackend& b) override {
    return inner_->put_backend(b);
  }
  Result<void> delete_backend(std::string_view id) override { return inner_->delete_backend(id); }

 private:
  std::unique_ptr<store::ServerStore> inner_;
  milliseconds delay_;
};

// Outside the coroutine: GCC 12 miscompiles braced aggregates of strings inside coroutines.
store::OutboxWrite open_write(int i) {
  return store::outbox::Open{.key = {"acme", "jti-" + std::to_string(i), 1},
                             .owner = "llm-1",
                             .interrupted_body = "{}",
                             .now_ms = 1};
}

// A coroutine with its state in parameters (a capturing lambda coroutine would outlive its
// captures).
asio::awaitable<void> open_one(DbWorker& db, int i, std::atomic<int>& ok) {
  auto r = co_await db.write_durable(open_write(i));
  if (!r) ok++;
}

TEST(DbWorker, GroupsConcurrentWritesIntoFewTransactions) {
  testing::TempDir dir;
  std::string message;
  auto inner = store::SqliteServerStore::open(dir.path() / "s.db", &message);
  ASSERT_TRUE(inner) << message;
  auto counting = std::make_unique<CountingStore>(std::move(inner));
  CountingStore* counter = counting.get();
  DbWorker db(std::move(counting));

  constexpr int kWrites = 400;
  asio::io_context io;
  std::atomic<int> ok{0};
  for (int i = 0; i < kWrites; ++i) asio::co_spawn(io, open_one(db, i, ok), asio::detached);
  io.run();
  EXPECT_EQ(ok, kWrites);
  EXPECT_LT(counter->transactions, kWrites / 4) << "writes should share transactions";
  EXPECT_GT(counter->largest, 1u);
  auto stats =
      db.query<Result<store::OutboxStats>>([](store::ServerStore& s) { return s.stats(); });
  asio::io_context io2;
  auto f = asio::co_spawn(io2, std::move(stats), asio::use_future);
  io2.run();
  auto s = f.get();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->open, kWrites);
}

UsageRecord probe_record(int i) {
  return UsageRecord{.event_id = "probe-" + std::to_string(i), .use = 1, .iss = "acme"};
}

// A counted SQLite outbox database in `dir`, its writes committed at once.
std::unique_ptr<CountingStore> counted_sqlite(const testing::TempDir& dir) {
  std::string message;
  auto inner = store::SqliteServerStore::open(dir.path() / "s.db", &message);
  if (!inner) throw std::runtime_error("cannot open the test database: " + message);
  return std::make_unique<CountingStore>(std::move(inner), milliseconds(0));
}

// Opens probe_record(i) through `outbox`, on `io`, and waits for the answer.
Result<void> open_probe(Outbox& outbox, asio::io_context& io, int i) {
  const UsageRecord r = probe_record(i);
  auto f = asio::co_spawn(io, outbox.open(r, interrupted_event_json(r)), asio::use_future);
  io.restart();
  io.run();
  return f.get();
}

TEST(Outbox, AdmitsOnlyOneProbeEveryIntervalWhileTheDatabaseRefusesWrites) {
  testing::TempDir dir;
  auto counting = counted_sqlite(dir);
  CountingStore* store = counting.get();
  DbWorker db(std::move(counting));
  BackendRegistry registry;
  Metrics metrics({"demo"});
  Outbox outbox(db, registry, SigningKey::generate(), "llm-1", OutboxOptions{}, metrics);
  asio::io_context io;
  auto open = [&](int i) { return open_probe(outbox, io, i); };

  EXPECT_TRUE(outbox.admit());
  ASSERT_TRUE(open(1));
  EXPECT_TRUE(outbox.admit()) << "a healthy database admits everyone";
  EXPECT_TRUE(outbox.admit());

  store->refusing = true;
  EXPECT_EQ(open(2).error(), Error::store_unavailable);
  EXPECT_FALSE(outbox.admit()) << "the next probe is an interval away";
  std::this_thread::sleep_for(Outbox::kProbeEvery + milliseconds(20));
  EXPECT_TRUE(outbox.admit()) << "one probe";
  EXPECT_FALSE(outbox.admit()) << "and only one";
  EXPECT_EQ(open(3).error(), Error::store_unavailable);  // the probe finds it still down

  store->refusing = false;
  std::this_thread::sleep_for(Outbox::kProbeEvery + milliseconds(20));
  ASSERT_TRUE(outbox.admit());
  ASSERT_TRUE(open(4)) << "the probe finds it back";
  EXPECT_TRUE(outbox.admit());
  EXPECT_TRUE(outbox.admit());
}

TEST(DbWorker, ARetriedWriteReportsOnceItIsCommittedOrAtStopIfItNeverIs) {
  testing::TempDir dir;
  auto counting = counted_sqlite(dir);
  CountingStore* store = counting.get();
  DbWorker db(std::move(counting));
  std::atomic<int> committed{0}, refused{0};
  auto done = [&](store::OutboxWriteResult r) { ++(r ? refused : committed); };

  store->refusing = true;
  db.write_retried(open_write(1), done);
  std::this_thread::sleep_for(milliseconds(500));  // two retries at least
  EXPECT_GE(store->transactions, 2);
  EXPECT_EQ(committed + refused, 0) << "not reported while it is being retried";
  EXPECT_TRUE(db.failing());
  store->refusing = false;
  for (int i = 0; i < 100 && committed == 0; ++i) std::this_thread::sleep_for(milliseconds(10));
  EXPECT_EQ(committed, 1);
  EXPECT_FALSE(db.failing());

  store->refusing = true;
  db.write_retried(open_write(2), done);
  std::this_thread::sleep_for(milliseconds(50));
  db.stop();
  EXPECT_EQ(committed, 1);
  EXPECT_EQ(refused, 1) << "told at stop that it never reached the database";
}

store::outbox::Open held_open(int i) { return std::get<store::outbox::Open>(open_write(i)); }

store::OutboxWrite finalize_write(int i) {
  return store::outbox::Finalize{
      .key = {"acme", "jti-" + std::to_string(i), 1}, .body = "final", .now_ms = 2};
}

// The outbox's stats as the worker sees them now (a query waits for queued writes, not for
// held ones).
store::OutboxStats stats_now(DbWorker& db) {
  std::promise<Result<store::OutboxStats>> p;
  db.run([&p](store::ServerStore& s) { p.set_value(s.stats()); });
  auto stats = p.get_future().get();
  EXPECT_TRUE(stats);
  return stats ? *stats : store::OutboxStats{};
}

TEST(DbWorker, AHeldOpenWaitsForItsFinalizeAndGoesAloneWhenItComesTooLate) {
  testing::TempDir dir;
  auto counting = counted_sqlite(dir);
  CountingStore* store = counting.get();
  DbWorker db(std::move(counting), std::chrono::microseconds(0), milliseconds(300));
  std::atomic<int> committed{0};
  auto done = [&](store::OutboxWriteResult r) { committed += r ? 0 : 1; };

  db.write_held(held_open(1), done);
  db.write_held(held_open(2), done);
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(committed, 0) << "held";
  EXPECT_EQ(stats_now(db).open, 0);
  const int before = store->transactions;
  db.write_retried(finalize_write(1), done);
  for (int i = 0; i < 100 && committed < 2; ++i) std::this_thread::sleep_for(milliseconds(5));
  EXPECT_EQ(committed, 2) << "the Open with its Finalize";
  EXPECT_EQ(store->transactions - before, 1) << "in one transaction";
  auto stats = stats_now(db);
  EXPECT_EQ(stats.pending, 1) << "inserted finished";
  EXPECT_EQ(stats.open, 0) << "the other still held";

  for (int i = 0; i < 100 && committed < 3; ++i) std::this_thread::sleep_for(milliseconds(10));
  EXPECT_EQ(committed, 3) << "past its hold, the other Open goes alone";
  EXPECT_EQ(stats_now(db).open, 1);
  db.write_retried(finalize_write(2), done);
  for (int i = 0; i < 100 && committed < 4; ++i) std::this_thread::sleep_for(milliseconds(5));
  EXPECT_EQ(stats_now(db).pending, 2) << "and its late Finalize updates it";

  db.write_held(held_open(3), done);
  db.stop();
  EXPECT_EQ(committed, 5) << "stop commits what is held";
}

// Waits for `pred` on the outbox database's stats, for up to 3 s.
bool wait_stats(DbWorker& db, const std::function<bool(const store::OutboxStats&)>& pred) {
  for (int i = 0; i < 300; ++i) {
    std::promise<Result<store::OutboxStats>> p;
    db.run([&p](store::ServerStore& s) { p.set_value(s.stats()); });
    auto stats = p.get_future().get();
    if (stats && pred(*stats)) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return false;
}

TEST(OutboxWithAnOpenLog, OpenIsDurableInTheLogWhileTheDatabaseRefusesWrites) {
  testing::TempDir dir;
  auto counting = counted_sqlite(dir);
  CountingStore* store = counting.get();
  DbWorker db(std::move(counting));
  BackendRegistry registry;
  Metrics metrics({"demo"});
  const auto log_dir = dir.path() / "s.db-openlog";
  Outbox outbox(db, registry, SigningKey::generate(), "llm-1", OutboxOptions{}, metrics,
                OpenLog::create(log_dir));
  asio::io_context io;
  store->refusing = true;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(open_probe(outbox, io, i)) << "in the log: the request may go on";
  }
  auto logged = OpenLog::read(log_dir);
  ASSERT_TRUE(logged);
  EXPECT_EQ(logged->writes.size(), 3u);
  outbox.finish(probe_record(0));
  logged = OpenLog::read(log_dir);
  ASSERT_TRUE(logged);
  EXPECT_EQ(logged->writes.size(), 4u) << "the Finalize too";
  store->refusing = false;
  EXPECT_TRUE(wait_stats(db, [](const auto& s) { return s.open == 2 && s.pending == 1; }))
      << "the Opens, then the Finalize, reach the database once it takes writes";
}

TEST(Outbox, EventsOfABackendWithoutCallbackUrlDoNotKeepTheDispatcherAwake) {
  testing::TempDir dir;
  auto counting = counted_sqlite(dir);
  CountingStore* store = counting.get();
  DbWorker db(std::move(counting));
  BackendRegistry registry;
  ASSERT_TRUE(registry.add(Backend{"acme", {}, ""}));  // no callback_url: its events wait
  Metrics metrics({"demo"});
  OutboxOptions options;
  options.poll = milliseconds(200);
  Outbox outbox(db, registry, SigningKey::generate(), "llm-1", options, metrics);
  outbox.start(false);
  asio::io_context io;
  ASSERT_TRUE(open_probe(outbox, io, 1));
  outbox.finish(probe_record(1));  // pending, due now, and never deliverable
  std::this_thread::sleep_for(milliseconds(500));
  EXPECT_EQ(store->due_queries, 0) << "nothing to deliver to: it sleeps for poll_ms";
  outbox.stop();
}

TEST(OutboxWithAnOpenLog, RefusesBeforeTheUseWhileTheLogCannotBeWritten) {
  testing::TempDir dir;
  std::string message;
  auto inner = store::SqliteServerStore::open(dir.path() / "s.db", &message);
  ASSERT_TRUE(inner) << message;
  DbWorker db(std::move(inner));
  BackendRegistry registry;
  Metrics metrics({"demo"});
  const auto log_dir = dir.path() / "s.db-openlog";
  // One record per segment: every append needs a new file.
  Outbox outbox(db, registry, SigningKey::generate(), "llm-1", OutboxOptions{}, metrics,
                OpenLog::create(log_dir, {.lanes = 1, .segment_bytes = 1}));
  asio::io_context io;
  auto open = [&](int i) { return open_probe(outbox, io, i); };
  ASSERT_TRUE(open(1));
  EXPECT_TRUE(outbox.admit());
  std::filesystem::remove_all(log_dir);
  EXPECT_EQ(open(2).error(), Error::store_unavailable);
  EXPECT_FALSE(outbox.admit()) << "no use is taken that could not be recorded";
  std::this_thread::sleep_for(Outbox::kProbeEvery + milliseconds(20));
  EXPECT_TRUE(outbox.admit()) << "one probe";
  EXPECT_FALSE(outbox.admit());
  std::filesystem::create_directories(log_dir);
  ASSERT_TRUE(open(3)) << "the probe finds the log writable again";
  EXPECT_TRUE(outbox.admit());
}

TEST(OutboxWithAnOpenLog, TheNextStartReportsWhatOnlyTheLogHeldAsInterrupted) {
  testing::TempDir dir;
  std::string message;
  auto inner = store::SqliteServerStore::open(dir.path() / "s.db", &message);
  ASSERT_TRUE(inner) << message;
  // Event 0 reached the database and was finished before the crash; 1 and 2 only the log,
  // and 2 was answered: its Finalize is in the log too.
  ASSERT_TRUE(inner->apply({open_write(0), store::outbox::Finalize{.key = {"acme", "jti-0", 1},
                                                                   .body = R"({"status":"ok"})",
                                                                   .now_ms = 2}}));
  const auto log_dir = dir.path() / "s.db-openlog";
  std::filesystem::create_directories(log_dir);
  std::string frames;
  for (int i = 0; i < 3; ++i) {
    const UsageRecord r = probe_record(i);
    OpenLog::encode(store::outbox::Open{.key = {"acme", "jti-" + std::to_string(i), 1},
                                        .owner = "an-old-name",
                                        .interrupted_body = interrupted_event_json(r),
                                        .now_ms = 3},
                    frames);
  }
  OpenLog::encode(
      store::outbox::Finalize{
          .key = {"acme", "jti-2", 1}, .body = R"({"status":"ok"})", .now_ms = 4},
      frames);
  {
    std::ofstream out(log_dir / "1-0.log", std::ios::binary);
    out << frames << "torn";
  }
  DbWorker db(std::move(inner));
  BackendRegistry registry;
  Metrics metrics({"demo"});
  Outbox outbox(db, registry, SigningKey::generate(), "llm-1", OutboxOptions{}, metrics,
                OpenLog::create(log_dir));
  EXPECT_TRUE(wait_stats(db, [](const auto& s) { return s.open == 0 && s.pending == 3; }))
      << "two events from the log, the finished one not duplicated";
  EXPECT_FALSE(std::filesystem::exists(log_dir / "1-0.log")) << "replayed, then removed";
  auto bodies = [&] {
    std::promise<Result<std::vector<store::OutboxEvent>>> p;
    db.run([&p](store::ServerStore& s) { p.set_value(s.claim_due("acme", 1LL << 50, 10, 1000)); });
    return p.get_future().get();
  }();
  ASSERT_TRUE(bodies);
  ASSERT_EQ(bodies->size(), 3u);
  std::map<std::string, std::string> status;
  for (const auto& e : *bodies) {
    status[e.webhook_id] = boost::json::parse(e.body).at("status").as_string().c_str();
  }
  EXPECT_EQ(status["jti-0.1"], "ok");
  EXPECT_EQ(status["jti-1.1"], "interrupted");
  EXPECT_EQ(status["jti-2.1"], "ok") << "answered before the crash: its real body";
}

}  // namespace
}  // namespace dynaseal::server
