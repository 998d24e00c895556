#include "backend/mint_policy.hpp"

#include <algorithm>
#include <limits>

#include <boost/json/object.hpp>

#include "core/json.hpp"

namespace dynaseal::backend {
namespace {

namespace json = boost::json;

// A positive integer member: absent or null is nothing; anything else but an int64 >= 1 fails.
Result<std::optional<std::int64_t>> positive(const json::object& body, std::string_view key) {
  const json::value* v = member(body, key);
  if (v == nullptr || v->is_null()) return std::optional<std::int64_t>();
  if (!v->is_int64() || v->get_int64() < 1) return Unexpected(Error::body_malformed);
  return std::optional<std::int64_t>(v->get_int64());
}

std::int64_t saturating_mul(std::int64_t a, std::int64_t b) {
  std::int64_t out = 0;
  return __builtin_mul_overflow(a, b, &out) ? std::numeric_limits<std::int64_t>::max() : out;
}

}  // namespace

Result<MintRequest> parse_mint_request(std::string_view body) {
  auto doc = parse_json(body, {.max_bytes = kMaxMintBodyBytes, .max_depth = 4});
  if (!doc || !doc->is_object()) return Unexpected(Error::body_malformed);
  const json::object& o = doc->get_object();
  for (const auto& m : o) {
    const std::string_view key(m.key().data(), m.key().size());
    if (key != "model" && key != "max_tokens" && key != "uses") {
      return Unexpected(Error::body_malformed);
    }
  }
  MintRequest req;
  const json::value* model = member(o, "model");
  if (model == nullptr || model->is_null()) return Unexpected(Error::model_missing);
  if (!model->is_string()) return Unexpected(Error::body_malformed);
  if (model->get_string().empty()) return Unexpected(Error::model_missing);
  req.model = std::string(as_view(model->get_string()));
  auto max_tokens = positive(o, "max_tokens");
  auto uses = positive(o, "uses");
  if (!max_tokens || !uses) return Unexpected(Error::body_malformed);
  req.max_tokens = *max_tokens;
  req.uses = *uses;
  return req;
}

Result<Grant> check_plan(const Plan& plan, const MintRequest& request) {
  if (!plan.allows_model(request.model)) return Unexpected(Error::model_not_allowed);
  if (request.max_tokens.value_or(1) > plan.max_tokens) {
    return Unexpected(Error::max_tokens_exceeded);
  }
  if (request.uses.value_or(1) > plan.uses) return Unexpected(Error::uses_not_allowed);
  return Grant{.max_tokens = request.max_tokens.value_or(plan.max_tokens),
               .uses = request.uses.value_or(plan.uses)};
}

Result<Budget> decide_budget(const Plan& plan, std::string_view model, const Grant& grant,
                             const MintState& state) {
  std::optional<std::int64_t> tokens;
  const auto cap = [&tokens](std::int64_t limit) {
    tokens = tokens ? std::min(*tokens, limit) : limit;
  };
  if (plan.key_budget > 0) {
    cap(plan.key_budget);
  } else if (plan.daily_tokens > 0 || plan.prepaid) {
    // The server reserves each use's prompt bound as well as its cap: a budget of caps alone
    // would refuse every request (402) before the engine saw it.
    cap(saturating_mul(grant.max_tokens + plan.prompt_tokens, grant.uses));
  }
  if (plan.daily_tokens > 0) {
    const std::int64_t left = plan.daily_tokens - state.tokens_today - state.reserved_tokens;
    if (left < 1) return Unexpected(Error::quota_exhausted);
    cap(left);
  }
  const ModelPrice price = plan.price(model);
  if (!plan.prepaid || price.dearest() == 0) return Budget{.tokens = tokens};
  // Each event's cost is rounded up once (money.hpp), by less than 1 µ: a key's `uses` events
  // may together cost up to `uses` µ more than its tokens at the dearer rate. That allowance is
  // reserved too, so the balance never goes below zero however the tokens split over the uses.
  const std::int64_t rounding = grant.uses;
  const auto affordable =
      affordable_tokens(price, state.credit_micros - state.reserved_micros - rounding);
  if (!affordable || *affordable < 1) return Unexpected(Error::credit_exhausted);
  cap(*affordable);
  return Budget{.tokens = tokens, .reserved_micros = worst_case_cost(price, *tokens) + rounding};
}

Result<KeyRecord> decide_key(const Plan& plan, const User& user, const MintRequest& request,
                             const Grant& grant, std::string_view kid, std::string jti,
                             std::int64_t now, const MintState& state) {
  auto budget = decide_budget(plan, request.model, grant, state);
  if (!budget) return Unexpected(budget.error());
  return KeyRecord{.jti = std::move(jti),
                   .user_id = user.id,
                   .model = request.model,
                   .kid = std::string(kid),
                   .uses = grant.uses,
                   .budget = budget->tokens,
                   .reserved_micros = budget->reserved_micros,
                   .issued_at = now,
                   .expires_at = now + plan.key_ttl};
}

Claims key_claims(const BackendConfig& config, const User& user, const KeyRecord& key,
                  const Grant& grant) {
  Claims c;
  c.iss = config.id;
  c.aud = {config.server.id};
  c.sub = user.name;
  c.jti = key.jti;
  c.iat = key.issued_at;
  c.exp = key.expires_at;
  c.dks.models = {key.model};
  c.dks.max_tokens = grant.max_tokens;
  c.dks.uses = key.uses;
  c.dks.budget = key.budget;
  return c;
}

}  // namespace dynaseal::backend
