// The use store: how many uses of each dynamic key are consumed, how much of its token budget is
// reserved and spent, and which keys and subjects are revoked (DESIGN §3, §8).
//
// The server calls it after a key verified and its scope matched the request: `consume` takes
// one use and reserves tokens in one atomic step; `settle` replaces the reservation by what the
// request really used. Implementations: memory (one node) and Redis (store/redis_use_store.hpp,
// each operation one atomic script), so every operation is self-contained and takes and returns
// small values. The server awaits either through store::AsyncUseStore (async_use_store.hpp).
//
// Keys are identified by (iss, jti), not by jti alone: two backends may pick the same jti, and
// one backend must never be able to spend or revoke another backend's key.
//
// Time: every operation takes the caller's clock `now` (unix seconds). Deadlines are exclusive,
// as in verify_key: a key is alive while now < expires_at, a revocation holds while now < until.
// State is dropped once its deadline passes; by then the verifier refuses the key anyway.
// Callers' clocks differ by a little, so a store must not let a lagging `now` see a key as
// alive after another caller's later `now` dropped its state (that would count from zero
// again): it decides with the latest time it has seen, or its own clock.
//
// Failure: store_unavailable whenever state cannot be read or recorded (store down, memory
// bound reached). The server then serves nothing: uses that cannot be counted are not served.
// Thread-safe: called concurrently from many worker threads.
//
//   ConsumeRequest req{.iss = c.iss, .jti = c.jti, .sub = c.sub, .iat = c.iat,
//                      .expires_at = c.exp + leeway, .uses = c.dks.uses, .budget = c.dks.budget,
//                      .want_tokens = max_tokens};
//   auto grant = store.consume(req, now);
//   if (!grant) return reject(grant.error());  // token_revoked, uses_exhausted, ...
//   forward(std::min(max_tokens, grant->granted_tokens));  // webhook-id: jti.use
//   store.settle(c.iss, c.jti, grant->granted_tokens, usage.total_tokens, now);
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "core/error.hpp"

namespace dynaseal::store {

// One request's claim on a key. The views need only live for the call.
struct ConsumeRequest {
  std::string_view iss;                // the key's issuer (backend id)
  std::string_view jti;                // the key's event id
  std::string_view sub;                // for revocation by subject
  std::int64_t iat = 0;                // issue time: a sub revocation covers iat <= revoked_at
  std::int64_t expires_at = 0;         // exp + leeway: dead from then on, state may be dropped
  std::int64_t uses = 1;               // dks.uses, >= 1
  std::optional<std::int64_t> budget;  // dks.budget, >= 1: total tokens across all uses
  std::int64_t want_tokens = 1;        // tokens to reserve: an upper bound of the use, >= 1
  // With a budget, the least grant worth serving (the prompt's bound + 1): a smaller remainder
  // is budget_exhausted. 1..want_tokens.
  std::int64_t min_tokens = 1;
  // The usage event to report should this use never be recorded elsewhere (DESIGN §5: every
  // consumed use gives one event): event_head + decimal(use) + event_tail. A store whose state
  // outlives the server process (Redis) keeps it in the issuer's journal, in the same atomic
  // step as the use, until settle or forget removes it (AsyncUseStore::journal). A store that
  // forgets its uses with the process (memory) keeps no journal. Empty head: no entry.
  std::string_view event_head{};
  std::string_view event_tail{};
};

struct UseGrant {
  std::int64_t use = 0;             // 1-based number of this use (webhook-id is jti.use)
  std::int64_t granted_tokens = 0;  // want_tokens, or the budget's smaller remainder
};

class UseStore {
 public:
  virtual ~UseStore() = default;

  // Takes one use of the key (req.iss, req.jti) and reserves tokens for it. Checks, atomically
  // and in this order, and changes nothing when one fails:
  //   internal           req breaks its contract (uses, want_tokens, min_tokens or budget
  //                      below 1, or min_tokens above want_tokens);
  //   token_expired      now >= req.expires_at (the store never counts for a dead key);
  //   token_revoked      the jti is revoked, or (iss, sub) is revoked with iat <= revoked_at;
  //   uses_exhausted     req.uses uses are consumed already;
  //   budget_exhausted   a budget is given and budget - spent - reserved < min_tokens;
  //   store_unavailable  the state cannot be checked or recorded (fail closed).
  // Otherwise counts the use, reserves min(want_tokens, remaining budget) and returns both.
  // A revocation that returned before consume began is always seen.
  virtual Result<UseGrant> consume(const ConsumeRequest& req, std::int64_t now) = 0;

  // Replaces one grant's reservation by the tokens actually used (prompt + completion):
  // reserved -= granted_tokens, spent += actual_tokens. Actual exceeds the grant only when an
  // engine broke its cap or a prompt bound did not hold; spent then passes the budget, and
  // the next consume refuses. Call once per grant: it is not idempotent, and a retry after
  // an ambiguous failure over-counts (refusing early, never serving more than the budget). A
  // settle that fails leaves the reservation in place, which is the safe side too. Unknown or
  // expired keys: success, nothing to do. internal for negative token counts.
  virtual Result<void> settle(std::string_view iss, std::string_view jti,
                              std::int64_t granted_tokens, std::int64_t actual_tokens,
                              std::int64_t now) = 0;

  // Revokes the key (iss, jti) until `until` (its exp + leeway: afterwards it is dead anyway).
  // Works before the key's first use. Revoking again keeps the later deadline. An `until` that
  // has passed needs no record: success. store_unavailable when it cannot be recorded.
  virtual Result<void> revoke_jti(std::string_view iss, std::string_view jti, std::int64_t until,
                                  std::int64_t now) = 0;

  // Revokes every key of (iss, sub) issued at or before `revoked_at`, remembered until `until`
  // (revoked_at + max key TTL + leeway covers every such key). Revoking again keeps the later
  // revoked_at and the later until: never less than either revocation asked for. Passed
  // `until` and store_unavailable as for revoke_jti.
  virtual Result<void> revoke_sub(std::string_view iss, std::string_view sub,
                                  std::int64_t revoked_at, std::int64_t until,
                                  std::int64_t now) = 0;

  // False when the store cannot serve (for /readyz).
  virtual bool healthy() const = 0;

  // Entries held: keys plus revocations (for metrics). May count expired entries that were
  // not dropped yet.
  virtual std::size_t size() const = 0;
};

}  // namespace dynaseal::store
