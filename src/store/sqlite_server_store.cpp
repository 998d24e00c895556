#include "store/sqlite_server_store.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace dynaseal::store {
namespace {

constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE outbox (
  id              INTEGER PRIMARY KEY,
  iss             TEXT    NOT NULL,
  event_id        TEXT    NOT NULL,
  use_number      INTEGER NOT NULL,
  state           TEXT    NOT NULL CHECK (state IN ('open', 'pending', 'delivered', 'dead')),
  owner           TEXT    NOT NULL,
  body            TEXT    NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  created_ms      INTEGER NOT NULL,
  queued_ms       INTEGER,
  next_attempt_ms INTEGER,
  lease_until_ms  INTEGER NOT NULL DEFAULT 0,
  finished_ms     INTEGER,
  last_status     INTEGER,
  last_error      TEXT,
  UNIQUE (iss, event_id, use_number)
);
CREATE INDEX outbox_due ON outbox (state, iss, next_attempt_ms);
CREATE INDEX outbox_finished ON outbox (state, finished_ms);
CREATE TABLE backends (
  id           TEXT PRIMARY KEY,
  jwks         TEXT NOT NULL,
  callback_url TEXT NOT NULL
);
)sql"},
    // The dispatcher asks for the earliest due event across backends whenever it goes idle;
    // without this index that is a scan of every pending event.
    {2, "CREATE INDEX outbox_next ON outbox (state, next_attempt_ms);"},
    // Replicas' heartbeats (recover_stale), and which pending events were recovered from open
    // (a late Finalize may still replace their interrupted body, server_store.hpp).
    {3, R"sql(
ALTER TABLE outbox ADD COLUMN recovered INTEGER NOT NULL DEFAULT 0;
CREATE TABLE replicas (
  owner        TEXT    PRIMARY KEY,
  heartbeat_ms INTEGER NOT NULL
);
)sql"},
    // Partial indexes, one per state that is looked up: an event is in one of them at a time,
    // so opening a record touches the table, the unique key and `outbox_open` (three pages of
    // the WAL, not five), and finalizing it moves it from `outbox_open` to the pending ones.
    // Every query below names its state as a literal, which is what lets SQLite use them.
    {4, R"sql(
DROP INDEX outbox_due;
DROP INDEX outbox_next;
DROP INDEX outbox_finished;
CREATE INDEX outbox_open ON outbox (owner) WHERE state = 'open';
CREATE INDEX outbox_due ON outbox (iss, next_attempt_ms) WHERE state = 'pending';
CREATE INDEX outbox_next ON outbox (next_attempt_ms) WHERE state = 'pending';
CREATE INDEX outbox_delivered ON outbox (finished_ms) WHERE state = 'delivered';
CREATE INDEX outbox_dead ON outbox (finished_ms) WHERE state = 'dead';
)sql"},
    // used_keys at start reads the records of the last key lifetime, not the whole table.
    {5, "CREATE INDEX outbox_created ON outbox (created_ms);"},
    // The sweep's two looks at pending events by age, every 10 s: without outbox_queued,
    // expire() read every pending event's row and stats() every pending one's index entry
    // (outbox_next was used by nothing since the earliest due event is asked per backend). And
    // the events per state, kept by the transactions that change them: stats() counted every
    // event kept for `retention` (a week of traffic) on the DB thread, every sweep.
    {6, R"sql(
DROP INDEX outbox_next;
CREATE INDEX outbox_queued ON outbox (queued_ms) WHERE state = 'pending';
CREATE TABLE outbox_counts (
  one         INTEGER PRIMARY KEY CHECK (one = 1),
  n_open      INTEGER NOT NULL,
  n_pending   INTEGER NOT NULL,
  n_delivered INTEGER NOT NULL,
  n_dead      INTEGER NOT NULL
);
INSERT INTO outbox_counts VALUES (1,
  (SELECT COUNT(*) FROM outbox WHERE state = 'open'),
  (SELECT COUNT(*) FROM outbox WHERE state = 'pending'),
  (SELECT COUNT(*) FROM outbox WHERE state = 'delivered'),
  (SELECT COUNT(*) FROM outbox WHERE state = 'dead'));
)sql"},
};

}  // namespace

std::unique_ptr<SqliteServerStore> SqliteServerStore::open(const std::filesystem::path& path,
                                                           std::string* message) {
  auto db = Sqlite::open(path);
  if (!db) {
    *message = "cannot open " + path.string();
    return nullptr;
  }
  if (auto migrated = migrate(*db, kMigrations, message); !migrated) {
    if (message->empty()) *message = db->error_message();
    return nullptr;
  }
  auto store = std::unique_ptr<SqliteServerStore>(new SqliteServerStore(std::move(*db)));
  // Requests wait for their outbox commits: checkpoints (and their fsyncs) go elsewhere.
  if (path != ":memory:") {
    try {
      store->checkpointer_ = std::make_unique<SqliteCheckpointer>(store->db_, path);
    } catch (const std::exception& e) {
      *message = e.what();
      return nullptr;
    }
  }
  return store;
}

namespace {

// The Finalize right after an Open of the same key, if writes[i] is such an Open. A request
// that finished before its Open was committed has both in one batch, side by side: the
// DbWorker puts a held Open just before its Finalize (db_worker.hpp).
const outbox::Finalize* finalize_after(const std::vector<OutboxWrite>& writes, std::size_t i) {
  const auto* open = std::get_if<outbox::Open>(&writes[i]);
  if (open == nullptr || i + 1 == writes.size()) return nullptr;
  const auto* fin = std::get_if<outbox::Finalize>(&writes[i + 1]);
  if (fin == nullptr) return nullptr;
  const OutboxKey &a = open->key, &b = fin->key;
  return a.use == b.use && a.event_id == b.event_id && a.iss == b.iss ? fin : nullptr;
}

}  // namespace

Result<std::vector<OutboxWriteResult>> SqliteServerStore::apply(
    const std::vector<OutboxWrite>& writes) {
  auto tx = db_.begin();
  if (!tx) return Unexpected(tx.error());
  moved_ = {};
  std::vector<OutboxWriteResult> results(writes.size());
  for (std::size_t i = 0; i < writes.size(); ++i) {
    // An Open with its Finalize: one insert of the finished record instead of an insert and
    // an update. If the key exists, the Open conflicts and the Finalize is applied at its
    // turn, as it would be alone.
    const outbox::Finalize* fin = finalize_after(writes, i);
    const OutboxWriteResult r =
        fin ? insert_finished(std::get<outbox::Open>(writes[i]), *fin) : apply_one(writes[i]);
    if (r == Error::store_unavailable) return Unexpected(Error::store_unavailable);
    results[i] = r;
    if (fin && !r) ++i;  // the Finalize is done too (its result: none)
  }
  if (!save_counts()) return Unexpected(Error::store_unavailable);
  if (auto committed = tx->commit(); !committed) return Unexpected(committed.error());
  return results;
}

OutboxWriteResult SqliteServerStore::insert_finished(const outbox::Open& open,
                                                     const outbox::Finalize& fin) {
  Statement& s = db_.statement(
      "INSERT INTO outbox (iss, event_id, use_number, state, owner, body, created_ms, queued_ms, "
      "next_attempt_ms) VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7, ?7) ON CONFLICT DO NOTHING");
  auto ok = s.bind(1, open.key.iss)
                .bind(2, open.key.event_id)
                .bind(3, open.key.use)
                .bind(4, open.owner)
                .bind(5, fin.body)
                .bind(6, open.now_ms)
                .bind(7, fin.now_ms)
                .run();
  if (!ok) return Error::store_unavailable;
  if (db_.changes() != 1) return Error::conflict;
  ++moved_.pending;
  return {};
}

OutboxWriteResult SqliteServerStore::apply_one(const OutboxWrite& write) {
  if (const auto* open = std::get_if<outbox::Open>(&write)) {
    Statement& s = db_.statement(
        "INSERT INTO outbox (iss, event_id, use_number, state, owner, body, created_ms) "
        "VALUES (?1, ?2, ?3, 'open', ?4, ?5, ?6) ON CONFLICT DO NOTHING");
    auto ok = s.bind(1, open->key.iss)
                  .bind(2, open->key.event_id)
                  .bind(3, open->key.use)
                  .bind(4, open->owner)
                  .bind(5, open->interrupted_body)
                  .bind(6, open->now_ms)
                  .run();
    if (!ok) return Error::store_unavailable;
    if (db_.changes() != 1) return Error::conflict;
    ++moved_.open;
    return {};
  }
  if (const auto* fin = std::get_if<outbox::Finalize>(&write)) return finalize(*fin);
  if (const auto* done = std::get_if<outbox::Delivered>(&write)) {
    Statement& s = db_.statement(
        "UPDATE outbox SET state = 'delivered', finished_ms = ?2, last_status = ?3, "
        "attempts = attempts + 1, lease_until_ms = 0, last_error = NULL "
        "WHERE id = ?1 AND state = 'pending'");
    if (!s.bind(1, done->id).bind(2, done->now_ms).bind(3, done->http_status).run()) {
      return Error::store_unavailable;
    }
    if (db_.changes() != 1) return Error::not_found;
    --moved_.pending;
    ++moved_.delivered;
    return {};
  }
  const auto& failed = std::get<outbox::Failed>(write);
  Statement& s = db_.statement(
      "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, lease_until_ms = 0, "
      "next_attempt_ms = ?3, state = CASE WHEN ?4 THEN 'dead' ELSE 'pending' END, "
      "finished_ms = CASE WHEN ?4 THEN ?5 ELSE NULL END "
      "WHERE id = ?1 AND state = 'pending'");
  auto ok = s.bind(1, failed.id)
                .bind(2, failed.error)
                .bind(3, failed.next_attempt_ms)
                .bind(4, failed.dead ? 1 : 0)
                .bind(5, failed.now_ms)
                .run();
  if (!ok) return Error::store_unavailable;
  if (db_.changes() != 1) return Error::not_found;
  if (failed.dead) {
    --moved_.pending;
    ++moved_.dead;
  }
  return {};
}

// The record goes from open to pending; or, while nobody claimed it, a pending event recovered
// from an open record (a restart, a silent replica) takes its late final body.
OutboxWriteResult SqliteServerStore::finalize(const outbox::Finalize& fin) {
  const auto update = [&](Statement& s) {
    return s.bind(1, fin.key.iss)
        .bind(2, fin.key.event_id)
        .bind(3, fin.key.use)
        .bind(4, fin.body)
        .bind(5, fin.now_ms)
        .run();
  };
  Statement& opened = db_.statement(
      "UPDATE outbox SET state = 'pending', body = ?4, queued_ms = ?5, next_attempt_ms = ?5 "
      "WHERE iss = ?1 AND event_id = ?2 AND use_number = ?3 AND state = 'open'");
  if (!update(opened)) return Error::store_unavailable;
  if (db_.changes() == 1) {
    --moved_.open;
    ++moved_.pending;
    return {};
  }
  Statement& recovered = db_.statement(
      "UPDATE outbox SET body = ?4, queued_ms = ?5, next_attempt_ms = ?5, recovered = 0 "
      "WHERE iss = ?1 AND event_id = ?2 AND use_number = ?3 AND state = 'pending' "
      "AND recovered = 1 AND attempts = 0 AND lease_until_ms = 0");
  if (!update(recovered)) return Error::store_unavailable;
  return db_.changes() == 1 ? OutboxWriteResult{} : Error::not_found;
}

Result<void> SqliteServerStore::save_counts() {
  const Counts moved = std::exchange(moved_, {});
  if (moved.open == 0 && moved.pending == 0 && moved.delivered == 0 && moved.dead == 0) return {};
  Statement& s = db_.statement(
      "UPDATE outbox_counts SET n_open = n_open + ?1, n_pending = n_pending + ?2, "
      "n_delivered = n_delivered + ?3, n_dead = n_dead + ?4");
  return s.bind(1, moved.open)
      .bind(2, moved.pending)
      .bind(3, moved.delivered)
      .bind(4, moved.dead)
      .run();
}

Result<std::vector<OutboxEvent>> SqliteServerStore::claim_due(std::string_view iss,
                                                              std::int64_t now_ms,
                                                              std::size_t limit,
                                                              std::int64_t lease_ms) {
  Statement& s = db_.statement(
      "UPDATE outbox SET lease_until_ms = ?1 + ?4 WHERE id IN ("
      "  SELECT id FROM outbox WHERE state = 'pending' AND iss = ?2 AND next_attempt_ms <= ?1"
      "  AND lease_until_ms <= ?1 ORDER BY next_attempt_ms LIMIT ?3) "
      "RETURNING id, iss, event_id || '.' || use_number, body, attempts, queued_ms");
  s.bind(1, now_ms).bind(2, iss).bind(3, static_cast<std::int64_t>(limit)).bind(4, lease_ms);
  std::vector<OutboxEvent> events;
  for (;;) {
    auto row = s.step();
    if (!row) return Unexpected(row.error());
    if (!*row) break;
    events.push_back({.id = s.int64(0),
                      .iss = s.string(1),
                      .webhook_id = s.string(2),
                      .body = s.string(3),
                      .attempts = s.int64(4),
                      .queued_ms = s.int64(5)});
  }
  return events;
}

Result<std::int64_t> SqliteServerStore::recover(std::string_view owner, std::int64_t now_ms) {
  auto tx = db_.begin();
  if (!tx) return Unexpected(tx.error());
  Statement& open = db_.statement(
      "UPDATE outbox SET state = 'pending', queued_ms = ?2, next_attempt_ms = ?2, recovered = 1 "
      "WHERE state = 'open' AND owner = ?1");
  if (auto ok = open.bind(1, owner).bind(2, now_ms).run(); !ok) return Unexpected(ok.error());
  const std::int64_t recovered = db_.changes();
  moved_ = {.open = -recovered, .pending = recovered};
  // One process owns a SQLite file: whatever leases exist were this process's before it died.
  // A leased event may have been sent: no late Finalize may change its body any more.
  Statement& leases = db_.statement(
      "UPDATE outbox SET lease_until_ms = 0, recovered = 0 "
      "WHERE state = 'pending' AND lease_until_ms > 0");
  if (auto ok = leases.run(); !ok) return Unexpected(ok.error());
  if (auto ok = save_counts(); !ok) return Unexpected(ok.error());
  if (auto ok = tx->commit(); !ok) return Unexpected(ok.error());
  return recovered;
}

Result<void> SqliteServerStore::heartbeat(std::string_view owner, std::int64_t now_ms) {
  Statement& s = db_.statement(
      "INSERT INTO replicas (owner, heartbeat_ms) VALUES (?1, ?2) ON CONFLICT (owner) "
      "DO UPDATE SET heartbeat_ms = MAX(heartbeat_ms, excluded.heartbeat_ms)");
  return s.bind(1, owner).bind(2, now_ms).run();
}

Result<std::int64_t> SqliteServerStore::recover_stale(std::int64_t stale_before_ms,
                                                      std::int64_t now_ms) {
  auto tx = db_.begin();
  if (!tx) return Unexpected(tx.error());
  Statement& open = db_.statement(
      "UPDATE outbox SET state = 'pending', queued_ms = ?2, next_attempt_ms = ?2, recovered = 1 "
      "WHERE state = 'open' AND created_ms < ?1 AND NOT EXISTS (SELECT 1 FROM replicas r "
      "WHERE r.owner = outbox.owner AND r.heartbeat_ms >= ?1)");
  if (auto ok = open.bind(1, stale_before_ms).bind(2, now_ms).run(); !ok) {
    return Unexpected(ok.error());
  }
  const std::int64_t recovered = db_.changes();
  moved_ = {.open = -recovered, .pending = recovered};
  Statement& forget = db_.statement(
      "DELETE FROM replicas WHERE heartbeat_ms < ?1 AND NOT EXISTS (SELECT 1 FROM outbox o "
      "WHERE o.state = 'open' AND o.owner = replicas.owner)");
  if (auto ok = forget.bind(1, stale_before_ms).run(); !ok) return Unexpected(ok.error());
  if (auto ok = save_counts(); !ok) return Unexpected(ok.error());
  if (auto ok = tx->commit(); !ok) return Unexpected(ok.error());
  return recovered;
}

Result<std::int64_t> SqliteServerStore::expire(std::int64_t cutoff_ms,
                                               std::int64_t retention_cutoff_ms,
                                               std::int64_t now_ms) {
  auto tx = db_.begin();
  if (!tx) return Unexpected(tx.error());
  Statement& die = db_.statement(
      "UPDATE outbox SET state = 'dead', finished_ms = ?2, "
      "last_error = 'expired: ' || COALESCE(last_error, 'never attempted') "
      "WHERE state = 'pending' AND queued_ms < ?1 AND lease_until_ms <= ?2");
  if (auto ok = die.bind(1, cutoff_ms).bind(2, now_ms).run(); !ok) return Unexpected(ok.error());
  const std::int64_t died = db_.changes();
  Statement& drop =
      db_.statement("DELETE FROM outbox WHERE state = 'delivered' AND finished_ms < ?1");
  if (auto ok = drop.bind(1, retention_cutoff_ms).run(); !ok) return Unexpected(ok.error());
  moved_ = {.pending = -died, .delivered = -db_.changes(), .dead = died};
  if (auto ok = save_counts(); !ok) return Unexpected(ok.error());
  if (auto ok = tx->commit(); !ok) return Unexpected(ok.error());
  return died;
}

Result<std::optional<std::int64_t>> SqliteServerStore::next_due_ms(std::string_view iss) {
  Statement& s =
      db_.statement("SELECT MIN(next_attempt_ms) FROM outbox WHERE state = 'pending' AND iss = ?1");
  s.bind(1, iss);
  auto row = s.step();
  if (!row) return Unexpected(row.error());
  std::optional<std::int64_t> due;
  if (*row && !s.is_null(0)) due = s.int64(0);
  s.reset();
  return due;
}

Result<OutboxStats> SqliteServerStore::stats() {
  // The counts the transactions kept, and the first entry of outbox_queued: no scan.
  Statement& s = db_.statement(
      "SELECT n_open, n_pending, n_delivered, n_dead, "
      "(SELECT MIN(queued_ms) FROM outbox WHERE state = 'pending') FROM outbox_counts");
  auto row = s.step();
  if (!row) return Unexpected(row.error());
  if (!*row) return Unexpected(Error::store_unavailable);  // the row is gone: not our schema
  OutboxStats out{.open = s.int64(0),
                  .pending = s.int64(1),
                  .delivered = s.int64(2),
                  .dead = s.int64(3),
                  .oldest_pending_ms = s.is_null(4) ? 0 : s.int64(4)};
  s.reset();
  if (out.open < 0 || out.pending < 0 || out.delivered < 0 || out.dead < 0) {
    return Unexpected(Error::store_unavailable);  // edited by hand: the counts mean nothing
  }
  return out;
}

Result<std::vector<UsedKey>> SqliteServerStore::used_keys(std::int64_t since_ms) {
  // TOTAL (a float) cannot overflow as SUM can; tokens are clamped when read. Without INDEXED
  // BY, SQLite would walk the whole table in the unique key's order for the GROUP BY.
  Statement& s = db_.statement(
      "SELECT iss, event_id, MAX(use_number), TOTAL(CASE WHEN json_valid(body) THEN "
      "CASE json_type(body, '$.usage.total_tokens') WHEN 'integer' THEN "
      "MAX(json_extract(body, '$.usage.total_tokens'), 0) END END), MIN(created_ms) "
      "FROM outbox INDEXED BY outbox_created WHERE created_ms >= ?1 GROUP BY iss, event_id");
  s.bind(1, since_ms);
  std::vector<UsedKey> out;
  for (;;) {
    auto row = s.step();
    if (!row) return Unexpected(row.error());
    if (!*row) break;
    constexpr double kMaxTokens = 1e18;
    out.push_back({.iss = std::string(s.text(0)),
                   .event_id = std::string(s.text(1)),
                   .uses = s.int64(2),
                   .spent_tokens = static_cast<std::int64_t>(std::min(s.real(3), kMaxTokens)),
                   .first_ms = s.int64(4)});
  }
  s.reset();
  return out;
}

Result<std::vector<DeadLetter>> SqliteServerStore::dead_letters(std::size_t limit) {
  Statement& s = db_.statement(
      "SELECT iss, event_id || '.' || use_number, attempts, COALESCE(last_error, ''), "
      "COALESCE(queued_ms, created_ms), COALESCE(finished_ms, 0), body FROM outbox "
      "WHERE state = 'dead' ORDER BY finished_ms DESC, id DESC LIMIT ?1");
  s.bind(1, static_cast<std::int64_t>(limit));
  std::vector<DeadLetter> out;
  for (;;) {
    auto row = s.step();
    if (!row) return Unexpected(row.error());
    if (!*row) break;
    out.push_back({.iss = s.string(0),
                   .webhook_id = s.string(1),
                   .attempts = s.int64(2),
                   .last_error = s.string(3),
                   .queued_ms = s.int64(4),
                   .died_ms = s.int64(5),
                   .body = s.string(6)});
  }
  return out;
}

Result<std::int64_t> SqliteServerStore::replay(std::string_view iss, std::string_view webhook_id,
                                               std::int64_t now_ms) {
  Statement& s = db_.statement(
      "UPDATE outbox SET state = 'pending', attempts = 0, queued_ms = ?1, next_attempt_ms = ?1, "
      "lease_until_ms = 0, finished_ms = NULL, recovered = 0 WHERE state = 'dead' "
      "AND (?2 = '' OR iss = ?2) AND (?3 = '' OR event_id || '.' || use_number = ?3)");
  auto tx = db_.begin();
  if (!tx) return Unexpected(tx.error());
  auto ok = s.bind(1, now_ms).bind(2, iss).bind(3, webhook_id).run();
  if (!ok) return Unexpected(ok.error());
  const std::int64_t replayed = db_.changes();
  moved_ = {.pending = replayed, .dead = -replayed};
  if (auto saved = save_counts(); !saved) return Unexpected(saved.error());
  if (auto committed = tx->commit(); !committed) return Unexpected(committed.error());
  return replayed;
}

Result<std::vector<RegisteredBackend>> SqliteServerStore::backends() {
  Statement& s = db_.statement("SELECT id, jwks, callback_url FROM backends ORDER BY id");
  std::vector<RegisteredBackend> out;
  for (;;) {
    auto row = s.step();
    if (!row) return Unexpected(row.error());
    if (!*row) break;
    out.push_back({.id = s.string(0), .jwks = s.string(1), .callback_url = s.string(2)});
  }
  return out;
}

Result<void> SqliteServerStore::put_backend(const RegisteredBackend& b) {
  Statement& s = db_.statement(
      "INSERT INTO backends (id, jwks, callback_url) VALUES (?1, ?2, ?3) "
      "ON CONFLICT (id) DO UPDATE SET jwks = excluded.jwks, callback_url = excluded.callback_url");
  return s.bind(1, b.id).bind(2, b.jwks).bind(3, b.callback_url).run();
}

Result<void> SqliteServerStore::delete_backend(std::string_view id) {
  return db_.statement("DELETE FROM backends WHERE id = ?1").bind(1, id).run();
}

}  // namespace dynaseal::store
