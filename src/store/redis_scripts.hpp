// The Lua scripts of the Redis use store: each UseStore operation is one script, run atomically
// by Redis (EVALSHA, or EVAL when Redis answers NOSCRIPT, e.g. after a restart or SCRIPT FLUSH).
//
// Arguments are decimal strings. Counts (uses, budget, tokens) are exact int64 values: Lua's
// numbers are doubles, exact only up to 2^53, so the scripts compute on them as two base-1e9
// halves, clamping sums at int64 max as MemoryUseStore does. Times are seconds the caller
// clamped to +-2^50 (exact as doubles, and valid for EXPIREAT).
//
// Clock: each script decides with t = max(caller's now, Redis's TIME). State is written with
// EXPIREAT at its deadline, so Redis drops it on its own clock; a caller whose clock lags can
// therefore never see a dropped key as alive and unknown: by then t >= deadline too. A hash
// whose stored deadline is <= t counts as absent (as a MemoryUseStore entry past its deadline),
// but is only overwritten, never deleted early.
//
// Stored values that are not what the scripts write (another program's data, a hand edit) make
// the script fail with an error reply ("dks: corrupt ..."), never a wrong answer.
//
// Journal (store/async_use_store.hpp): consume, when given an event head, also sets the field
// "<jti>.<use>" of the issuer's journal hash to "<t> <head><use><tail>"; settle deletes it first
// of all (even for a key that has expired since).
//
// Replies: consume returns [0, use, granted] (decimal strings) or [code] with code 1
// token_expired, 2 token_revoked, 3 uses_exhausted, 4 budget_exhausted. The others return 0.
#pragma once

#include <string>
#include <string_view>

namespace dynaseal::store {

struct RedisScript {
  std::string body;  // the Lua source
  std::string sha1;  // lowercase hex, as EVALSHA wants it
};

// KEYS: key state, subject revocation, journal. ARGV: now, expires_at, iat, uses, budget (""
// for none), want_tokens, jti, event head, event tail, min_tokens.
const RedisScript& redis_consume_script();
// KEYS: key state. ARGV: now, granted_tokens, actual_tokens.
const RedisScript& redis_settle_script();
// KEYS: key state. ARGV: now, until.
const RedisScript& redis_revoke_jti_script();
// KEYS: subject revocation. ARGV: now, revoked_at, until.
const RedisScript& redis_revoke_sub_script();

}  // namespace dynaseal::store
