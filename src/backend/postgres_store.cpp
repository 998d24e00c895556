#include "backend/postgres_store.hpp"

#include <algorithm>

#include "backend/money.hpp"

namespace dynaseal::backend {
namespace {

using store::PgCall;
using store::PgParam;
using store::PgRows;
using store::Postgres;

constexpr std::string_view kUserById =
    "SELECT id, name, plan, credit_micros, created_at FROM users WHERE id = $1";
constexpr std::string_view kUserByName =
    "SELECT id, name, plan, credit_micros, created_at FROM users WHERE name = $1";
constexpr std::string_view kUserByToken =
    "SELECT id, name, plan, credit_micros, created_at FROM users WHERE token_sha256 = $1";
// The user an event belongs to: the owner of the key it reports on, else the user named by its
// sub (keys minted outside this backend, e.g. with `dynaseal key mint`).
constexpr std::string_view kEventUser =
    "SELECT id, name, plan, credit_micros, created_at FROM users WHERE id = COALESCE("
    "(SELECT user_id FROM keys WHERE jti = $1), (SELECT id FROM users WHERE name = $2))";
constexpr std::string_view kInsertEvent =
    "INSERT INTO events(webhook_id, event_id, use, user_id, sub, model, status, prompt_tokens, "
    "completion_tokens, total_tokens, cost_micros, started_at, finished_at, finished_unix, day, "
    "received_at, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
    "$15, $16, $17) ON CONFLICT (webhook_id) DO NOTHING";
constexpr std::string_view kChargeKey =
    "UPDATE keys SET uses_reported = uses_reported + 1, tokens_reported = tokens_reported + $2, "
    "cost_reported = cost_reported + $3 WHERE jti = $1";
constexpr std::string_view kChargeDay =
    "INSERT INTO daily_usage(user_id, day, tokens, cost_micros, events) VALUES ($1, $2, $3, $4, 1) "
    "ON CONFLICT (user_id, day) DO UPDATE SET tokens = daily_usage.tokens + excluded.tokens, "
    "cost_micros = daily_usage.cost_micros + excluded.cost_micros, "
    "events = daily_usage.events + 1";
// The balance moves by arithmetic in SQL, bounded like money.hpp; its ledger row records the
// balance it left. Both operands are within ±2·10^18, so the sum cannot overflow BIGINT.
constexpr std::string_view kMoveBalance =
    "WITH moved AS (UPDATE users SET credit_micros = GREATEST(-$5::bigint, LEAST($5::bigint, "
    "credit_micros + $2::bigint)) WHERE id = $1 RETURNING id, credit_micros) "
    "INSERT INTO ledger(user_id, at, delta_micros, balance_micros, reason, webhook_id) "
    "SELECT id, $3::bigint, $2::bigint, credit_micros, $4::text, $6::text FROM moved "
    "RETURNING balance_micros";

User read_user(const PgRows& r, int row) {
  return {.id = r.int64(row, 0),
          .name = r.string(row, 1),
          .plan = r.string(row, 2),
          .credit_micros = r.int64(row, 3),
          .created_at = r.int64(row, 4)};
}

// The first row's user, if any; store_unavailable for unreadable contents.
Result<std::optional<User>> first_user(Result<PgRows> rows) {
  if (!rows) return Unexpected(rows.error());
  std::optional<User> out;
  if (rows->size() > 0) out = read_user(*rows, 0);
  if (auto ok = rows->check(); !ok) return Unexpected(ok.error());
  return out;
}

std::optional<KeyState> parse_state(std::string_view s) {
  if (s == "active") return KeyState::active;
  if (s == "retiring") return KeyState::retiring;
  if (s == "retired") return KeyState::retired;
  return std::nullopt;
}

Result<void> done(const Result<std::int64_t>& r) {
  if (!r) return Unexpected(r.error());
  return {};
}

class PostgresBackendStore final : public BackendStore {
 public:
  explicit PostgresBackendStore(Postgres db) : db_(std::move(db)) {}

  Result<User> add_user(const NewUser& u) override {
    auto tx = db_.begin();
    if (!tx) return Unexpected(tx.error());
    auto rows = db_.query(
        "INSERT INTO users(name, plan, token_sha256, credit_micros, created_at) "
        "VALUES ($1, $2, $3, $4, $5) RETURNING id",
        {u.name, u.plan, u.token_sha256, u.credit_micros, u.now});
    if (!rows) return Unexpected(rows.error());  // conflict for a taken name or token hash
    User user{.id = rows->int64(0, 0),
              .name = u.name,
              .plan = u.plan,
              .credit_micros = u.credit_micros,
              .created_at = u.now};
    if (auto ok = rows->check(); !ok) return Unexpected(ok.error());
    if (u.credit_micros != 0) {
      auto ledger = db_.execute(
          "INSERT INTO ledger(user_id, at, delta_micros, balance_micros, reason) "
          "VALUES ($1, $2, $3, $3, 'credit')",
          {user.id, u.now, u.credit_micros});
      if (!ledger) return Unexpected(ledger.error());
    }
    if (auto ok = tx->commit(); !ok) return Unexpected(ok.error());
    return user;
  }

  Result<std::optional<User>> find_user_by_token(std::string_view token_sha256) override {
    return first_user(db_.query(kUserByToken, {token_sha256}));
  }

  Result<std::optional<User>> find_user(std::string_view name) override {
    return first_user(db_.query(kUserByName, {name}));
  }

  Result<std::vector<UserSummary>> list_users(std::string_view day) override {
    auto rows = db_.query(
        "SELECT u.id, u.name, u.plan, u.credit_micros, u.created_at, COALESCE(d.tokens, 0) "
        "FROM users u LEFT JOIN daily_usage d ON d.user_id = u.id AND d.day = $1 "
        "ORDER BY u.name",
        {day});
    if (!rows) return Unexpected(rows.error());
    std::vector<UserSummary> out;
    for (int i = 0; i < rows->size(); ++i) {
      out.push_back({.user = read_user(*rows, i), .tokens_today = rows->int64(i, 5)});
    }
    if (auto ok = rows->check(); !ok) return Unexpected(ok.error());
    return out;
  }

  Result<std::int64_t> add_credit(std::string_view name, std::int64_t delta,
                                  std::int64_t now) override {
    auto user = find_user(name);
    if (!user) return Unexpected(user.error());
    if (!*user) return Unexpected(Error::not_found);
    // Bounded first, so that the SQL sum stays within BIGINT whatever the caller passed.
    const std::int64_t bounded = std::clamp(delta, -2 * kMaxMoneyMicros, 2 * kMaxMoneyMicros);
    auto rows = db_.query(kMoveBalance, {(*user)->id, bounded, now, "credit", kMaxMoneyMicros,
                                         std::optional<std::string_view>{}});
    if (!rows) return Unexpected(rows.error());
    if (rows->size() != 1) return Unexpected(Error::not_found);  // deleted meanwhile
    const std::int64_t balance = rows->int64(0, 0);
    if (auto ok = rows->check(); !ok) return Unexpected(ok.error());
    return balance;
  }

  Result<KeyRecord> reserve_key(std::int64_t user_id, std::string_view day, std::int64_t now,
                                std::int64_t settle_grace, const MintDecision& decide) override {
    auto tx = db_.begin();
    if (!tx) return Unexpected(tx.error());
    auto state = locked_mint_state(user_id, day, now, settle_grace);
    if (!state) return Unexpected(state.error());
    auto key = decide(*state);
    if (!key) return key;  // the transaction rolls back: nothing recorded
    auto inserted = db_.execute(
        "INSERT INTO keys(jti, user_id, model, kid, uses, budget, reserved_micros, issued_at, "
        "expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        {key->jti, key->user_id, key->model, key->kid, key->uses, key->budget, key->reserved_micros,
         key->issued_at, key->expires_at});
    if (!inserted) return Unexpected(inserted.error());
    if (auto ok = tx->commit(); !ok) return Unexpected(ok.error());
    return key;
  }

  Result<std::vector<Result<Recorded>>> record_events(std::span<const NewEvent> batch) override {
    auto tx = db_.begin();
    if (!tx) return Unexpected(tx.error());
    std::vector<Result<Recorded>> out;
    out.reserve(batch.size());
    for (const NewEvent& e : batch) {
      // Each event inside its own savepoint: one that fails half-way is undone alone. When
      // the savepoint commands fail too, the connection is gone: so is the batch.
      if (auto ok = db_.savepoint("event"); !ok) return Unexpected(ok.error());
      auto recorded = record_one(e);
      if (!recorded) {
        if (auto ok = db_.rollback_to("event"); !ok) return Unexpected(ok.error());
      }
      if (auto ok = db_.release("event"); !ok) return Unexpected(ok.error());
      out.push_back(std::move(recorded));
    }
    if (auto ok = tx->commit(); !ok) return Unexpected(ok.error());
    return out;
  }

  Result<std::vector<StoredEvent>> events(const EventQuery& q) override {
    auto rows = db_.query(
        "SELECT e.webhook_id, COALESCE(u.name, ''), e.model, e.status, e.prompt_tokens, "
        "e.completion_tokens, e.total_tokens, e.cost_micros, e.finished_at, e.received_at, "
        "e.body FROM events e LEFT JOIN users u ON u.id = e.user_id "
        "WHERE ($1::text IS NULL OR u.name = $1) AND ($2::bigint IS NULL OR "
        "e.finished_unix >= $2) ORDER BY e.id",
        {q.user, q.since});
    if (!rows) return Unexpected(rows.error());
    std::vector<StoredEvent> out;
    for (int i = 0; i < rows->size(); ++i) {
      out.push_back({.webhook_id = rows->string(i, 0),
                     .user = rows->string(i, 1),
                     .model = rows->string(i, 2),
                     .status = rows->string(i, 3),
                     .prompt_tokens = rows->int64(i, 4),
                     .completion_tokens = rows->int64(i, 5),
                     .total_tokens = rows->int64(i, 6),
                     .cost_micros = rows->int64(i, 7),
                     .finished_at = rows->string(i, 8),
                     .received_at = rows->int64(i, 9),
                     .body = rows->string(i, 10)});
    }
    if (auto ok = rows->check(); !ok) return Unexpected(ok.error());
    return out;
  }

  Result<void> pin_server(const PinnedServer& p) override {
    return done(db_.execute(
        "INSERT INTO servers(id, url, jwks, leeway, pinned_at) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (id) DO UPDATE SET url = excluded.url, jwks = excluded.jwks, "
        "leeway = excluded.leeway, pinned_at = excluded.pinned_at",
        {p.id, p.url, p.jwks, p.leeway, p.pinned_at}));
  }

  Result<std::optional<PinnedServer>> pinned_server(std::string_view id) override {
    auto rows =
        db_.query("SELECT id, url, jwks, leeway, pinned_at FROM servers WHERE id = $1", {id});
    if (!rows) return Unexpected(rows.error());
    std::optional<PinnedServer> out;
    if (rows->size() > 0) {
      out = PinnedServer{.id = rows->string(0, 0),
                         .url = rows->string(0, 1),
                         .jwks = rows->string(0, 2),
                         .leeway = rows->int64(0, 3),
                         .pinned_at = rows->int64(0, 4)};
    }
    if (auto ok = rows->check(); !ok) return Unexpected(ok.error());
    return out;
  }

  Result<void> activate_signing_key(std::string_view kid, std::string_view public_jwk,
                                    std::int64_t now) override {
    auto tx = db_.begin();
    if (!tx) return Unexpected(tx.error());
    auto others = db_.execute(
        "UPDATE signing_keys SET state = 'retiring', rotated_at = $2 "
        "WHERE kid <> $1 AND state = 'active'",
        {kid, now});
    if (!others) return Unexpected(others.error());
    auto added = db_.execute(
        "INSERT INTO signing_keys(kid, public_jwk, state, created_at) VALUES ($1, $2, 'active', "
        "$3) ON CONFLICT (kid) DO UPDATE SET state = 'active', rotated_at = NULL, "
        "retired_at = NULL",
        {kid, public_jwk, now});
    if (!added) return Unexpected(added.error());
    return tx->commit();
  }

  Result<std::vector<SigningKeyRecord>> signing_keys() override {
    auto rows = db_.query(
        "SELECT s.kid, s.public_jwk, s.state, s.created_at, s.rotated_at, "
        "(SELECT MAX(k.expires_at) FROM keys k WHERE k.kid = s.kid) "
        "FROM signing_keys s ORDER BY s.created_at, s.kid");
    if (!rows) return Unexpected(rows.error());
    std::vector<SigningKeyRecord> out;
    for (int i = 0; i < rows->size(); ++i) {
      auto state = parse_state(rows->text(i, 2));
      if (!state) return Unexpected(Error::store_unavailable);
      out.push_back({.kid = rows->string(i, 0),
                     .public_jwk = rows->string(i, 1),
                     .state = *state,
                     .created_at = rows->int64(i, 3),
                     .rotated_at = rows->optional_int64(i, 4),
                     .last_expiry = rows->optional_int64(i, 5)});
    }
    if (auto ok = rows->check(); !ok) return Unexpected(ok.error());
    return out;
  }

  Result<void> retire_signing_key(std::string_view kid, std::int64_t now) override {
    return done(db_.execute(
        "UPDATE signing_keys SET state = 'retired', retired_at = $2 WHERE kid = $1", {kid, now}));
  }

 private:
  // The user's row is locked first, in a statement of its own: the reads after it start
  // after the lock was granted, so they see every key a concurrent mint committed before.
  Result<MintState> locked_mint_state(std::int64_t user_id, std::string_view day, std::int64_t now,
                                      std::int64_t grace) {
    auto user = db_.query("SELECT credit_micros FROM users WHERE id = $1 FOR UPDATE", {user_id});
    if (!user) return Unexpected(user.error());
    if (user->size() == 0) return Unexpected(Error::user_unknown);
    MintState m{.credit_micros = user->int64(0, 0)};
    if (auto ok = user->check(); !ok) return Unexpected(ok.error());
    // A key reserves what it has not spent yet, until every use is reported or it is dead
    // (exp + grace <= now). Written as expires_at > now - grace so the index serves the range.
    auto held = db_.query(
        "SELECT COALESCE((SELECT tokens FROM daily_usage WHERE user_id = $1 AND day = $2), 0), "
        "COALESCE(SUM(GREATEST(0, budget - tokens_reported)), 0)::bigint, "
        "COALESCE(SUM(GREATEST(0, reserved_micros - cost_reported)), 0)::bigint FROM keys "
        "WHERE user_id = $1 AND expires_at > $3 AND budget IS NOT NULL AND uses_reported < uses",
        {user_id, day, now - grace});
    if (!held) return Unexpected(held.error());
    m.tokens_today = held->int64(0, 0);
    m.reserved_tokens = held->int64(0, 1);
    m.reserved_micros = held->int64(0, 2);
    if (auto ok = held->check(); !ok) return Unexpected(ok.error());
    return m;
  }

  // One event of record_events, inside its savepoint. A duplicate writes nothing.
  Result<Recorded> record_one(const NewEvent& n) {
    const UsageEvent& e = n.event;
    auto user = first_user(db_.query(kEventUser, {e.event_id, e.sub}));
    if (!user) return Unexpected(user.error());
    Recorded out;
    if (*user) {
      out.user = (*user)->name;
      out.cost_micros = std::clamp<std::int64_t>(n.cost ? n.cost(**user) : 0, 0, kMaxMoneyMicros);
    }
    const std::string webhook_id = e.webhook_id();
    const std::string day = utc_day(e.finished_unix);
    const std::optional<std::int64_t> user_id =
        *user ? std::optional<std::int64_t>((*user)->id) : std::nullopt;
    auto inserted =
        db_.execute(kInsertEvent,
                    {webhook_id, e.event_id, e.use, user_id, e.sub, e.model, e.status,
                     e.prompt_tokens, e.completion_tokens, e.total_tokens, out.cost_micros,
                     e.started_at, e.finished_at, e.finished_unix, day, n.received_at, n.raw_body});
    if (!inserted) return Unexpected(inserted.error());
    if (*inserted == 0) return Recorded{.duplicate = true};
    if (!*user) return out;
    if (auto ok = charge(**user, e, webhook_id, day, n.received_at, out.cost_micros); !ok) {
      return Unexpected(ok.error());
    }
    return out;
  }

  // The key's tallies, the day's usage and the balance with its ledger row, in one round trip.
  Result<void> charge(const User& user, const UsageEvent& e, const std::string& webhook_id,
                      const std::string& day, std::int64_t now, std::int64_t cost) {
    std::vector<PgCall> calls;
    calls.push_back({kChargeKey, {e.event_id, e.total_tokens, cost}});
    calls.push_back({kChargeDay, {user.id, day, e.total_tokens, cost}});
    if (cost != 0) {
      calls.push_back({kMoveBalance, {user.id, -cost, now, "usage", kMaxMoneyMicros, webhook_id}});
    }
    auto results = db_.pipeline(calls);
    if (!results) return Unexpected(results.error());
    for (const auto& r : *results) {
      if (!r) return Unexpected(r.error());
    }
    return {};
  }

  Postgres db_;
};

}  // namespace

Result<std::unique_ptr<BackendStore>> open_postgres_store(std::string_view url,
                                                          std::string* message) {
  auto db = Postgres::connect(url, {.application_name = "dynaseal-backend"}, message);
  if (!db) return Unexpected(db.error());
  if (auto ok = store::migrate(*db, "backend", backend_postgres_migrations(), message); !ok) {
    return Unexpected(ok.error());
  }
  return std::make_unique<PostgresBackendStore>(std::move(*db));
}

}  // namespace dynaseal::backend
