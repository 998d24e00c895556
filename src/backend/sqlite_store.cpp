#include "backend/sqlite_store.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <mutex>

#include "backend/money.hpp"

namespace dynaseal::backend {
namespace {

using store::Sqlite;
using store::Statement;

constexpr std::string_view kUserColumns = "u.id, u.name, u.plan, u.credit_micros, u.created_at";

User read_user(const Statement& s) {
  return {.id = s.int64(0),
          .name = s.string(1),
          .plan = s.string(2),
          .credit_micros = s.int64(3),
          .created_at = s.int64(4)};
}

// Steps a bound statement once; on a row, reads it with `read` and resets the statement (so a
// cached statement never holds a read snapshot open). True when there was a row.
template <class Read>
Result<bool> first_row(Statement& s, Read&& read) {
  auto row = s.step();
  if (!row) return Unexpected(row.error());
  if (!*row) return false;
  read(s);
  s.reset();
  return true;
}

std::optional<KeyState> parse_state(std::string_view s) {
  if (s == "active") return KeyState::active;
  if (s == "retiring") return KeyState::retiring;
  if (s == "retired") return KeyState::retired;
  return std::nullopt;
}

// Writers of one database file in this process take turns on one mutex instead of meeting in
// SQLite's busy handler, which sleeps between tries (up to 100 ms each) and so turns a moment
// of contention between worker threads into stalls of hundreds of milliseconds. Other
// processes (the CLI next to a running backend) still meet in the busy handler, rarely.
std::shared_ptr<std::mutex> writer_lock(const std::filesystem::path& path) {
  static std::mutex registry_mutex;
  static std::map<std::string, std::weak_ptr<std::mutex>> registry;
  std::error_code ec;
  const std::filesystem::path canonical = std::filesystem::weakly_canonical(path, ec);
  std::lock_guard lock(registry_mutex);
  std::weak_ptr<std::mutex>& slot = registry[ec ? path.string() : canonical.string()];
  std::shared_ptr<std::mutex> writer = slot.lock();
  if (!writer) {
    writer = std::make_shared<std::mutex>();
    slot = writer;
  }
  return writer;
}

// A write transaction (BEGIN IMMEDIATE) holding the process's writer lock; it rolls back
// before the lock is released unless committed.
struct WriteTx {
  std::unique_lock<std::mutex> lock;
  store::Transaction tx;
};

class SqliteBackendStore final : public BackendStore {
 public:
  SqliteBackendStore(Sqlite db, std::shared_ptr<std::mutex> writer)
      : db_(std::move(db)), writer_(std::move(writer)) {}

  Result<User> add_user(const NewUser& u) override {
    Statement& s = db_.statement(
        "INSERT INTO users(name, plan, token_sha256, credit_micros, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5)");
    auto tx = begin_write();
    if (!tx) return Unexpected(tx.error());
    s.bind(1, u.name).bind(2, u.plan).bind(3, u.token_sha256).bind(4, u.credit_micros);
    if (auto ok = s.bind(5, u.now).run(); !ok) return Unexpected(ok.error());
    User user{.id = db_.last_insert_rowid(),
              .name = u.name,
              .plan = u.plan,
              .credit_micros = u.credit_micros,
              .created_at = u.now};
    if (u.credit_micros != 0) {
      if (auto ok = ledger(user.id, u.now, u.credit_micros, u.credit_micros, "credit", {}); !ok) {
        return Unexpected(ok.error());
      }
    }
    if (auto ok = tx->tx.commit(); !ok) return Unexpected(ok.error());
    return user;
  }

  Result<std::optional<User>> find_user_by_token(std::string_view token_sha256) override {
    return one_user("WHERE u.token_sha256 = ?1", token_sha256);
  }

  Result<std::optional<User>> find_user(std::string_view name) override {
    return one_user("WHERE u.name = ?1", name);
  }

  Result<std::vector<UserSummary>> list_users(std::string_view day) override {
    Statement& s = db_.statement(
        "SELECT u.id, u.name, u.plan, u.credit_micros, u.created_at, COALESCE(d.tokens, 0) "
        "FROM users u LEFT JOIN daily_usage d ON d.user_id = u.id AND d.day = ?1 "
        "ORDER BY u.name");
    s.bind(1, day);
    std::vector<UserSummary> out;
    for (;;) {
      auto row = s.step();
      if (!row) return Unexpected(row.error());
      if (!*row) return out;
      out.push_back({.user = read_user(s), .tokens_today = s.int64(5)});
    }
  }

  Result<std::int64_t> add_credit(std::string_view name, std::int64_t delta,
                                  std::int64_t now) override {
    auto tx = begin_write();
    if (!tx) return Unexpected(tx.error());
    auto user = one_user("WHERE u.name = ?1", name);
    if (!user) return Unexpected(user.error());
    if (!*user) return Unexpected(Error::not_found);
    const std::int64_t balance = clamp_money((*user)->credit_micros + delta);
    if (auto ok = set_balance((*user)->id, balance); !ok) return Unexpected(ok.error());
    if (auto ok = ledger((*user)->id, now, delta, balance, "credit", {}); !ok) {
      return Unexpected(ok.error());
    }
    if (auto ok = tx->tx.commit(); !ok) return Unexpected(ok.error());
    return balance;
  }

  Result<KeyRecord> reserve_key(std::int64_t user_id, std::string_view day, std::int64_t now,
                                std::int64_t settle_grace, const MintDecision& decide) override {
    auto tx = begin_write();
    if (!tx) return Unexpected(tx.error());
    auto state = mint_state(user_id, day, now, settle_grace);
    if (!state) return Unexpected(state.error());
    auto key = decide(*state);
    if (!key) return key;  // the transaction rolls back: nothing recorded
    Statement& s = db_.statement(
        "INSERT INTO keys(jti, user_id, model, kid, uses, budget, reserved_micros, issued_at, "
        "expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    s.bind(1, key->jti).bind(2, key->user_id).bind(3, key->model).bind(4, key->kid);
    s.bind(5, key->uses).bind(6, key->budget).bind(7, key->reserved_micros);
    if (auto ok = s.bind(8, key->issued_at).bind(9, key->expires_at).run(); !ok) {
      return Unexpected(ok.error());
    }
    if (auto ok = tx->tx.commit(); !ok) return Unexpected(ok.error());
    return key;
  }

  Result<std::vector<Result<Recorded>>> record_events(std::span<const NewEvent> batch) override {
    auto tx = begin_write();
    if (!tx) return Unexpected(tx.error());
    // Each event inside its own savepoint: one that fails half-way is undone alone.
    Statement& savepoint = db_.statement("SAVEPOINT event");
    Statement& undo = db_.statement("ROLLBACK TO event");
    Statement& release = db_.statement("RELEASE event");
    std::vector<Result<Recorded>> out;
    out.reserve(batch.size());
    for (const NewEvent& e : batch) {
      if (auto ok = savepoint.run(); !ok) return Unexpected(ok.error());
      auto recorded = record_one(e);
      // When SQLite itself gave up the transaction (I/O error, disk full), these fail and so
      // does the batch: the Transaction rolls back whatever is left.
      if (!recorded) {
        if (auto ok = undo.run(); !ok) return Unexpected(ok.error());
      }
      if (auto ok = release.run(); !ok) return Unexpected(ok.error());
      out.push_back(std::move(recorded));
    }
    if (auto ok = tx->tx.commit(); !ok) return Unexpected(ok.error());
    return out;
  }

  Result<std::vector<StoredEvent>> events(const EventQuery& q) override {
    Statement& s = db_.statement(
        "SELECT e.webhook_id, COALESCE(u.name, ''), e.model, e.status, e.prompt_tokens, "
        "e.completion_tokens, e.total_tokens, e.cost_micros, e.finished_at, e.received_at, "
        "e.body FROM events e LEFT JOIN users u ON u.id = e.user_id "
        "WHERE (?1 IS NULL OR u.name = ?1) AND (?2 IS NULL OR e.finished_unix >= ?2) "
        "ORDER BY e.id");
    s.bind(1, q.user).bind(2, q.since);
    std::vector<StoredEvent> out;
    for (;;) {
      auto row = s.step();
      if (!row) return Unexpected(row.error());
      if (!*row) return out;
      out.push_back({.webhook_id = s.string(0),
                     .user = s.string(1),
                     .model = s.string(2),
                     .status = s.string(3),
                     .prompt_tokens = s.int64(4),
                     .completion_tokens = s.int64(5),
                     .total_tokens = s.int64(6),
                     .cost_micros = s.int64(7),
                     .finished_at = s.string(8),
                     .received_at = s.int64(9),
                     .body = s.string(10)});
    }
  }

  Result<void> pin_server(const PinnedServer& p) override {
    std::lock_guard lock(*writer_);
    Statement& s = db_.statement(
        "INSERT INTO servers(id, url, jwks, leeway, pinned_at) VALUES (?1, ?2, ?3, ?4, ?5) "
        "ON CONFLICT(id) DO UPDATE SET url = excluded.url, jwks = excluded.jwks, "
        "leeway = excluded.leeway, pinned_at = excluded.pinned_at");
    return s.bind(1, p.id)
        .bind(2, p.url)
        .bind(3, p.jwks)
        .bind(4, p.leeway)
        .bind(5, p.pinned_at)
        .run();
  }

  Result<std::optional<PinnedServer>> pinned_server(std::string_view id) override {
    Statement& s =
        db_.statement("SELECT id, url, jwks, leeway, pinned_at FROM servers WHERE id = ?1");
    std::optional<PinnedServer> out;
    auto found = first_row(s.bind(1, id), [&](const Statement& r) {
      out = PinnedServer{.id = r.string(0),
                         .url = r.string(1),
                         .jwks = r.string(2),
                         .leeway = r.int64(3),
                         .pinned_at = r.int64(4)};
    });
    if (!found) return Unexpected(found.error());
    return out;
  }

  Result<void> activate_signing_key(std::string_view kid, std::string_view public_jwk,
                                    std::int64_t now) override {
    auto tx = begin_write();
    if (!tx) return Unexpected(tx.error());
    Statement& others = db_.statement(
        "UPDATE signing_keys SET state = 'retiring', rotated_at = ?2 "
        "WHERE kid <> ?1 AND state = 'active'");
    if (auto ok = others.bind(1, kid).bind(2, now).run(); !ok) return ok;
    Statement& add = db_.statement(
        "INSERT INTO signing_keys(kid, public_jwk, state, created_at) VALUES (?1, ?2, 'active', "
        "?3) ON CONFLICT(kid) DO UPDATE SET state = 'active', rotated_at = NULL, "
        "retired_at = NULL");
    if (auto ok = add.bind(1, kid).bind(2, public_jwk).bind(3, now).run(); !ok) return ok;
    return tx->tx.commit();
  }

  Result<std::vector<SigningKeyRecord>> signing_keys() override {
    Statement& s = db_.statement(
        "SELECT s.kid, s.public_jwk, s.state, s.created_at, s.rotated_at, "
        "(SELECT MAX(k.expires_at) FROM keys k WHERE k.kid = s.kid) "
        "FROM signing_keys s ORDER BY s.created_at, s.kid");
    std::vector<SigningKeyRecord> out;
    for (;;) {
      auto row = s.step();
      if (!row) return Unexpected(row.error());
      if (!*row) return out;
      auto state = parse_state(s.text(2));
      if (!state) return Unexpected(Error::store_unavailable);
      SigningKeyRecord k{
          .kid = s.string(0), .public_jwk = s.string(1), .state = *state, .created_at = s.int64(3)};
      if (!s.is_null(4)) k.rotated_at = s.int64(4);
      if (!s.is_null(5)) k.last_expiry = s.int64(5);
      out.push_back(std::move(k));
    }
  }

  Result<void> retire_signing_key(std::string_view kid, std::int64_t now) override {
    std::lock_guard lock(*writer_);
    Statement& s =
        db_.statement("UPDATE signing_keys SET state = 'retired', retired_at = ?2 WHERE kid = ?1");
    return s.bind(1, kid).bind(2, now).run();
  }

 private:
  Result<WriteTx> begin_write() {
    std::unique_lock lock(*writer_);
    auto tx = db_.begin();
    if (!tx) return Unexpected(tx.error());
    return WriteTx{std::move(lock), std::move(*tx)};
  }

  static std::int64_t clamp_money(std::int64_t v) {
    return std::clamp(v, -kMaxMoneyMicros, kMaxMoneyMicros);
  }

  Result<std::optional<User>> one_user(std::string_view where, std::string_view value) {
    Statement& s = db_.statement("SELECT " + std::string(kUserColumns) + " FROM users u " +
                                 std::string(where));
    std::optional<User> out;
    auto found = first_row(s.bind(1, value), [&](const Statement& r) { out = read_user(r); });
    if (!found) return Unexpected(found.error());
    return out;
  }

  Result<MintState> mint_state(std::int64_t user_id, std::string_view day, std::int64_t now,
                               std::int64_t grace) {
    MintState m;
    Statement& used = db_.statement(
        "SELECT u.credit_micros, COALESCE(d.tokens, 0) FROM users u LEFT JOIN daily_usage d "
        "ON d.user_id = u.id AND d.day = ?2 WHERE u.id = ?1");
    auto found = first_row(used.bind(1, user_id).bind(2, day), [&](const Statement& r) {
      m.credit_micros = r.int64(0);
      m.tokens_today = r.int64(1);
    });
    if (!found) return Unexpected(found.error());
    if (!*found) return Unexpected(Error::user_unknown);
    // A key reserves what it has not spent yet, until every use is reported or it is dead
    // (exp + grace <= now). Written as expires_at > now - grace so the index serves the range.
    Statement& held = db_.statement(
        "SELECT COALESCE(SUM(MAX(0, budget - tokens_reported)), 0), "
        "COALESCE(SUM(MAX(0, reserved_micros - cost_reported)), 0) FROM keys "
        "WHERE user_id = ?1 AND expires_at > ?2 AND budget IS NOT NULL "
        "AND uses_reported < uses");
    auto summed = first_row(held.bind(1, user_id).bind(2, now - grace), [&](const Statement& r) {
      m.reserved_tokens = r.int64(0);
      m.reserved_micros = r.int64(1);
    });
    if (!summed) return Unexpected(summed.error());
    return m;
  }

  // The user an event belongs to: the owner of the key it reports on, else the user named
  // by its sub (keys minted outside this backend, e.g. with `dynaseal key mint`).
  Result<std::optional<User>> event_user(const UsageEvent& e) {
    Statement& s = db_.statement("SELECT " + std::string(kUserColumns) +
                                 " FROM keys k JOIN users u ON u.id = k.user_id WHERE k.jti = ?1");
    std::optional<User> out;
    auto found = first_row(s.bind(1, e.event_id), [&](const Statement& r) { out = read_user(r); });
    if (!found) return Unexpected(found.error());
    if (out) return out;
    return one_user("WHERE u.name = ?1", e.sub);
  }

  // False when the webhook-id exists already (the UNIQUE constraint decides, not a read).
  Result<bool> insert_event(const UsageEvent& e, std::string_view body, std::int64_t received_at,
                            const std::optional<User>& user, std::int64_t cost) {
    Statement& s = db_.statement(
        "INSERT INTO events(webhook_id, event_id, use, user_id, sub, model, status, "
        "prompt_tokens, completion_tokens, total_tokens, cost_micros, started_at, finished_at, "
        "finished_unix, day, received_at, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
        "?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) ON CONFLICT(webhook_id) DO NOTHING");
    s.bind(1, e.webhook_id()).bind(2, e.event_id).bind(3, e.use);
    s.bind(4, user ? std::optional<std::int64_t>(user->id) : std::nullopt);
    s.bind(5, e.sub).bind(6, e.model).bind(7, e.status).bind(8, e.prompt_tokens);
    s.bind(9, e.completion_tokens).bind(10, e.total_tokens).bind(11, cost);
    s.bind(12, e.started_at).bind(13, e.finished_at).bind(14, e.finished_unix);
    s.bind(15, utc_day(e.finished_unix)).bind(16, received_at).bind(17, body);
    if (auto ok = s.run(); !ok) return Unexpected(ok.error());
    return db_.changes() == 1;
  }

  Result<void> charge(const User& user, const UsageEvent& e, std::int64_t now, std::int64_t cost) {
    Statement& key = db_.statement(
        "UPDATE keys SET uses_reported = uses_reported + 1, tokens_reported = tokens_reported + "
        "?2, cost_reported = cost_reported + ?3 WHERE jti = ?1");
    if (auto ok = key.bind(1, e.event_id).bind(2, e.total_tokens).bind(3, cost).run(); !ok) {
      return ok;
    }
    Statement& day = db_.statement(
        "INSERT INTO daily_usage(user_id, day, tokens, cost_micros, events) "
        "VALUES (?1, ?2, ?3, ?4, 1) ON CONFLICT(user_id, day) DO UPDATE SET "
        "tokens = tokens + excluded.tokens, cost_micros = cost_micros + excluded.cost_micros, "
        "events = events + 1");
    day.bind(1, user.id).bind(2, utc_day(e.finished_unix)).bind(3, e.total_tokens);
    if (auto ok = day.bind(4, cost).run(); !ok) return ok;
    if (cost == 0) return {};
    // Arithmetic in C++, bounded: SQLite would turn an overflowing integer into a float.
    const std::int64_t balance = clamp_money(user.credit_micros - cost);
    if (auto ok = set_balance(user.id, balance); !ok) return ok;
    return ledger(user.id, now, -cost, balance, "usage", e.webhook_id());
  }

  // One event of record_events, inside the open transaction. A duplicate writes nothing.
  Result<Recorded> record_one(const NewEvent& n) {
    const UsageEvent& e = n.event;
    auto user = event_user(e);
    if (!user) return Unexpected(user.error());
    Recorded out;
    if (*user) {
      out.user = (*user)->name;
      out.cost_micros = std::clamp<std::int64_t>(n.cost ? n.cost(**user) : 0, 0, kMaxMoneyMicros);
    }
    auto inserted = insert_event(e, n.raw_body, n.received_at, *user, out.cost_micros);
    if (!inserted) return Unexpected(inserted.error());
    if (!*inserted) return Recorded{.duplicate = true};
    if (*user) {
      if (auto ok = charge(**user, e, n.received_at, out.cost_micros); !ok) {
        return Unexpected(ok.error());
      }
    }
    return out;
  }

  Result<void> set_balance(std::int64_t user_id, std::int64_t balance) {
    Statement& s = db_.statement("UPDATE users SET credit_micros = ?2 WHERE id = ?1");
    return s.bind(1, user_id).bind(2, balance).run();
  }

  Result<void> ledger(std::int64_t user_id, std::int64_t at, std::int64_t delta,
                      std::int64_t balance, std::string_view reason,
                      std::optional<std::string> webhook_id) {
    Statement& s = db_.statement(
        "INSERT INTO ledger(user_id, at, delta_micros, balance_micros, reason, webhook_id) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    s.bind(1, user_id).bind(2, at).bind(3, delta).bind(4, balance).bind(5, reason);
    return s.bind(6, webhook_id).run();
  }

  Sqlite db_;
  std::shared_ptr<std::mutex> writer_;
};

}  // namespace

Result<std::unique_ptr<BackendStore>> open_sqlite_store(const std::filesystem::path& path,
                                                        std::string* message) {
  auto db = Sqlite::open(path);
  if (!db) {
    if (message != nullptr) *message = "cannot open " + path.string();
    return Unexpected(db.error());
  }
  if (auto ok = store::migrate(*db, backend_migrations(), message); !ok) {
    return Unexpected(ok.error());
  }
  return std::make_unique<SqliteBackendStore>(std::move(*db), writer_lock(path));
}

}  // namespace dynaseal::backend
