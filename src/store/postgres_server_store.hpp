// ServerStore on PostgreSQL: the outbox and registry shared by several server replicas
// (DESIGN §8). See server_store.hpp for the contract; docs/server.md ("PostgreSQL") for the
// tables and connection settings.
//
// Schema "server" in dynaseal_schema, versioned by store::migrate (postgres.hpp), so replicas
// starting at once migrate once:
//   outbox    one row per (iss, event_id, use): state, owner replica, body, attempts, lease
//   backends  the registry of backends added through the admin API
//   replicas  each replica's last heartbeat (recover_stale)
//
// Replicas: claim_due locks the due rows it leases with FOR UPDATE SKIP LOCKED, so two replicas
// claiming at once never get the same event, and neither waits for the other. apply() sends a
// whole batch in one transaction, pipelined (one round trip per 128 writes); a duplicate Open
// or a late Finalize is reported per write (ON CONFLICT DO NOTHING, conditional UPDATE) without
// aborting the others. A lost connection fails the call in progress and is re-established on
// the next one.
//
//   std::string message;
//   auto store = PostgresServerStore::open("postgresql://dynaseal@db/dynaseal", &message);
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "store/postgres.hpp"
#include "store/postgres_migrate.hpp"
#include "store/server_store.hpp"

namespace dynaseal::store {

class PostgresServerStore final : public ServerStore {
 public:
  // Connects and brings the schema up to date; on failure nothing and a message for the
  // operator (password hidden).
  static std::unique_ptr<PostgresServerStore> open(std::string_view url, std::string* message);

  Result<std::vector<OutboxWriteResult>> apply(const std::vector<OutboxWrite>& writes) override;
  Result<std::vector<OutboxEvent>> claim_due(std::string_view iss, std::int64_t now_ms,
                                             std::size_t limit, std::int64_t lease_ms) override;
  Result<std::int64_t> recover(std::string_view owner, std::int64_t now_ms) override;
  Result<void> heartbeat(std::string_view owner, std::int64_t now_ms) override;
  Result<std::int64_t> recover_stale(std::int64_t stale_before_ms, std::int64_t now_ms) override;
  Result<std::int64_t> expire(std::int64_t cutoff_ms, std::int64_t retention_cutoff_ms,
                              std::int64_t now_ms) override;
  Result<std::optional<std::int64_t>> next_due_ms(std::string_view iss) override;
  Result<OutboxStats> stats() override;
  Result<std::vector<DeadLetter>> dead_letters(std::size_t limit) override;
  Result<std::int64_t> replay(std::string_view iss, std::string_view webhook_id,
                              std::int64_t now_ms) override;
  Result<std::vector<UsedKey>> used_keys(std::int64_t since_ms) override;
  Result<std::vector<RegisteredBackend>> backends() override;
  Result<void> put_backend(const RegisteredBackend& backend) override;
  Result<void> delete_backend(std::string_view id) override;

 private:
  explicit PostgresServerStore(Postgres db) : db_(std::move(db)) {}

  Postgres db_;
};

// The server's schema migrations, in order (exposed for the schema tests).
std::span<const PgMigration> server_postgres_migrations();

}  // namespace dynaseal::store
