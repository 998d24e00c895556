// The embedded BackendStore: SQLite (WAL) through store/sqlite.hpp, one connection per
// instance, the schema brought up to date by versioned migrations when it opens.
//
// Schema (version 1; docs/backend.md describes every table):
//   users         name, plan, token_sha256 (UNIQUE), credit_micros
//   keys          every minted key: user, kid, budget and reservation, tallies of reported use
//   events        every accepted usage callback; webhook_id UNIQUE is the idempotency key
//   daily_usage   tokens, cost and events per user and UTC day
//   ledger        every change of a balance: credit grants and usage debits
//   servers       pinned server identities (id, url, JWKS, leeway)
//   signing_keys  the backend's signing keys: active, retiring (rotated out), retired
//
// A new version appends a Migration to the list in sqlite_schema.cpp (never edits one): a
// database from an older build is upgraded on open, one from a newer build is refused.
//
//   std::string why;
//   auto store = open_sqlite_store("backend.db", &why);
//   if (!store) die(why);
#pragma once

#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "backend/store.hpp"
#include "store/sqlite.hpp"

namespace dynaseal::backend {

// The schema's migrations, in order (version 1, 2, ...).
std::span<const store::Migration> backend_migrations();

// Opens (creating the file 0600 when missing; ":memory:" for tests) and migrates. On failure
// returns store_unavailable (or io_error when the file cannot be created) and says why in
// `message`.
Result<std::unique_ptr<BackendStore>> open_sqlite_store(const std::filesystem::path& path,
                                                        std::string* message = nullptr);

}  // namespace dynaseal::backend
