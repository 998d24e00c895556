// The BackendStore on PostgreSQL (DESIGN §8): the same tables and semantics as the SQLite store
// (sqlite_store.hpp), shared by several backend processes. One connection per instance
// (store/postgres.hpp: prepared statements, reconnection after a failure); StorePool gives each
// worker thread its own. The schema is component "backend" of store::migrate, so it can share
// a database (and a schema) with the server's tables.
//
// What keeps several processes correct:
//   reserve_key     locks the user's row (SELECT ... FOR UPDATE) before reading what the user
//                   has reserved, so concurrent mints of one user take turns, and the second
//                   sees the first's key.
//   record_events   each event in a savepoint; the event row is inserted with ON CONFLICT
//                   (webhook_id) DO NOTHING, so a callback delivered to two processes at once is
//                   recorded once (the second waits for the first's commit, then sees it).
//                   Balances and tallies change by arithmetic in SQL (credit - cost, clamped),
//                   never by writing back a value read earlier.
//
//   std::string why;
//   auto store = open_postgres_store("postgresql://acme@db/acme", &why);
//   if (!store) die(why);
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "backend/store.hpp"
#include "store/postgres.hpp"
#include "store/postgres_migrate.hpp"

namespace dynaseal::backend {

// The schema's migrations, in order (version 1, 2, ...).
std::span<const store::PgMigration> backend_postgres_migrations();

// Connects and migrates. On failure store_unavailable and why in `message` (password hidden).
Result<std::unique_ptr<BackendStore>> open_postgres_store(std::string_view url,
                                                          std::string* message = nullptr);

}  // namespace dynaseal::backend
