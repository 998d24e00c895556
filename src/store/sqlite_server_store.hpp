// ServerStore on SQLite (the embedded default): one database file holding the outbox and the
// registry, schema versioned by store::migrate. See server_store.hpp for the contract.
//
//   auto store = SqliteServerStore::open("server.db", &message);   // nothing + message on error
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "store/server_store.hpp"
#include "store/sqlite.hpp"
#include "store/sqlite_checkpointer.hpp"

namespace dynaseal::store {

class SqliteServerStore final : public ServerStore {
 public:
  // Opens or creates the database and brings its schema up to date; on failure nothing and a
  // message for the operator.
  static std::unique_ptr<SqliteServerStore> open(const std::filesystem::path& path,
                                                 std::string* message);

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
  explicit SqliteServerStore(Sqlite db) : db_(std::move(db)) {}
  OutboxWriteResult apply_one(const OutboxWrite& write);
  // An Open and its Finalize from one batch, as one insert of the finished record.
  OutboxWriteResult insert_finished(const outbox::Open& open, const outbox::Finalize& fin);
  OutboxWriteResult finalize(const outbox::Finalize& fin);
  // Adds what moved_ holds to outbox_counts (in the caller's transaction), and clears it.
  Result<void> save_counts();

  // Events per state: what the current transaction moved, saved in outbox_counts before it
  // commits (stats() reads the counts instead of counting the events).
  struct Counts {
    std::int64_t open = 0;
    std::int64_t pending = 0;
    std::int64_t delivered = 0;
    std::int64_t dead = 0;
  };

  Sqlite db_;
  Counts moved_;
  std::unique_ptr<SqliteCheckpointer> checkpointer_;  // after db_: destroyed before it
};

}  // namespace dynaseal::store
