// The LLM server's durable state (DESIGN §5, §8): the usage-callback outbox and the registry
// of backends added through the admin API. SQLite is the embedded implementation, PostgreSQL the
// one several replicas share; every operation is self-contained.
//
// Outbox life of one event, keyed by (iss, event_id, use); its webhook-id is "event_id.use":
//
//   open       written before the engine is called, carrying the body to send if the request
//              never finishes (status "interrupted"): a crash cannot lose the event.
//   pending    finalized with the real body, waiting for delivery; or recovered from open with
//              its interrupted body (by the replica that opened it, at its next start, or by
//              another replica once the owner has stopped heartbeating: recover_stale).
//   delivered  the backend answered 2xx. Kept for `retention`, then deleted.
//   dead       not delivered within max_age (or no callback URL by then); visible to operators
//              and replayable.
//
// Delivery is claimed with a lease: a claimed event is invisible to other claims until the
// lease ends, so several dispatchers (threads or replicas) never send it twice at once.
//
// A replica presumed dead may only have been slow (a long stall, a network partition). When it
// finalizes an event that was recovered meanwhile, its real body wins as long as nothing can
// have been sent: the event is still pending and no dispatcher has claimed it since it was
// recovered. The backend then gets the true usage, once. Once it was claimed (the interrupted
// body may be on its way, or may have reached the backend, which keeps the first body it
// records for a webhook-id), the late Finalize is not_found and changes nothing: a webhook-id
// is never sent with two different bodies.
//
// Not thread-safe: the server gives the store to one thread (server/db_worker.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/error.hpp"

namespace dynaseal::store {

struct OutboxKey {
  std::string iss;
  std::string event_id;
  std::int64_t use = 0;
  // One string per key (for maps): iss, event id and use, NUL-separated.
  std::string name() const {
    std::string n;
    n.reserve(iss.size() + event_id.size() + 22);
    n.append(iss).push_back('\0');
    n.append(event_id).push_back('\0');
    n.append(std::to_string(use));
    return n;
  }
};

// The writes the server batches into one transaction (group commit).
namespace outbox {
struct Open {
  OutboxKey key;
  std::string owner;             // the replica that opened it
  std::string interrupted_body;  // the body to send if never finalized
  std::int64_t now_ms = 0;
};
struct Finalize {
  OutboxKey key;
  std::string body;
  std::int64_t now_ms = 0;
};
struct Delivered {
  std::int64_t id = 0;
  std::int64_t now_ms = 0;
  int http_status = 0;
};
struct Failed {
  std::int64_t id = 0;
  std::int64_t now_ms = 0;
  std::int64_t next_attempt_ms = 0;  // ignored when dead
  bool dead = false;
  std::string error;  // what went wrong, for operators: "http 500", "connect refused"
};
}  // namespace outbox

using OutboxWrite = std::variant<outbox::Open, outbox::Finalize, outbox::Delivered, outbox::Failed>;

// Per write, in order: nothing, or conflict (an Open whose key exists: the use was consumed
// before, e.g. before a restart) or not_found (a Finalize without its Open, or too late for a
// recovered event: see above; a Delivered or Failed for an event that is not pending).
using OutboxWriteResult = std::optional<Error>;

struct OutboxEvent {
  std::int64_t id = 0;
  std::string iss;
  std::string webhook_id;
  std::string body;
  std::int64_t attempts = 0;   // before this one
  std::int64_t queued_ms = 0;  // finalized or replayed at
};

struct OutboxStats {
  std::int64_t open = 0;
  std::int64_t pending = 0;
  std::int64_t delivered = 0;
  std::int64_t dead = 0;
  std::int64_t oldest_pending_ms = 0;  // queued_ms of the oldest pending event; 0 when none
};

struct DeadLetter {
  std::string iss;
  std::string webhook_id;
  std::int64_t attempts = 0;
  std::string last_error;
  std::int64_t queued_ms = 0;
  std::int64_t died_ms = 0;
  std::string body;
};

// What the outbox knows of one key's uses (for restoring the memory use store at start).
struct UsedKey {
  std::string iss;
  std::string event_id;
  std::int64_t uses = 0;          // the highest use number recorded
  std::int64_t spent_tokens = 0;  // total_tokens over its records' usage (0 where none)
  std::int64_t first_ms = 0;      // when its first recorded use was opened
};

struct RegisteredBackend {
  std::string id;
  std::string jwks;  // JWKS JSON as registered
  std::string callback_url;
};

class ServerStore {
 public:
  virtual ~ServerStore() = default;

  // All writes in one transaction; per-write results in order. A failed transaction applies
  // none of them (store_unavailable) and the caller retries or refuses.
  virtual Result<std::vector<OutboxWriteResult>> apply(const std::vector<OutboxWrite>& writes) = 0;

  // Up to `limit` pending events of backend `iss` due at `now_ms` and not leased, leased until
  // now_ms + lease_ms, oldest first.
  virtual Result<std::vector<OutboxEvent>> claim_due(std::string_view iss, std::int64_t now_ms,
                                                     std::size_t limit, std::int64_t lease_ms) = 0;
  // At start: `owner`'s open events become pending with their interrupted body, and leases
  // that died with a previous run end. Returns how many open events were recovered.
  // SQLite: one process owns the file, so every lease ends. PostgreSQL: other replicas may be
  // delivering right now and leases record no owner, so leases end only when they run out.
  virtual Result<std::int64_t> recover(std::string_view owner, std::int64_t now_ms) = 0;

  // Replicas sharing the database (PostgreSQL; SQLite implements the same for one process).
  // `owner` is alive at `now_ms` (a heartbeat never moves back in time).
  virtual Result<void> heartbeat(std::string_view owner, std::int64_t now_ms) = 0;
  // Open events older than `stale_before_ms` whose owner's last heartbeat is older than
  // `stale_before_ms` (or that never heartbeated) become pending with their interrupted body,
  // due at `now_ms`; owners that are stale and have no open events left are forgotten. An open
  // younger than stale_before_ms is never taken: its owner was alive to write it. Returns how
  // many events were recovered. Their leases are not touched (see recover).
  virtual Result<std::int64_t> recover_stale(std::int64_t stale_before_ms, std::int64_t now_ms) = 0;
  // Pending events queued before `cutoff_ms` become dead ("expired: <reason>"); delivered
  // events older than `retention_cutoff_ms` are deleted. Returns how many died.
  virtual Result<std::int64_t> expire(std::int64_t cutoff_ms, std::int64_t retention_cutoff_ms,
                                      std::int64_t now_ms) = 0;
  // The earliest next attempt among backend `iss`'s pending events, if any (the dispatcher
  // sleeps until the earliest of the backends it can deliver to).
  virtual Result<std::optional<std::int64_t>> next_due_ms(std::string_view iss) = 0;

  virtual Result<OutboxStats> stats() = 0;
  virtual Result<std::vector<DeadLetter>> dead_letters(std::size_t limit) = 0;
  // Dead events back to pending, due now, attempts reset: one (by webhook-id and iss), all of
  // a backend (iss only), or all (both empty). Returns how many.
  virtual Result<std::int64_t> replay(std::string_view iss, std::string_view webhook_id,
                                      std::int64_t now_ms) = 0;

  // Every key with a record opened at or after `since_ms`, with its uses and tokens. Bodies
  // that are not JSON or carry no integer usage.total_tokens count no tokens.
  virtual Result<std::vector<UsedKey>> used_keys(std::int64_t since_ms) = 0;

  // The registry of backends added at run time.
  virtual Result<std::vector<RegisteredBackend>> backends() = 0;
  virtual Result<void> put_backend(const RegisteredBackend& backend) = 0;
  virtual Result<void> delete_backend(std::string_view id) = 0;
};

}  // namespace dynaseal::store
