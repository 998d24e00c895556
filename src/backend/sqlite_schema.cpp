// The backend's SQLite schema, one migration per version (docs/backend.md, "Storage"). A new
// version appends a migration; a released one is never edited, since databases out there have
// already run it.

#include <array>

#include "backend/sqlite_store.hpp"

namespace dynaseal::backend {
namespace {

constexpr std::string_view kSchemaV1 = R"sql(
CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  plan TEXT NOT NULL,
  token_sha256 TEXT NOT NULL UNIQUE,
  credit_micros INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE TABLE keys (
  jti TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  model TEXT NOT NULL,
  kid TEXT NOT NULL,
  uses INTEGER NOT NULL,
  budget INTEGER,
  reserved_micros INTEGER NOT NULL,
  issued_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  uses_reported INTEGER NOT NULL DEFAULT 0,
  tokens_reported INTEGER NOT NULL DEFAULT 0,
  cost_reported INTEGER NOT NULL DEFAULT 0
);
-- The keys still holding a reservation: reported keys leave the index as they are reported,
-- so a mint reads only its user's outstanding keys, however many it minted before.
CREATE INDEX keys_outstanding ON keys(user_id, expires_at)
  WHERE budget IS NOT NULL AND uses_reported < uses;
CREATE INDEX keys_by_kid ON keys(kid, expires_at);
CREATE TABLE events (
  id INTEGER PRIMARY KEY,
  webhook_id TEXT NOT NULL UNIQUE,
  event_id TEXT NOT NULL,
  use INTEGER NOT NULL,
  user_id INTEGER REFERENCES users(id),
  sub TEXT NOT NULL,
  model TEXT NOT NULL,
  status TEXT NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  total_tokens INTEGER NOT NULL,
  cost_micros INTEGER NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  finished_unix INTEGER NOT NULL,
  day TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  body TEXT NOT NULL
);
CREATE INDEX events_by_user ON events(user_id, finished_unix);
CREATE INDEX events_by_time ON events(finished_unix);
CREATE TABLE daily_usage (
  user_id INTEGER NOT NULL REFERENCES users(id),
  day TEXT NOT NULL,
  tokens INTEGER NOT NULL,
  cost_micros INTEGER NOT NULL,
  events INTEGER NOT NULL,
  PRIMARY KEY (user_id, day)
) WITHOUT ROWID;
CREATE TABLE ledger (
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  at INTEGER NOT NULL,
  delta_micros INTEGER NOT NULL,
  balance_micros INTEGER NOT NULL,
  reason TEXT NOT NULL CHECK (reason IN ('credit', 'usage')),
  webhook_id TEXT REFERENCES events(webhook_id)
);
CREATE TABLE servers (
  id TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  jwks TEXT NOT NULL,
  leeway INTEGER NOT NULL,
  pinned_at INTEGER NOT NULL
);
CREATE TABLE signing_keys (
  kid TEXT PRIMARY KEY,
  public_jwk TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('active', 'retiring', 'retired')),
  created_at INTEGER NOT NULL,
  rotated_at INTEGER,
  retired_at INTEGER
);
)sql";

constexpr std::array<store::Migration, 1> kMigrations{{{1, kSchemaV1}}};

}  // namespace

std::span<const store::Migration> backend_migrations() { return kMigrations; }

}  // namespace dynaseal::backend
