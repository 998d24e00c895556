// What a user may mint (DESIGN §6): the request body, the plan's limits, and the budget a key
// gets from the user's remaining daily quota and prepaid credit. Pure functions of their
// inputs (the clock included), so every refusal and every sum is testable without a database.
//
// Budget rule. A key's dks.budget (tokens, prompt + completion over all uses) is the smallest of
//   - the plan's key_budget (default (max_tokens + prompt_tokens) × uses: what the key's uses can
//   reach),
//   - the quota left: daily_tokens − tokens reported today − budgets still reserved by the
//     user's live keys (when the plan has a daily quota),
//   - what the credit left pays for at the model's dearer rate, rounded down: (credit −
//     cost reservations of live keys) × 1000 / dearest price per 1k (when the plan is prepaid),
// and the key reserves that budget (and its worst-case cost, rounded up) until its uses are
// reported or it expires. So keys in flight can never together spend more than the quota or
// the credit, except by the prompts of their last requests (the server grants completion
// tokens from the budget but learns the prompt's size only afterwards).
//
//   auto req = parse_mint_request(body);               // 400s
//   auto grant = check_plan(plan, *req);               // 403s
//   auto key = decide_key(plan, user, *req, *grant, kid, jti, now, state);   // 402s
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "backend/config.hpp"
#include "backend/store.hpp"
#include "core/claims.hpp"

namespace dynaseal::backend {

inline constexpr std::size_t kMaxMintBodyBytes = 4096;

struct MintRequest {
  std::string model{};
  std::optional<std::int64_t> max_tokens{};
  std::optional<std::int64_t> uses{};
};

// {"model":"...","max_tokens":n?,"uses":n?}, nothing else: strict JSON (duplicate members
// refused), known members only, integers >= 1 (null counts as absent). model_missing when
// model is absent or empty; body_malformed for anything else wrong.
Result<MintRequest> parse_mint_request(std::string_view body);

struct Grant {
  std::int64_t max_tokens = 0;  // requested, else the plan's cap
  std::int64_t uses = 0;        // requested, else the plan's
};

// model_not_allowed, max_tokens_exceeded, uses_not_allowed — in that order.
Result<Grant> check_plan(const Plan& plan, const MintRequest& request);

struct Budget {
  std::optional<std::int64_t> tokens{};  // nothing: unlimited (no quota, not prepaid, no cap)
  std::int64_t reserved_micros = 0;      // worst-case cost of `tokens` (prepaid plans)
};

// The budget rule above. quota_exhausted when the plan has a daily quota and less than one
// token of it is left; credit_exhausted when the plan is prepaid and the credit left pays for
// less than one token of a priced model.
Result<Budget> decide_budget(const Plan& plan, std::string_view model, const Grant& grant,
                             const MintState& state);

// The key to record: decide_budget plus identity and lifetime (iat = now, exp = now + key_ttl).
Result<KeyRecord> decide_key(const Plan& plan, const User& user, const MintRequest& request,
                             const Grant& grant, std::string_view kid, std::string jti,
                             std::int64_t now, const MintState& state);

// The claims of a recorded key: iss = backend id, aud = [server id], sub = user name.
Claims key_claims(const BackendConfig& config, const User& user, const KeyRecord& key,
                  const Grant& grant);

}  // namespace dynaseal::backend
