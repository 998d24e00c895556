// The BackendStore contract, run against every implementation (SQLite and PostgreSQL), plus
// each schema's migrations and what only PostgreSQL has to prove (several processes at once).

#include "backend/store.hpp"

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "backend/money.hpp"
#include "backend/postgres_store.hpp"
#include "backend/sqlite_store.hpp"
#include "backend_fixture.hpp"
#include "store/postgres.hpp"
#include "support/postgres_schema.hpp"

namespace dynaseal::backend {
namespace {

using test::EventSpec;
using test::kNow;

// Where a test's database lives (a file in its directory, or a schema of its own), and how to
// open one more connection (store) on it; every implementation provides both.
struct Implementation {
  const char* name;
  std::function<std::string(const std::filesystem::path& dir)> locate;
  std::function<Result<std::unique_ptr<BackendStore>>(const std::string& location,
                                                      std::string* why)>
      open;
};

// Test names say which implementation, not the bytes of this struct.
void PrintTo(const Implementation& implementation, std::ostream* out) {
  *out << implementation.name;
}

const Implementation kSqlite{
    "sqlite", [](const std::filesystem::path& dir) { return (dir / "backend.db").string(); },
    [](const std::string& location, std::string* why) { return open_sqlite_store(location, why); }};
const Implementation kPostgres{
    "postgresql", [](const std::filesystem::path&) { return testing::fresh_postgres_url(); },
    [](const std::string& location, std::string* why) {
      return open_postgres_store(location, why);
    }};

class Store : public ::testing::TestWithParam<Implementation> {
 protected:
  Store() : location(GetParam().locate(dir.path())), store(another()) {}

  std::unique_ptr<BackendStore> another() const {
    std::string why;
    auto opened = GetParam().open(location, &why);
    if (!opened) throw std::runtime_error("cannot open the store: " + why);
    return std::move(*opened);
  }

  User add(const std::string& name, const std::string& plan = "free", std::int64_t credit = 0) {
    auto user = store->add_user({.name = name,
                                 .plan = plan,
                                 .token_sha256 = "hash-" + name,
                                 .credit_micros = credit,
                                 .now = kNow});
    EXPECT_TRUE(user);
    return user ? *user : User{};
  }

  // Records a key for `user` with `budget` tokens that lives `ttl` seconds from kNow.
  KeyRecord key(const User& user, std::string jti, std::optional<std::int64_t> budget,
                std::int64_t uses = 1, std::int64_t ttl = 60, std::int64_t micros = 0,
                std::string kid = "kid-a") {
    KeyRecord k{.jti = std::move(jti),
                .user_id = user.id,
                .model = "demo",
                .kid = std::move(kid),
                .uses = uses,
                .budget = budget,
                .reserved_micros = micros,
                .issued_at = kNow,
                .expires_at = kNow + ttl};
    auto recorded = store->reserve_key(user.id, "2027-01-15", kNow, 300,
                                       [&](const MintState&) -> Result<KeyRecord> { return k; });
    EXPECT_TRUE(recorded);
    return k;
  }

  MintState state(const User& user, std::int64_t now = kNow) {
    MintState seen;
    auto refused = store->reserve_key(user.id, utc_day(now), now, 300,
                                      [&](const MintState& s) -> Result<KeyRecord> {
                                        seen = s;
                                        return Unexpected(Error::quota_exhausted);
                                      });
    EXPECT_EQ(refused.error(), Error::quota_exhausted);
    return seen;
  }

  Result<Recorded> deliver(const EventSpec& e, std::int64_t cost = 0) {
    auto event = parse_usage_event(e.body());
    EXPECT_TRUE(event);
    return store->record_usage(*event, e.body(), kNow, [cost](const User&) { return cost; });
  }

  testing::TempDir dir;
  std::string location;
  std::unique_ptr<BackendStore> store;
};

TEST_P(Store, AddsUsersAndFindsThemByTokenHashOrName) {
  const User bob = add("bob", "free", 2'500'000);
  EXPECT_GT(bob.id, 0);
  auto found = store->find_user_by_token("hash-bob");
  ASSERT_TRUE(found && *found);
  EXPECT_EQ((*found)->name, "bob");
  EXPECT_EQ((*found)->plan, "free");
  EXPECT_EQ((*found)->credit_micros, 2'500'000);
  EXPECT_EQ((*found)->created_at, kNow);
  EXPECT_FALSE(*store->find_user_by_token("hash-nobody"));
  EXPECT_TRUE(*store->find_user("bob"));
  EXPECT_FALSE(*store->find_user("Bob"));
}

TEST_P(Store, RefusesASecondUserWithTheSameNameOrTokenHash) {
  add("bob");
  EXPECT_EQ(store->add_user({.name = "bob", .plan = "free", .token_sha256 = "other"}).error(),
            Error::conflict);
  EXPECT_EQ(store->add_user({.name = "eve", .plan = "free", .token_sha256 = "hash-bob"}).error(),
            Error::conflict);
}

TEST_P(Store, ListsUsersWithTodaysTokens) {
  add("carol");
  const User bob = add("bob");
  key(bob, std::string(test::kJti), 100);
  ASSERT_TRUE(deliver(EventSpec{}));  // 30 tokens on 2027-01-15
  auto users = store->list_users("2027-01-15");
  ASSERT_TRUE(users);
  ASSERT_EQ(users->size(), 2u);
  EXPECT_EQ((*users)[0].user.name, "bob");
  EXPECT_EQ((*users)[0].tokens_today, 30);
  EXPECT_EQ((*users)[1].tokens_today, 0);
  EXPECT_EQ((*store->list_users("2027-01-16"))[0].tokens_today, 0);
}

TEST_P(Store, CreditChangesTheBalance) {
  add("bob", "pro", 1'000'000);
  EXPECT_EQ(store->add_credit("bob", 500'000, kNow), 1'500'000);
  EXPECT_EQ(store->add_credit("bob", -2'000'000, kNow), -500'000);
  EXPECT_EQ(store->add_credit("nobody", 1, kNow).error(), Error::not_found);
  EXPECT_EQ((*store->find_user("bob"))->credit_micros, -500'000);
}

TEST_P(Store, AMintSeesUsageAndTheReservationsOfLiveKeysOnly) {
  const User bob = add("bob", "pro", 9'000'000);
  EXPECT_EQ(state(bob).reserved_tokens, 0);
  key(bob, "k1-aaaaaaaaaaaaaaaaaaaa", 100, 1, 60, 150'000);
  key(bob, "k2-aaaaaaaaaaaaaaaaaaaa", 40, 2, 60, 60'000);
  key(bob, "k3-aaaaaaaaaaaaaaaaaaaa", std::nullopt, 1, 60, 0);  // no budget: nothing held
  key(bob, "k4-aaaaaaaaaaaaaaaaaaaa", 1000, 1, -400, 1);        // dead (exp + grace passed)
  MintState s = state(bob);
  EXPECT_EQ(s.reserved_tokens, 140);
  EXPECT_EQ(s.reserved_micros, 210'000);
  EXPECT_EQ(s.credit_micros, 9'000'000);
  EXPECT_EQ(s.tokens_today, 0);

  // k2 reports one of its two uses: 30 tokens and 45'000 µ come off its reservation.
  EventSpec use1;
  use1.event_id = "k2-aaaaaaaaaaaaaaaaaaaa";
  ASSERT_TRUE(deliver(use1, 45'000));
  s = state(bob);
  EXPECT_EQ(s.tokens_today, 30);
  EXPECT_EQ(s.reserved_tokens, 100 + 10);
  EXPECT_EQ(s.reserved_micros, 150'000 + 15'000);
  EXPECT_EQ(s.credit_micros, 9'000'000 - 45'000);
  // Its second use releases the rest, whatever it spent.
  use1.use = 2;
  use1.prompt = 1;
  use1.completion = 1;
  ASSERT_TRUE(deliver(use1, 0));
  s = state(bob);
  EXPECT_EQ(s.reserved_tokens, 100);
  EXPECT_EQ(s.reserved_micros, 150'000);
  // After exp + grace, k1 holds nothing either.
  EXPECT_EQ(state(bob, kNow + 60 + 300).reserved_tokens, 0);
  EXPECT_EQ(state(bob, kNow + 60 + 299).reserved_tokens, 100);
}

TEST_P(Store, ARefusedMintRecordsNothing) {
  const User bob = add("bob");
  state(bob);  // refuses
  EXPECT_EQ(state(bob).reserved_tokens, 0);
  auto none = store->reserve_key(999, "2027-01-15", kNow, 300,
                                 [](const MintState&) -> Result<KeyRecord> { return KeyRecord{}; });
  EXPECT_EQ(none.error(), Error::user_unknown);
}

TEST_P(Store, RecordsAnEventAndChargesItsUserOnce) {
  const User bob = add("bob", "pro", 1'000'000);
  key(bob, std::string(test::kJti), 500, 4, 60, 750'000);
  const EventSpec e;
  auto first = deliver(e, 45'000);
  ASSERT_TRUE(first);
  EXPECT_FALSE(first->duplicate);
  EXPECT_EQ(first->user, "bob");
  EXPECT_EQ(first->cost_micros, 45'000);
  for (int i = 0; i < 3; ++i) {
    auto again = deliver(e, 45'000);
    ASSERT_TRUE(again);
    EXPECT_TRUE(again->duplicate);
  }
  auto events = store->events({});
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 1u);
  const StoredEvent& stored = events->front();
  EXPECT_EQ(stored.webhook_id, e.webhook_id());
  EXPECT_EQ(stored.user, "bob");
  EXPECT_EQ(stored.status, "ok");
  EXPECT_EQ(stored.total_tokens, 30);
  EXPECT_EQ(stored.cost_micros, 45'000);
  EXPECT_EQ(stored.body, e.body());
  EXPECT_EQ((*store->find_user("bob"))->credit_micros, 1'000'000 - 45'000);
  EXPECT_EQ(state(bob).tokens_today, 30);
}

TEST_P(Store, AnEventOfAKeyMintedElsewhereIsChargedToTheUserNamedBySub) {
  add("bob", "pro", 100);
  ASSERT_TRUE(deliver(EventSpec{}, 30));
  EXPECT_EQ((*store->find_user("bob"))->credit_micros, 70);
  EventSpec stranger;
  stranger.event_id = "ZZZZZZZZZZZZZZZZZZZZZZ";
  stranger.sub = "nobody";
  auto r = deliver(stranger, 30);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->user);  // stored, acknowledged, charged to no one
  EXPECT_EQ(r->cost_micros, 0);
  EXPECT_EQ(store->events({})->size(), 2u);
}

TEST_P(Store, BalancesMayGoNegativeButStayBounded) {
  add("bob", "pro", 10);
  ASSERT_TRUE(deliver(EventSpec{}, kMaxMoneyMicros * 4));  // a cost is capped at 10^18 µ
  EXPECT_EQ((*store->find_user("bob"))->credit_micros, 10 - kMaxMoneyMicros);
  EventSpec second;
  second.use = 2;
  ASSERT_TRUE(deliver(second, kMaxMoneyMicros));
  EXPECT_EQ((*store->find_user("bob"))->credit_micros, -kMaxMoneyMicros);
}

TEST_P(Store, QueriesEventsByUserAndTime) {
  add("bob");
  add("carol");
  EventSpec a, b, c;
  b.event_id = "BBBBBBBBBBBBBBBBBBBBBB";
  b.sub = "carol";
  c.event_id = "CCCCCCCCCCCCCCCCCCCCCC";
  c.finished_at = "2027-01-16T00:00:00Z";
  for (const EventSpec& e : {a, b, c}) ASSERT_TRUE(deliver(e));
  EXPECT_EQ(store->events({.user = "bob"})->size(), 2u);
  EXPECT_EQ(store->events({.user = "carol"})->size(), 1u);
  EXPECT_EQ(store->events({.since = kNow + 1})->size(), 1u);
  EXPECT_EQ(store->events({.user = "carol", .since = kNow + 1})->size(), 0u);
}

TEST_P(Store, ConcurrentDeliveriesOfOneEventRecordItOnce) {
  const User bob = add("bob", "pro", 1'000'000);
  key(bob, std::string(test::kJti), 500, 4, 60, 0);
  auto event = parse_usage_event(EventSpec{}.body());
  ASSERT_TRUE(event);
  std::atomic<int> recorded{0}, duplicates{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      auto mine = another();  // one connection per thread
      for (int i = 0; i < 50; ++i) {
        auto r = mine->record_usage(*event, EventSpec{}.body(), kNow,
                                    [](const User&) { return std::int64_t{1000}; });
        if (!r)
          ++failed;
        else if (r->duplicate)
          ++duplicates;
        else
          ++recorded;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(recorded.load(), 1);
  EXPECT_EQ(duplicates.load(), 99);
  EXPECT_EQ(store->events({})->size(), 1u);
  EXPECT_EQ((*store->find_user("bob"))->credit_micros, 1'000'000 - 1000);
  EXPECT_EQ(state(bob).tokens_today, 30);
}

TEST_P(Store, ConcurrentMintsNeverReserveMoreThanTheQuota) {
  const User bob = add("bob");
  std::atomic<std::int64_t> granted{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      auto mine = another();
      for (int i = 0; i < 40; ++i) {
        const std::string jti =
            "T" + std::to_string(t) + "-" + std::to_string(i) + "-aaaaaaaaaaaaaa";
        auto k = mine->reserve_key(bob.id, "2027-01-15", kNow, 300,
                                   [&](const MintState& s) -> Result<KeyRecord> {
                                     const std::int64_t left = 1000 - s.reserved_tokens;
                                     if (left < 1) return Unexpected(Error::quota_exhausted);
                                     return KeyRecord{.jti = jti,
                                                      .user_id = bob.id,
                                                      .model = "demo",
                                                      .kid = "k",
                                                      .uses = 1,
                                                      .budget = std::min<std::int64_t>(left, 30),
                                                      .issued_at = kNow,
                                                      .expires_at = kNow + 60};
                                   });
        if (k)
          granted += *k->budget;
        else
          ++refused;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), 1000);  // 33 keys of 30 and one of 10
  EXPECT_EQ(refused.load(), 80 - 34);
}

TEST_P(Store, PinsAndRepinsAServer) {
  EXPECT_FALSE(*store->pinned_server("llm-1"));
  ASSERT_TRUE(store->pin_server(
      {.id = "llm-1", .url = "http://a", .jwks = "{}", .leeway = 30, .pinned_at = kNow}));
  ASSERT_TRUE(store->pin_server({.id = "llm-1",
                                 .url = "http://b",
                                 .jwks = R"({"keys":[]})",
                                 .leeway = 5,
                                 .pinned_at = kNow + 1}));
  auto pinned = store->pinned_server("llm-1");
  ASSERT_TRUE(pinned && *pinned);
  EXPECT_EQ((*pinned)->url, "http://b");
  EXPECT_EQ((*pinned)->jwks, R"({"keys":[]})");
  EXPECT_EQ((*pinned)->leeway, 5);
  EXPECT_FALSE(*store->pinned_server("llm-2"));
}

TEST_P(Store, TheActivatedSigningKeyRetiresThePreviousOne) {
  ASSERT_TRUE(store->activate_signing_key("kid-a", "{a}", kNow));
  ASSERT_TRUE(store->activate_signing_key("kid-a", "{a}", kNow + 5));  // idempotent
  const User bob = add("bob");
  key(bob, "ka-aaaaaaaaaaaaaaaaaaaa", 10, 1, 60, 0, "kid-a");
  key(bob, "kb-aaaaaaaaaaaaaaaaaaaa", 10, 1, 90, 0, "kid-a");
  ASSERT_TRUE(store->activate_signing_key("kid-b", "{b}", kNow + 10));
  auto keys = store->signing_keys();
  ASSERT_TRUE(keys);
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0].kid, "kid-a");
  EXPECT_EQ((*keys)[0].state, KeyState::retiring);
  EXPECT_EQ((*keys)[0].rotated_at, kNow + 10);
  EXPECT_EQ((*keys)[0].last_expiry, kNow + 90);
  EXPECT_EQ((*keys)[1].kid, "kid-b");
  EXPECT_EQ((*keys)[1].state, KeyState::active);
  EXPECT_FALSE((*keys)[1].last_expiry);
  ASSERT_TRUE(store->retire_signing_key("kid-a", kNow + 200));
  EXPECT_EQ((*store->signing_keys())[0].state, KeyState::retired);
}

TEST_P(Store, ConcurrentDeliveriesOfDifferentEventsChargeEveryOne) {
  const User bob = add("bob", "pro", 1'000'000);
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      auto mine = another();
      for (int i = 0; i < 25; ++i) {
        EventSpec e;
        e.use = t * 100 + i + 1;
        auto event = parse_usage_event(e.body());
        auto r = mine->record_usage(*event, e.body(), kNow,
                                    [](const User&) { return std::int64_t{1000}; });
        if (!r || r->duplicate) ++failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(store->events({})->size(), 50u);
  EXPECT_EQ((*store->find_user("bob"))->credit_micros, 1'000'000 - 50 * 1000)
      << "no charge is lost to a concurrent one";
  EXPECT_EQ(state(bob).tokens_today, 50 * 30);
}

TEST_P(Store, ABatchAnswersPerEventAndSeesItsOwnEarlierEvents) {
  add("bob", "pro", 1000);
  EventSpec a, b;
  b.use = 2;
  std::vector<NewEvent> batch;
  for (const EventSpec* e : {&a, &a, &b}) {
    batch.push_back({.event = *parse_usage_event(e->body()),
                     .raw_body = e->body(),
                     .received_at = kNow,
                     .cost = [](const User&) { return std::int64_t{10}; }});
  }
  auto results = store->record_events(batch);
  ASSERT_TRUE(results);
  ASSERT_EQ(results->size(), 3u);
  ASSERT_TRUE((*results)[0] && (*results)[1] && (*results)[2]);
  EXPECT_FALSE((*results)[0]->duplicate);
  EXPECT_TRUE((*results)[1]->duplicate);
  EXPECT_FALSE((*results)[2]->duplicate);
  EXPECT_EQ((*store->find_user("bob"))->credit_micros, 1000 - 20);
}

INSTANTIATE_TEST_SUITE_P(Implementations, Store, ::testing::Values(kSqlite, kPostgres),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

// ---- SQLite schema ---------------------------------------------------------------------------

std::int64_t user_version(const std::filesystem::path& db) {
  auto conn = store::Sqlite::open(db);
  auto read = conn->prepare("PRAGMA user_version");
  EXPECT_TRUE(read && *read->step());
  return read->int64(0);
}

TEST(SqliteSchema, AFreshDatabaseIsCreated0600AtTheLatestVersion) {
  testing::TempDir dir;
  ASSERT_TRUE(open_sqlite_store(dir / "b.db"));
  struct stat st {};
  ASSERT_EQ(::stat((dir / "b.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(user_version(dir / "b.db"), backend_migrations().back().version);
}

TEST(SqliteSchema, ReopeningKeepsDataAndVersion) {
  testing::TempDir dir;
  {
    auto s = open_sqlite_store(dir / "b.db");
    ASSERT_TRUE(s);
    ASSERT_TRUE((*s)->add_user({.name = "bob", .plan = "free", .token_sha256 = "h"}));
  }
  for (int i = 0; i < 2; ++i) {
    auto s = open_sqlite_store(dir / "b.db");
    ASSERT_TRUE(s);
    EXPECT_TRUE(*(*s)->find_user("bob"));
  }
  EXPECT_EQ(user_version(dir / "b.db"), backend_migrations().back().version);
}

TEST(SqliteSchema, ADatabaseFromANewerBuildIsRefused) {
  testing::TempDir dir;
  ASSERT_TRUE(open_sqlite_store(dir / "b.db"));
  {
    auto conn = store::Sqlite::open(dir / "b.db");
    ASSERT_TRUE(conn->exec("PRAGMA user_version = 99"));
  }
  std::string why;
  auto s = open_sqlite_store(dir / "b.db", &why);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), Error::store_unavailable);
  EXPECT_NE(why.find("newer"), std::string::npos) << why;
  EXPECT_EQ(user_version(dir / "b.db"), 99);  // untouched
}

TEST(SqliteSchema, MigrationsAreNumberedFromOneWithoutGaps) {
  int expected = 1;
  for (const store::Migration& m : backend_migrations()) EXPECT_EQ(m.version, expected++);
}

TEST(SqliteSchema, AFailedOpenSaysWhy) {
  std::string why;
  auto s = open_sqlite_store("/nonexistent-dir/b.db", &why);
  ASSERT_FALSE(s);
  EXPECT_FALSE(why.empty());
}

// ---- PostgreSQL: several processes, one database --------------------------------------------

std::unique_ptr<BackendStore> open_postgres(const std::string& url) {
  std::string why;
  auto store = open_postgres_store(url, &why);
  if (!store) throw std::runtime_error("cannot open the store: " + why);
  return std::move(*store);
}

std::int64_t postgres_version(const std::string& url) {
  std::string why;
  auto db = store::Postgres::connect(url, {}, &why);
  if (!db) throw std::runtime_error(why);
  auto rows = db->query("SELECT version FROM dynaseal_schema WHERE component = 'backend'");
  if (!rows || rows->size() != 1) return -1;
  return rows->int64(0, 0);
}

// Connection A mints while connection B tries to: B's read of the user's reservations waits
// for A's transaction, and then sees A's key. Without the row lock B would read the quota as
// untouched and both would spend it.
TEST(PostgresStore, AMintWaitsForAConcurrentMintOfTheSameUserAndSeesItsKey) {
  const std::string url = testing::fresh_postgres_url();
  auto a = open_postgres(url);
  auto b = open_postgres(url);
  auto bob = a->add_user({.name = "bob", .plan = "free", .token_sha256 = "h", .now = kNow});
  ASSERT_TRUE(bob);
  const auto mint = [&](const std::string& jti, const MintState& s) -> Result<KeyRecord> {
    const std::int64_t left = 1000 - s.reserved_tokens;
    if (left < 1) return Unexpected(Error::quota_exhausted);
    return KeyRecord{.jti = jti,
                     .user_id = bob->id,
                     .model = "demo",
                     .kid = "k",
                     .budget = left,
                     .issued_at = kNow,
                     .expires_at = kNow + 60};
  };
  std::promise<void> a_inside;
  std::atomic<bool> a_done{false};
  std::optional<MintState> seen_by_b;
  std::thread second([&] {
    a_inside.get_future().wait();
    auto k = b->reserve_key(bob->id, "2027-01-15", kNow, 300, [&](const MintState& s) {
      EXPECT_TRUE(a_done.load()) << "B read the reservations while A's mint was open";
      seen_by_b = s;
      return mint("B-aaaaaaaaaaaaaaaaaaaaa", s);
    });
    EXPECT_EQ(k.error(), Error::quota_exhausted);
  });
  auto k = a->reserve_key(bob->id, "2027-01-15", kNow, 300, [&](const MintState& s) {
    a_inside.set_value();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // B is waiting meanwhile
    a_done = true;
    return mint("A-aaaaaaaaaaaaaaaaaaaaa", s);
  });
  second.join();
  ASSERT_TRUE(k);
  EXPECT_EQ(k->budget, 1000);
  ASSERT_TRUE(seen_by_b);
  EXPECT_EQ(seen_by_b->reserved_tokens, 1000) << "B saw A's key";
}

TEST(PostgresSchema, AFreshSchemaIsAtTheLatestVersionAndReopensWithItsData) {
  const std::string url = testing::fresh_postgres_url();
  ASSERT_TRUE(open_postgres(url)->add_user({.name = "bob", .plan = "free", .token_sha256 = "h"}));
  EXPECT_EQ(postgres_version(url), backend_postgres_migrations().back().version);
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(*open_postgres(url)->find_user("bob"));
  EXPECT_EQ(postgres_version(url), backend_postgres_migrations().back().version);
}

TEST(PostgresSchema, ProcessesStartingAtOnceMigrateOnce) {
  const std::string url = testing::fresh_postgres_url();
  std::atomic<int> opened{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      std::string why;
      if (open_postgres_store(url, &why)) {
        ++opened;
      } else {
        ADD_FAILURE() << why;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(opened.load(), 4);
  EXPECT_EQ(postgres_version(url), backend_postgres_migrations().back().version);
}

TEST(PostgresSchema, ASchemaFromANewerBuildIsRefused) {
  const std::string url = testing::fresh_postgres_url();
  open_postgres(url);
  testing::postgres_exec(url,
                         "UPDATE dynaseal_schema SET version = 99 WHERE component = 'backend'");
  std::string why;
  auto s = open_postgres_store(url, &why);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), Error::store_unavailable);
  EXPECT_NE(why.find("newer"), std::string::npos) << why;
  EXPECT_EQ(postgres_version(url), 99);  // untouched
}

TEST(PostgresSchema, MigrationsAreNumberedFromOneWithoutGaps) {
  int expected = 1;
  for (const store::PgMigration& m : backend_postgres_migrations()) {
    EXPECT_EQ(m.version, expected++);
  }
}

TEST(PostgresSchema, AFailedOpenSaysWhyButNeverThePassword) {
  std::string why;
  auto s =
      open_postgres_store("postgresql://acme:hunter2@127.0.0.1:1/acme?connect_timeout=2", &why);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), Error::store_unavailable);
  EXPECT_NE(why.find("127.0.0.1"), std::string::npos) << why;
  EXPECT_EQ(why.find("hunter2"), std::string::npos) << why;
}

}  // namespace
}  // namespace dynaseal::backend
