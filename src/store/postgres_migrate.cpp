#include "store/postgres_migrate.hpp"

namespace dynaseal::store {
namespace {

// "dynaseal" in ASCII: the advisory lock migrations take turns on.
constexpr std::int64_t kMigrationLock = 0x64796E617365616C;

// Inside the migration's transaction: takes the lock (held until it ends), creates the version
// table when missing (only then: afterwards no CREATE right is needed), reads the version.
Result<std::int64_t> locked_version(Postgres& db, std::string_view component) {
  if (auto locked = db.query("SELECT pg_advisory_xact_lock($1::bigint)", {kMigrationLock});
      !locked) {
    return Unexpected(locked.error());
  }
  auto exists = db.query("SELECT to_regclass('dynaseal_schema') IS NOT NULL");
  if (!exists) return Unexpected(exists.error());
  if (!exists->boolean(0, 0)) {
    auto created = db.exec(
        "CREATE TABLE dynaseal_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL)");
    if (!created) return Unexpected(created.error());
  }
  auto rows = db.query("SELECT version FROM dynaseal_schema WHERE component = $1", {component});
  if (!rows) return Unexpected(rows.error());
  const std::int64_t version = rows->size() == 0 ? 0 : rows->int64(0, 0);
  if (auto ok = rows->check(); !ok) return Unexpected(ok.error());
  return version;
}

}  // namespace

Result<void> migrate(Postgres& db, std::string_view component,
                     std::span<const PgMigration> migrations, std::string* message) {
  std::string ignored;
  std::string& why = message != nullptr ? *message : ignored;
  auto tx = db.begin();
  auto current = tx ? locked_version(db, component) : Unexpected(tx.error());
  if (!current) {
    why = "cannot read the schema version of " + std::string(component) + ": " + db.error_message();
    return Unexpected(current.error());
  }
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  if (*current > latest) {
    why = "database schema version " + std::to_string(*current) + " of " + std::string(component) +
          " is newer than this program knows (" + std::to_string(latest) + ")";
    return Unexpected(Error::store_unavailable);
  }
  if (*current == latest) return {};  // nothing to do: the transaction ends unwritten
  for (const PgMigration& m : migrations) {
    if (m.version <= *current) continue;
    if (auto ok = db.exec(m.sql); !ok) {
      why = "migration to version " + std::to_string(m.version) + " failed: " + db.error_message();
      return Unexpected(ok.error());
    }
  }
  auto stored = db.query(
      "INSERT INTO dynaseal_schema (component, version) VALUES ($1, $2) "
      "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
      {component, latest});
  auto committed = stored ? tx->commit() : Result<void>(Unexpected(stored.error()));
  if (!committed) {
    why = "cannot record the schema version: " + db.error_message();
    return Unexpected(committed.error());
  }
  return {};
}

}  // namespace dynaseal::store
