#include "store/postgres_server_store.hpp"

#include <algorithm>

#include <boost/json/parse.hpp>

namespace dynaseal::store {
namespace {

constexpr PgMigration kMigrations[] = {
    {1, R"sql(
CREATE TABLE outbox (
  id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  iss             TEXT    NOT NULL,
  event_id        TEXT    NOT NULL,
  use_number      BIGINT  NOT NULL,
  state           TEXT    NOT NULL CHECK (state IN ('open', 'pending', 'delivered', 'dead')),
  owner           TEXT    NOT NULL,
  body            TEXT    NOT NULL,
  attempts        BIGINT  NOT NULL DEFAULT 0,
  created_ms      BIGINT  NOT NULL,
  queued_ms       BIGINT,
  next_attempt_ms BIGINT,
  lease_until_ms  BIGINT  NOT NULL DEFAULT 0,
  finished_ms     BIGINT,
  last_status     INTEGER,
  last_error      TEXT,
  recovered       BOOLEAN NOT NULL DEFAULT FALSE,
  UNIQUE (iss, event_id, use_number)
);
CREATE INDEX outbox_due ON outbox (iss, next_attempt_ms) WHERE state = 'pending';
CREATE INDEX outbox_next ON outbox (next_attempt_ms) WHERE state = 'pending';
CREATE INDEX outbox_open ON outbox (owner, created_ms) WHERE state = 'open';
CREATE INDEX outbox_finished ON outbox (state, finished_ms);
CREATE TABLE backends (
  id           TEXT PRIMARY KEY,
  jwks         TEXT NOT NULL,
  callback_url TEXT NOT NULL
);
CREATE TABLE replicas (
  owner        TEXT   PRIMARY KEY,
  heartbeat_ms BIGINT NOT NULL
);
)sql"},
    // used_keys at start reads the records of the last key lifetime, not the whole table.
    {2, "CREATE INDEX outbox_created ON outbox (created_ms);"},
};

constexpr std::string_view kOpen =
    "INSERT INTO outbox (iss, event_id, use_number, state, owner, body, created_ms) "
    "VALUES ($1, $2, $3, 'open', $4, $5, $6) ON CONFLICT DO NOTHING";
// From open; or a late Finalize of a recovered event nobody has claimed (server_store.hpp).
constexpr std::string_view kFinalize =
    "UPDATE outbox SET state = 'pending', body = $4, queued_ms = $5, next_attempt_ms = $5, "
    "recovered = FALSE WHERE iss = $1 AND event_id = $2 AND use_number = $3 AND (state = 'open' "
    "OR (state = 'pending' AND recovered AND attempts = 0 AND lease_until_ms = 0))";
constexpr std::string_view kDelivered =
    "UPDATE outbox SET state = 'delivered', finished_ms = $2, last_status = $3, "
    "attempts = attempts + 1, lease_until_ms = 0, last_error = NULL "
    "WHERE id = $1 AND state = 'pending'";
constexpr std::string_view kFailed =
    "UPDATE outbox SET attempts = attempts + 1, last_error = $2, lease_until_ms = 0, "
    "next_attempt_ms = $3, state = CASE WHEN $4::boolean THEN 'dead' ELSE 'pending' END, "
    "finished_ms = CASE WHEN $4::boolean THEN $5::bigint ELSE NULL END "
    "WHERE id = $1 AND state = 'pending'";

// The statement of one write; its parameters view the write, which outlives the call.
PgCall call_of(const OutboxWrite& write) {
  if (const auto* open = std::get_if<outbox::Open>(&write)) {
    return {kOpen,
            {open->key.iss, open->key.event_id, open->key.use, open->owner, open->interrupted_body,
             open->now_ms}};
  }
  if (const auto* fin = std::get_if<outbox::Finalize>(&write)) {
    return {kFinalize, {fin->key.iss, fin->key.event_id, fin->key.use, fin->body, fin->now_ms}};
  }
  if (const auto* done = std::get_if<outbox::Delivered>(&write)) {
    return {kDelivered, {done->id, done->now_ms, done->http_status}};
  }
  const auto& f = std::get<outbox::Failed>(write);
  return {kFailed, {f.id, f.error, f.next_attempt_ms, f.dead, f.now_ms}};
}

// A write that changed no row: an Open that exists (conflict), anything else not_found.
OutboxWriteResult outcome(const OutboxWrite& write, std::int64_t changed) {
  if (changed == 1) return std::nullopt;
  return std::holds_alternative<outbox::Open>(write) ? Error::conflict : Error::not_found;
}

// usage.total_tokens of an event body, or 0 when the body is not JSON or has no such integer.
constexpr std::int64_t kMaxTokens = 1'000'000'000'000'000'000;
std::int64_t usage_total_tokens(std::string_view body) {
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) return 0;
  const auto* usage = v.as_object().if_contains("usage");
  if (usage == nullptr || !usage->is_object()) return 0;
  const auto* total = usage->as_object().if_contains("total_tokens");
  if (total == nullptr || !total->is_int64()) return 0;
  return std::clamp<std::int64_t>(total->as_int64(), 0, kMaxTokens);
}

}  // namespace

std::span<const PgMigration> server_postgres_migrations() { return kMigrations; }

std::unique_ptr<PostgresServerStore> PostgresServerStore::open(std::string_view url,
                                                               std::string* message) {
  auto db = Postgres::connect(url, {.application_name = "dynaseal-server"}, message);
  if (!db) return nullptr;
  if (auto migrated = migrate(*db, "server", kMigrations, message); !migrated) return nullptr;
  return std::unique_ptr<PostgresServerStore>(new PostgresServerStore(std::move(*db)));
}

Result<std::vector<OutboxWriteResult>> PostgresServerStore::apply(
    const std::vector<OutboxWrite>& writes) {
  std::vector<PgCall> calls;
  calls.reserve(writes.size());
  for (const OutboxWrite& w : writes) calls.push_back(call_of(w));
  std::vector<OutboxWriteResult> results;
  results.reserve(writes.size());
  if (calls.size() == 1) {  // an idle server's write: one statement is its own transaction
    auto rows = db_.query(calls[0].sql, calls[0].params);
    if (!rows) return Unexpected(Error::store_unavailable);
    results.push_back(outcome(writes[0], rows->affected()));
    return results;
  }
  auto tx = db_.begin();
  if (!tx) return Unexpected(tx.error());
  auto done = db_.pipeline(calls);
  if (!done) return Unexpected(done.error());
  for (std::size_t i = 0; i < writes.size(); ++i) {
    // None of these statements fails on data: any error means the transaction is gone.
    if (!(*done)[i]) return Unexpected(Error::store_unavailable);
    results.push_back(outcome(writes[i], (*done)[i]->affected()));
  }
  if (auto committed = tx->commit(); !committed) return Unexpected(committed.error());
  return results;
}

Result<std::vector<OutboxEvent>> PostgresServerStore::claim_due(std::string_view iss,
                                                                std::int64_t now_ms,
                                                                std::size_t limit,
                                                                std::int64_t lease_ms) {
  // SKIP LOCKED: rows another replica is claiming right now are left to it. A row it claimed
  // and committed meanwhile is re-checked against the WHERE clause and no longer due.
  auto rows = db_.query(
      "WITH due AS (SELECT id FROM outbox WHERE state = 'pending' AND iss = $2 "
      "  AND next_attempt_ms <= $1 AND lease_until_ms <= $1 ORDER BY next_attempt_ms, id "
      "  LIMIT $3 FOR UPDATE SKIP LOCKED), "
      "claimed AS (UPDATE outbox o SET lease_until_ms = $1::bigint + $4::bigint FROM due "
      "  WHERE o.id = due.id RETURNING o.id, o.iss, o.event_id || '.' || o.use_number AS wid, "
      "  o.body, o.attempts, o.queued_ms, o.next_attempt_ms) "
      "SELECT id, iss, wid, body, attempts, queued_ms FROM claimed ORDER BY next_attempt_ms, id",
      {now_ms, iss, static_cast<std::int64_t>(limit), lease_ms});
  if (!rows) return Unexpected(rows.error());
  std::vector<OutboxEvent> events;
  events.reserve(static_cast<std::size_t>(rows->size()));
  for (int i = 0; i < rows->size(); ++i) {
    events.push_back({.id = rows->int64(i, 0),
                      .iss = rows->string(i, 1),
                      .webhook_id = rows->string(i, 2),
                      .body = rows->string(i, 3),
                      .attempts = rows->int64(i, 4),
                      .queued_ms = rows->int64(i, 5)});
  }
  if (auto ok = rows->check(); !ok) return Unexpected(ok.error());
  return events;
}

Result<std::int64_t> PostgresServerStore::recover(std::string_view owner, std::int64_t now_ms) {
  // Leases are left alone: other replicas may be delivering (server_store.hpp).
  return db_.execute(
      "UPDATE outbox SET state = 'pending', queued_ms = $2, next_attempt_ms = $2, "
      "recovered = TRUE WHERE state = 'open' AND owner = $1",
      {owner, now_ms});
}

Result<void> PostgresServerStore::heartbeat(std::string_view owner, std::int64_t now_ms) {
  auto done = db_.execute(
      "INSERT INTO replicas (owner, heartbeat_ms) VALUES ($1, $2) ON CONFLICT (owner) "
      "DO UPDATE SET heartbeat_ms = GREATEST(replicas.heartbeat_ms, excluded.heartbeat_ms)",
      {owner, now_ms});
  if (!done) return Unexpected(done.error());
  return {};
}

Result<std::int64_t> PostgresServerStore::recover_stale(std::int64_t stale_before_ms,
                                                        std::int64_t now_ms) {
  auto tx = db_.begin();
  if (!tx) return Unexpected(tx.error());
  // Two replicas doing this at once: the second waits for the first's row locks, then finds
  // those rows no longer open.
  auto recovered = db_.execute(
      "UPDATE outbox o SET state = 'pending', queued_ms = $2, next_attempt_ms = $2, "
      "recovered = TRUE WHERE o.state = 'open' AND o.created_ms < $1 AND NOT EXISTS "
      "(SELECT 1 FROM replicas r WHERE r.owner = o.owner AND r.heartbeat_ms >= $1)",
      {stale_before_ms, now_ms});
  if (!recovered) return Unexpected(recovered.error());
  auto forgotten = db_.execute(
      "DELETE FROM replicas r WHERE r.heartbeat_ms < $1 AND NOT EXISTS "
      "(SELECT 1 FROM outbox o WHERE o.state = 'open' AND o.owner = r.owner)",
      {stale_before_ms});
  if (!forgotten) return Unexpected(forgotten.error());
  if (auto ok = tx->commit(); !ok) return Unexpected(ok.error());
  return *recovered;
}

Result<std::int64_t> PostgresServerStore::expire(std::int64_t cutoff_ms,
                                                 std::int64_t retention_cutoff_ms,
                                                 std::int64_t now_ms) {
  auto tx = db_.begin();
  if (!tx) return Unexpected(tx.error());
  auto died = db_.execute(
      "UPDATE outbox SET state = 'dead', finished_ms = $2, "
      "last_error = 'expired: ' || COALESCE(last_error, 'never attempted') "
      "WHERE state = 'pending' AND queued_ms < $1 AND lease_until_ms <= $2",
      {cutoff_ms, now_ms});
  if (!died) return Unexpected(died.error());
  auto dropped = db_.execute("DELETE FROM outbox WHERE state = 'delivered' AND finished_ms < $1",
                             {retention_cutoff_ms});
  if (!dropped) return Unexpected(dropped.error());
  if (auto ok = tx->commit(); !ok) return Unexpected(ok.error());
  return *died;
}

Result<std::optional<std::int64_t>> PostgresServerStore::next_due_ms(std::string_view iss) {
  auto rows = db_.query(
      "SELECT MIN(next_attempt_ms) FROM outbox WHERE state = 'pending' AND iss = $1", {iss});
  if (!rows) return Unexpected(rows.error());
  const std::optional<std::int64_t> due = rows->optional_int64(0, 0);
  if (auto ok = rows->check(); !ok) return Unexpected(ok.error());
  return due;
}

Result<OutboxStats> PostgresServerStore::stats() {
  auto rows = db_.query("SELECT state, COUNT(*), MIN(queued_ms) FROM outbox GROUP BY state");
  if (!rows) return Unexpected(rows.error());
  OutboxStats out;
  for (int i = 0; i < rows->size(); ++i) {
    const std::string_view state = rows->text(i, 0);
    const std::int64_t n = rows->int64(i, 1);
    if (state == "open") out.open = n;
    if (state == "pending") {
      out.pending = n;
      out.oldest_pending_ms = rows->optional_int64(i, 2).value_or(0);
    }
    if (state == "delivered") out.delivered = n;
    if (state == "dead") out.dead = n;
  }
  if (auto ok = rows->check(); !ok) return Unexpected(ok.error());
  return out;
}

Result<std::vector<UsedKey>> PostgresServerStore::used_keys(std::int64_t since_ms) {
  // Bodies are read and summed here rather than cast to JSON in SQL: a cast that fails would
  // fail the whole query.
  auto rows = db_.query(
      "SELECT iss, event_id, use_number, created_ms, body FROM outbox WHERE created_ms >= $1 "
      "ORDER BY iss, event_id",
      {since_ms});
  if (!rows) return Unexpected(rows.error());
  std::vector<UsedKey> out;
  for (int i = 0; i < rows->size(); ++i) {
    const std::string_view iss = rows->text(i, 0);
    const std::string_view event_id = rows->text(i, 1);
    if (out.empty() || out.back().iss != iss || out.back().event_id != event_id) {
      out.push_back({.iss = std::string(iss),
                     .event_id = std::string(event_id),
                     .first_ms = rows->int64(i, 3)});
    }
    UsedKey& key = out.back();
    key.uses = std::max(key.uses, rows->int64(i, 2));
    key.first_ms = std::min(key.first_ms, rows->int64(i, 3));
    const std::int64_t tokens = usage_total_tokens(rows->text(i, 4));
    key.spent_tokens =
        tokens > kMaxTokens - key.spent_tokens ? kMaxTokens : key.spent_tokens + tokens;
  }
  if (auto ok = rows->check(); !ok) return Unexpected(ok.error());
  return out;
}

Result<std::vector<DeadLetter>> PostgresServerStore::dead_letters(std::size_t limit) {
  auto rows = db_.query(
      "SELECT iss, event_id || '.' || use_number, attempts, COALESCE(last_error, ''), "
      "COALESCE(queued_ms, created_ms), COALESCE(finished_ms, 0), body FROM outbox "
      "WHERE state = 'dead' ORDER BY finished_ms DESC, id DESC LIMIT $1",
      {static_cast<std::int64_t>(limit)});
  if (!rows) return Unexpected(rows.error());
  std::vector<DeadLetter> out;
  for (int i = 0; i < rows->size(); ++i) {
    out.push_back({.iss = rows->string(i, 0),
                   .webhook_id = rows->string(i, 1),
                   .attempts = rows->int64(i, 2),
                   .last_error = rows->string(i, 3),
                   .queued_ms = rows->int64(i, 4),
                   .died_ms = rows->int64(i, 5),
                   .body = rows->string(i, 6)});
  }
  if (auto ok = rows->check(); !ok) return Unexpected(ok.error());
  return out;
}

Result<std::int64_t> PostgresServerStore::replay(std::string_view iss, std::string_view webhook_id,
                                                 std::int64_t now_ms) {
  return db_.execute(
      "UPDATE outbox SET state = 'pending', attempts = 0, queued_ms = $1, next_attempt_ms = $1, "
      "lease_until_ms = 0, finished_ms = NULL, recovered = FALSE WHERE state = 'dead' "
      "AND ($2::text = '' OR iss = $2) "
      "AND ($3::text = '' OR event_id || '.' || use_number = $3)",
      {now_ms, iss, webhook_id});
}

Result<std::vector<RegisteredBackend>> PostgresServerStore::backends() {
  auto rows = db_.query("SELECT id, jwks, callback_url FROM backends ORDER BY id");
  if (!rows) return Unexpected(rows.error());
  std::vector<RegisteredBackend> out;
  for (int i = 0; i < rows->size(); ++i) {
    out.push_back(
        {.id = rows->string(i, 0), .jwks = rows->string(i, 1), .callback_url = rows->string(i, 2)});
  }
  if (auto ok = rows->check(); !ok) return Unexpected(ok.error());
  return out;
}

Result<void> PostgresServerStore::put_backend(const RegisteredBackend& b) {
  auto done = db_.execute(
      "INSERT INTO backends (id, jwks, callback_url) VALUES ($1, $2, $3) "
      "ON CONFLICT (id) DO UPDATE SET jwks = excluded.jwks, callback_url = excluded.callback_url",
      {b.id, b.jwks, b.callback_url});
  if (!done) return Unexpected(done.error());
  return {};
}

Result<void> PostgresServerStore::delete_backend(std::string_view id) {
  auto done = db_.execute("DELETE FROM backends WHERE id = $1", {id});
  if (!done) return Unexpected(done.error());
  return {};
}

}  // namespace dynaseal::store
