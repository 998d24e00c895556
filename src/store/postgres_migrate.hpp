// Versioned schemas on PostgreSQL (store/postgres.hpp), the counterpart of store::migrate for
// SQLite: numbered steps, applied in order when a store opens, a newer schema refused.
//
// Several processes may open at once (replicas starting together): each takes a
// transaction-scoped advisory lock first, so they take turns, and the later ones find the work
// done. The version of each component ("server", "backend") is kept in the table
// dynaseal_schema(component, version) of the connection's search path, so a server and a
// backend may share a database. The table is created only when missing: after the first start
// the role needs no CREATE right.
//
//   constexpr PgMigration kSteps[] = {{1, "CREATE TABLE ..."}, {2, "ALTER TABLE ..."}};
//   if (auto ok = migrate(db, "server", kSteps, &message); !ok) die(message);
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "store/postgres.hpp"

namespace dynaseal::store {

// One step of a schema: version N is reached by running `sql` (several statements allowed) on
// version N-1.
struct PgMigration {
  int version;
  std::string_view sql;
};

// Brings `component`'s schema to the last migration's version, all steps in one transaction
// (a failed step leaves the schema as it was). `migrations` must be sorted and numbered 1, 2,
// 3... A schema newer than the last migration is refused: store_unavailable, and why in
// `message`; any other failure is store_unavailable with PostgreSQL's reason.
Result<void> migrate(Postgres& db, std::string_view component,
                     std::span<const PgMigration> migrations, std::string* message);

}  // namespace dynaseal::store
