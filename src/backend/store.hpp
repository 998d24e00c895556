// The backend's state behind one small interface (DESIGN §8): users and their hashed tokens, the
// keys it minted with their reservations, usage events and the ledger, the pinned server
// identity, and its signing keys through rotations.
//
// Every operation is self-contained and atomic (one transaction), so that SQLite
// (sqlite_store.hpp) and PostgreSQL, shared by several processes (postgres_store.hpp), stand
// behind the same interface: reserve_key reads the user's usage and records the key in one
// transaction, so two concurrent mints cannot both spend the same remaining quota;
// record_events inserts each event and updates the ledger in the same transaction, and its
// idempotency comes from the unique webhook-id, not from a read before the write.
// record_events takes a batch (group commit: one transaction for many callbacks) and answers
// per event (savepoints).
//
// Errors: store_unavailable when the database fails; conflict and not_found where stated.
// An instance is one connection: use it from one thread at a time (StorePool gives each worker
// thread its own). Times are unix seconds; money is micro-units (money.hpp).
//
//   auto store = open_backend_store(config.db, config.db_path);   // migrates; SQLite or Postgres
//   auto user = store->find_user_by_token(token_hash(token));
//   auto key = store->reserve_key(user->id, utc_day(now), now, grace, decide_from_state);
//   auto recorded = store->record_usage(event, raw_body, now, cost_for_user);   // a batch of one
//   auto results = store->record_events(batch);     // per event, or the transaction's error
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backend/usage_event.hpp"
#include "core/error.hpp"

namespace dynaseal::backend {

struct User {
  std::int64_t id = 0;
  std::string name{};  // the `sub` of the user's keys
  std::string plan{};
  std::int64_t credit_micros = 0;  // prepaid balance; may go below 0 by one request's overshoot
  std::int64_t created_at = 0;
};

struct UserSummary {
  User user;
  std::int64_t tokens_today = 0;
};

struct NewUser {
  std::string name{};
  std::string plan{};
  std::string token_sha256;  // hex of SHA-256 of the token; the token itself is never stored
  std::int64_t credit_micros = 0;
  std::int64_t now = 0;
};

// What the mint policy needs to know about a user, read inside the minting transaction.
struct MintState {
  std::int64_t tokens_today = 0;     // tokens reported for events finished on `day`
  std::int64_t reserved_tokens = 0;  // unspent budgets of the user's live keys
  std::int64_t reserved_micros = 0;  // unspent cost reservations of the user's live keys
  std::int64_t credit_micros = 0;    // the balance
};

// A minted key and its reservation. A key holds its reservation until every use is reported or
// until expires_at + settle_grace, whichever comes first.
struct KeyRecord {
  std::string jti{};
  std::int64_t user_id = 0;
  std::string model{};
  std::string kid{};  // the signing key's id
  std::int64_t uses = 1;
  std::optional<std::int64_t> budget{};  // tokens; nothing: unlimited (no quota, no prepaid)
  std::int64_t reserved_micros = 0;
  std::int64_t issued_at = 0;
  std::int64_t expires_at = 0;
};

using MintDecision = std::function<Result<KeyRecord>(const MintState&)>;
// The cost of the event being recorded, for the user it belongs to.
using CostFn = std::function<std::int64_t(const User&)>;

struct Recorded {
  bool duplicate = false;             // the webhook-id was recorded before: nothing changed
  std::optional<std::string> user{};  // whom it was charged to; nothing: no such user
  std::int64_t cost_micros = 0;
};

// One usage event to record: the checked event, its body exactly as received, when it arrived,
// and its cost for the user it turns out to belong to (called inside the transaction).
struct NewEvent {
  UsageEvent event;
  std::string raw_body{};
  std::int64_t received_at = 0;
  CostFn cost{};
};

struct EventQuery {
  std::optional<std::string> user{};    // by name
  std::optional<std::int64_t> since{};  // finished at or after
};

struct StoredEvent {
  std::string webhook_id{};
  std::string user{};  // empty when the event matched no user
  std::string model{};
  std::string status{};
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t total_tokens = 0;
  std::int64_t cost_micros = 0;
  std::string finished_at{};  // as sent
  std::int64_t received_at = 0;
  std::string body{};  // the raw body exactly as received
};

struct PinnedServer {
  std::string id{};
  std::string url{};
  std::string jwks{};        // the server's identity keys, a JWKS document
  std::int64_t leeway = 30;  // the server's clock leeway (its /.well-known document)
  std::int64_t pinned_at = 0;
};

enum class KeyState { active, retiring, retired };
std::string_view to_string(KeyState s);

struct SigningKeyRecord {
  std::string kid{};
  std::string public_jwk{};
  KeyState state = KeyState::active;
  std::int64_t created_at = 0;
  std::optional<std::int64_t> rotated_at{};   // when a newer key replaced it
  std::optional<std::int64_t> last_expiry{};  // latest exp of the keys it signed
};

class BackendStore {
 public:
  virtual ~BackendStore() = default;

  // conflict when the name (or, astronomically unlikely, the token hash) exists.
  virtual Result<User> add_user(const NewUser& user) = 0;
  virtual Result<std::optional<User>> find_user_by_token(std::string_view token_sha256) = 0;
  virtual Result<std::optional<User>> find_user(std::string_view name) = 0;
  virtual Result<std::vector<UserSummary>> list_users(std::string_view day) = 0;
  // Adds `delta` (may be negative) to the balance, with a ledger row. not_found for no user.
  virtual Result<std::int64_t> add_credit(std::string_view name, std::int64_t delta,
                                          std::int64_t now) = 0;

  // In one transaction: reads the user's MintState for `day` (reservations of keys with a
  // budget that are alive at `now`, i.e. expires_at + settle_grace > now, and not every use
  // reported), calls `decide`, and records the key it returns. A refusal from `decide` is
  // returned and records nothing. Its cost grows with the user's outstanding keys (at most
  // mints_per_minute × (key_ttl + settle_grace) / 60 of them), not with all keys ever minted.
  virtual Result<KeyRecord> reserve_key(std::int64_t user_id, std::string_view day,
                                        std::int64_t now, std::int64_t settle_grace,
                                        const MintDecision& decide) = 0;

  // In one transaction, for each event in order: inserts it (raw body as received) unless its
  // webhook-id exists, in the database or earlier in the batch (then: duplicate, nothing
  // changes), finds its user (by the key's jti, else by sub), and charges it: the key's
  // tallies, the user's tokens of the event's UTC day, and, when its cost is not zero, the
  // balance (with a ledger row). An event whose statements fail is undone alone and gets its
  // error (store_unavailable); the others are kept. The returned error (store_unavailable)
  // means the transaction itself failed (begin or commit): nothing of the batch is recorded.
  virtual Result<std::vector<Result<Recorded>>> record_events(std::span<const NewEvent> batch) = 0;
  // record_events of one event.
  Result<Recorded> record_usage(const UsageEvent& event, std::string_view raw_body,
                                std::int64_t received_at, const CostFn& cost);
  virtual Result<std::vector<StoredEvent>> events(const EventQuery& query) = 0;

  // Pins (or re-pins) a server's identity.
  virtual Result<void> pin_server(const PinnedServer& server) = 0;
  virtual Result<std::optional<PinnedServer>> pinned_server(std::string_view id) = 0;

  // In one transaction: `kid` (inserted when unknown) becomes the active key and every other
  // active key becomes retiring (rotated_at = now). The key in the signing_key file is the one
  // that signs, so the backend calls this at start and rotate-key after replacing the file:
  // the stored states then follow the file even after an interrupted rotation.
  virtual Result<void> activate_signing_key(std::string_view kid, std::string_view public_jwk,
                                            std::int64_t now) = 0;
  virtual Result<std::vector<SigningKeyRecord>> signing_keys() = 0;
  virtual Result<void> retire_signing_key(std::string_view kid, std::int64_t now) = 0;
};

// Opens the store that `db` names (backend.toml): "postgresql://..." or "postgres://..."
// (postgres_store.hpp), else the SQLite file at `sqlite_path`, which the configuration resolved
// from "sqlite:PATH" (sqlite_store.hpp). On failure the error and why in `message`.
Result<std::unique_ptr<BackendStore>> open_backend_store(std::string_view db,
                                                         const std::filesystem::path& sqlite_path,
                                                         std::string* message = nullptr);

}  // namespace dynaseal::backend
