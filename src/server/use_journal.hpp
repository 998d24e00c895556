// Replays the use store's journal (store/async_use_store.hpp): a use that was consumed but whose
// outbox record was never written (the server died in between, or the database refused the
// write) is still reported, once, as "interrupted".
//
// Every `heartbeat`, each replica reads the journal of every backend it knows and takes the
// entries consumed at least `replica_timeout` ago. Live requests remove their entry when they
// settle, and write their record within milliseconds of consuming, so an entry that old either
// has its record already or belongs to a request that will never write it. For each entry:
//
//   Open the record (owner: this replica)  ok        -> Finalize it with the journal's body,
//                                                       then forget the entry
//                                          conflict  -> the record exists: forget the entry
//                                          failed    -> keep it; the next pass tries again
//
// Two replicas replaying one entry, or a slow request whose record lands after all: one Open
// wins, the other conflicts, so the backend gets one event per use. A request whose Open
// conflicts with a replayed record is refused (uses_exhausted) and never reaches the engine.
// Killed between Open and Finalize: the record is this replica's open record, recovered as
// interrupted like any other (at its restart, or by another replica's recover_stale).
//
// Entries are checked before they are written: the event must be a JSON object whose event_id,
// use, iss and status ("interrupted") match the entry. Entries that fail are left alone and
// counted (an operator can read them); they are never sent.
//
//   co_spawn(io, replay_journal(uses, db, backends, "host-a:8000", options, timer, stopping,
//                               on_replayed), detached);
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "server/backend_registry.hpp"
#include "server/config.hpp"
#include "server/db_worker.hpp"
#include "store/async_use_store.hpp"

namespace dynaseal::server {

struct JournalPass {
  std::int64_t replayed = 0;   // records written from the journal
  std::int64_t forgotten = 0;  // entries whose record existed
  std::int64_t corrupt = 0;    // entries left alone: they do not describe their use
  bool complete = true;        // false: a store failed, the rest waits for the next pass
};

// One pass over the journals of `issuers`, taking entries consumed at or before
// `consumed_by` (unix seconds).
asio::awaitable<JournalPass> replay_journal_once(store::AsyncUseStore& uses, DbWorker& db,
                                                 std::vector<std::string> issuers,
                                                 std::string owner, std::int64_t consumed_by);

// Passes every options.heartbeat until `stopping` is true (read on the timer's executor) or
// the timer is cancelled, then releases what the store holds on this executor (its Redis
// connection). `replayed(n)` runs after n > 0 records were written.
asio::awaitable<void> replay_journal(store::AsyncUseStore& uses, DbWorker& db,
                                     const BackendRegistry& backends, std::string owner,
                                     OutboxOptions options, asio::steady_timer& timer,
                                     const bool& stopping,
                                     std::function<void(std::int64_t)> replayed);

}  // namespace dynaseal::server
