// Group commit of usage callbacks: BackendStore::record_events (a batch in one transaction, with
// a result per event) and the UsageWriter that gathers the events of concurrent callbacks into
// one transaction.

#include "backend/usage_writer.hpp"

#include <chrono>
#include <future>
#include <mutex>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "backend/sqlite_store.hpp"
#include "backend_fixture.hpp"
#include "store/sqlite.hpp"

namespace dynaseal::backend {
namespace {

using test::EventSpec;
using test::kNow;

EventSpec event(int use, std::string sub = "bob") {
  EventSpec e;
  e.use = use;
  e.sub = std::move(sub);
  return e;
}

NewEvent new_event(const EventSpec& e, std::int64_t cost = 1000) {
  auto parsed = parse_usage_event(e.body());
  EXPECT_TRUE(parsed);
  return {.event = *parsed, .raw_body = e.body(), .received_at = kNow, .cost = [cost](const User&) {
            return cost;
          }};
}

class Batch : public ::testing::Test {
 protected:
  Batch() : store(open()) {
    EXPECT_TRUE(store->add_user(
        {.name = "bob", .plan = "pro", .token_sha256 = "h", .credit_micros = 1'000'000, .now = 0}));
  }

  std::unique_ptr<BackendStore> open() const {
    auto s = open_sqlite_store(path);
    if (!s) throw std::runtime_error("cannot open the store");
    return std::move(*s);
  }
  // A plain connection for what the interface does not show (ledger rows, triggers).
  std::int64_t count(const std::string& sql) const {
    auto db = store::Sqlite::open(path);
    auto s = db->prepare(sql);
    EXPECT_TRUE(s && *s->step());
    return s->int64(0);
  }
  void exec(const std::string& sql) const { ASSERT_TRUE(store::Sqlite::open(path)->exec(sql)); }
  std::int64_t balance() const { return (*store->find_user("bob"))->credit_micros; }
  std::int64_t usage_rows() const {
    return count("SELECT COUNT(*) FROM ledger WHERE reason = 'usage'");
  }

  testing::TempDir dir;
  std::filesystem::path path = dir.path() / "backend.db";
  std::unique_ptr<BackendStore> store;
};

TEST_F(Batch, RecordsSeveralEventsInOneTransactionWithAResultEach) {
  const std::vector<NewEvent> batch{new_event(event(1)), new_event(event(2)),
                                    new_event(event(1)),  // a duplicate within the batch
                                    new_event(event(3, "nobody"))};
  auto results = store->record_events(batch);
  ASSERT_TRUE(results);
  ASSERT_EQ(results->size(), 4u);
  for (const auto& r : *results) ASSERT_TRUE(r);
  EXPECT_FALSE((*results)[0]->duplicate);
  EXPECT_EQ((*results)[0]->user, "bob");
  EXPECT_EQ((*results)[0]->cost_micros, 1000);
  EXPECT_FALSE((*results)[1]->duplicate);
  EXPECT_TRUE((*results)[2]->duplicate);
  EXPECT_FALSE((*results)[3]->duplicate);
  EXPECT_FALSE((*results)[3]->user);  // stored, charged to nobody
  EXPECT_EQ(store->events({})->size(), 3u);
  EXPECT_EQ(balance(), 1'000'000 - 2 * 1000);  // the duplicate charged nothing
  EXPECT_EQ(usage_rows(), 2);
  EXPECT_EQ(count("SELECT tokens FROM daily_usage"), 2 * 30);
}

TEST_F(Batch, ADuplicateAcrossBatchesIsCountedOnce) {
  ASSERT_TRUE(store->record_events(std::vector{new_event(event(1)), new_event(event(2))}));
  auto again = store->record_events(std::vector{new_event(event(2)), new_event(event(3))});
  ASSERT_TRUE(again);
  EXPECT_TRUE((*again)[0]->duplicate);
  EXPECT_FALSE((*again)[1]->duplicate);
  EXPECT_EQ(store->events({})->size(), 3u);
  EXPECT_EQ(balance(), 1'000'000 - 3 * 1000);
  EXPECT_EQ(usage_rows(), 3);
  EXPECT_EQ(count("SELECT COUNT(*) FROM ledger WHERE webhook_id = 'AAAAAAAAAAAAAAAAAAAAAA.2'"), 1);
}

TEST_F(Batch, AnEventThatFailsHalfWayIsUndoneAloneAndTheOthersAreKept) {
  // The ledger row comes after the event's row and its daily usage: both must be undone.
  exec(
      "CREATE TRIGGER refuse BEFORE INSERT ON ledger WHEN NEW.webhook_id LIKE '%.2' "
      "BEGIN SELECT RAISE(ABORT, 'refused'); END");
  auto results = store->record_events(
      std::vector{new_event(event(1)), new_event(event(2)), new_event(event(3))});
  ASSERT_TRUE(results);
  ASSERT_TRUE((*results)[0]);
  ASSERT_FALSE((*results)[1]);
  EXPECT_EQ((*results)[1].error(), Error::store_unavailable);
  ASSERT_TRUE((*results)[2]);
  auto events = store->events({});
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].webhook_id, "AAAAAAAAAAAAAAAAAAAAAA.1");
  EXPECT_EQ((*events)[1].webhook_id, "AAAAAAAAAAAAAAAAAAAAAA.3");
  EXPECT_EQ(balance(), 1'000'000 - 2 * 1000);
  EXPECT_EQ(count("SELECT tokens FROM daily_usage"), 2 * 30);
  exec("DROP TRIGGER refuse");
  // Its retry is not a duplicate: nothing of it was kept.
  auto retried = store->record_events(std::vector{new_event(event(2))});
  ASSERT_TRUE(retried && (*retried)[0]);
  EXPECT_FALSE((*retried)[0]->duplicate);
  EXPECT_EQ(balance(), 1'000'000 - 3 * 1000);
}

// Collects the results of UsageWriter::record.
struct Results {
  std::mutex mutex;
  std::vector<std::pair<int, Result<Recorded>>> got;
  std::promise<void> all;
  std::size_t expected = 0;

  UsageWriter::Done done(int i) {
    return [this, i](Result<Recorded> r) {
      std::lock_guard lock(mutex);
      got.emplace_back(i, std::move(r));
      if (got.size() == expected) all.set_value();
    };
  }
  Result<Recorded>& of(int i) {
    for (auto& [n, r] : got) {
      if (n == i) return r;
    }
    throw std::runtime_error("no result");
  }
};

TEST_F(Batch, TheWriterCommitsWhatQueuedUpDuringATransactionInTheNextOne) {
  UsageWriter writer(open());
  Results results;
  results.expected = 5;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> entered;
  // The first event holds its transaction open (its cost runs inside it) until the others
  // are queued.
  NewEvent first = new_event(event(1));
  first.cost = [&entered, released](const User&) {
    entered.set_value();
    released.wait();
    return std::int64_t{1000};
  };
  writer.record(std::move(first), results.done(1));
  entered.get_future().wait();
  writer.record(new_event(event(2)), results.done(2));
  writer.record(new_event(event(3)), results.done(3));
  writer.record(new_event(event(2)), results.done(4));  // a duplicate in the same batch
  writer.record(new_event(event(1)), results.done(5));  // a duplicate of the first batch
  release.set_value();
  ASSERT_EQ(results.all.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  writer.stop();  // counts a transaction after its results are handed out
  EXPECT_EQ(writer.transactions(), 2u);
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(results.of(i)) << i;
  EXPECT_FALSE(results.of(1)->duplicate);
  EXPECT_FALSE(results.of(2)->duplicate);
  EXPECT_FALSE(results.of(3)->duplicate);
  EXPECT_TRUE(results.of(4)->duplicate);
  EXPECT_TRUE(results.of(5)->duplicate);
  EXPECT_EQ(store->events({})->size(), 3u);
  EXPECT_EQ(balance(), 1'000'000 - 3 * 1000);
  EXPECT_EQ(usage_rows(), 3);
}

// A store whose transactions all fail.
class FailingStore final : public BackendStore {
 public:
  Result<User> add_user(const NewUser&) override { return fail(); }
  Result<std::optional<User>> find_user_by_token(std::string_view) override { return fail(); }
  Result<std::optional<User>> find_user(std::string_view) override { return fail(); }
  Result<std::vector<UserSummary>> list_users(std::string_view) override { return fail(); }
  Result<std::int64_t> add_credit(std::string_view, std::int64_t, std::int64_t) override {
    return fail();
  }
  Result<KeyRecord> reserve_key(std::int64_t, std::string_view, std::int64_t, std::int64_t,
                                const MintDecision&) override {
    return fail();
  }
  Result<std::vector<Result<Recorded>>> record_events(std::span<const NewEvent> batch) override {
    batches.push_back(batch.size());
    return fail();
  }
  Result<std::vector<StoredEvent>> events(const EventQuery&) override { return fail(); }
  Result<void> pin_server(const PinnedServer&) override { return fail(); }
  Result<std::optional<PinnedServer>> pinned_server(std::string_view) override { return fail(); }
  Result<void> activate_signing_key(std::string_view, std::string_view, std::int64_t) override {
    return fail();
  }
  Result<std::vector<SigningKeyRecord>> signing_keys() override { return fail(); }
  Result<void> retire_signing_key(std::string_view, std::int64_t) override { return fail(); }

  std::vector<std::size_t> batches;  // read after the writer stopped

 private:
  static Unexpected fail() { return Unexpected(Error::store_unavailable); }
};

TEST(UsageWriter, AFailedTransactionFailsEveryEventInIt) {
  auto failing = std::make_unique<FailingStore>();
  FailingStore& store = *failing;
  UsageWriter writer(std::move(failing));
  Results results;
  results.expected = 3;
  for (int i = 1; i <= 3; ++i) writer.record(new_event(event(i)), results.done(i));
  ASSERT_EQ(results.all.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  writer.stop();
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(results.of(i).error(), Error::store_unavailable);
  std::size_t total = 0;
  for (std::size_t n : store.batches) total += n;
  EXPECT_EQ(total, 3u);
}

TEST_F(Batch, RecordDurableCompletesOnTheCallersExecutorAndRefusesAfterStop) {
  UsageWriter writer(open());
  boost::asio::io_context io;
  std::optional<Result<Recorded>> got;
  boost::asio::co_spawn(io, writer.record_durable(new_event(event(1))),
                        [&](std::exception_ptr e, Result<Recorded> r) {
                          if (e) std::rethrow_exception(e);
                          got = std::move(r);
                        });
  io.run();
  ASSERT_TRUE(got && *got);
  EXPECT_FALSE((*got)->duplicate);
  EXPECT_EQ(balance(), 1'000'000 - 1000);  // committed before the completion
  writer.stop();
  got.reset();
  io.restart();
  boost::asio::co_spawn(io, writer.record_durable(new_event(event(2))),
                        [&](std::exception_ptr e, Result<Recorded> r) {
                          if (e) std::rethrow_exception(e);
                          got = std::move(r);
                        });
  io.run();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->error(), Error::store_unavailable);
}

}  // namespace
}  // namespace dynaseal::backend
