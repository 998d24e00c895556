#include "backend/service.hpp"

#include <chrono>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include "backend/mint_policy.hpp"
#include "backend/registration.hpp"
#include "backend/usage_event.hpp"
#include "backend/user_token.hpp"
#include "core/dynamic_key.hpp"
#include "net/http_errors.hpp"

namespace dynaseal::backend {
namespace {

namespace http = net::http;
namespace json = boost::json;

std::string_view header(const net::Request& req, std::string_view name) {
  auto it = req.find(name);
  return it == req.end() ? std::string_view() : std::string_view(it->value());
}

std::string minted_json(const std::string& token, const KeyRecord& key, const ServerRef& server) {
  json::object body;
  body["key"] = token;
  body["event_id"] = key.jti;
  body["expires_at"] = key.expires_at;
  body["server"] = json::object{{"id", server.id}, {"url", server.url}};
  return json::serialize(body);
}

Route route_of(const net::Request& req) {
  const std::string_view target = req.target();
  const std::string_view path = target.substr(0, target.find('?'));
  if (path == "/v1/keys") return Route::keys;
  if (path == "/v1/callbacks/usage") return Route::callbacks;
  if (path == "/.well-known/jwks.json") return Route::jwks;
  if (path == "/healthz") return Route::healthz;
  return Route::none;
}

http::verb method_of(Route route) {
  switch (route) {
    case Route::keys:
    case Route::callbacks: return http::verb::post;
    case Route::jwks:
    case Route::healthz:
    case Route::none: return http::verb::get;
  }
  return http::verb::get;
}

// The route's path for the access log (never the raw target, which the client chose).
std::string_view to_string(Route route) {
  switch (route) {
    case Route::keys: return "/v1/keys";
    case Route::callbacks: return "/v1/callbacks/usage";
    case Route::jwks: return "/.well-known/jwks.json";
    case Route::healthz: return "/healthz";
    case Route::none: return "other";
  }
  return "other";
}

std::string recorded_json(const Recorded& r) {
  return json::serialize(json::object{{"ok", true}, {"duplicate", r.duplicate}});
}

}  // namespace

std::int64_t system_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

BackendService::BackendService(const BackendConfig& config, StorePool& stores, UsageWriter& writer,
                               SigningKeySource& keys, Clock clock)
    : config_(config), stores_(stores), writer_(writer), keys_(keys), clock_(std::move(clock)) {}

net::asio::awaitable<void> BackendService::handle(net::Exchange& ex) {
  net::Response res = co_await answer(ex.request());
  co_await ex.respond(std::move(res));
}

// A coroutine: keep closures and braced aggregates out of it (GCC 12, docs/development.md).
net::asio::awaitable<net::Response> BackendService::answer(const net::Request& req) {
  const auto started = std::chrono::steady_clock::now();
  const Route route = route_of(req);
  if (route != Route::callbacks || req.method() != method_of(route)) {
    net::Response res = respond(req, route);
    log_access(req, route, res, started);
    co_return res;
  }
  Checked checked = check(req);
  net::Response res;
  if (NewEvent* event = std::get_if<NewEvent>(&checked)) {
    const Result<Recorded> result = co_await writer_.record_durable(std::move(*event));
    res = recorded(req, result);
  } else {
    res = std::move(std::get<net::Response>(checked));
  }
  log_access(req, route, res, started);
  co_return res;
}

net::Response BackendService::respond(const net::Request& req, Route route) {
  if (route == Route::none) return refuse(req, Error::not_found);
  if (req.method() != method_of(route)) return refuse(req, Error::method_not_allowed);
  return dispatch(req, route);
}

void BackendService::log_access(const net::Request& req, Route route, const net::Response& res,
                                std::chrono::steady_clock::time_point started) const {
  if (!config_.access_log) return;
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
  spdlog::info(R"(access {{"method":"{}","path":"{}","status":{},"us":{}}})",
               std::string_view(req.method_string()), to_string(route), res.result_int(), us);
}

net::Response BackendService::dispatch(const net::Request& req, Route route) {
  if (route == Route::healthz) {
    return net::make_response(req, http::status::ok, R"({"status":"ok"})");
  }
  auto store = stores_.local();
  if (!store) return refuse(req, Error::store_unavailable, "cannot open the database");
  switch (route) {
    case Route::keys: return mint(req, **store, clock_());
    case Route::jwks: return jwks(req, **store);
    case Route::callbacks:  // answer() stores callbacks through the writer
    case Route::healthz:
    case Route::none: break;
  }
  return refuse(req, Error::not_found);
}

net::Response BackendService::refuse(const net::Request& req, Error e, std::string_view detail) {
  if (!detail.empty()) spdlog::warn("refused: {}: {}", to_string(e), detail);
  return net::error_response(req, e);
}

net::Response BackendService::mint(const net::Request& req, BackendStore& store,
                                   std::int64_t now_ms) {
  auto token = net::bearer_token(req);
  if (!token) return refuse(req, Error::token_missing);
  // Looked up by the token's SHA-256: timing of the index lookup can tell an attacker about a
  // hash prefix at most, which does not help find a token (preimage resistance).
  if (token->size() != kUserTokenChars) return refuse(req, Error::user_unknown);
  auto user = store.find_user_by_token(token_sha256(*token));
  if (!user) return refuse(req, user.error(), "user lookup failed");
  if (!*user) return refuse(req, Error::user_unknown);
  const Plan* plan = config_.plan((*user)->plan);
  if (plan == nullptr) return refuse(req, Error::user_unknown, "plan not in the configuration");
  auto request = parse_mint_request(req.body());
  if (!request) return refuse(req, request.error());
  auto grant = check_plan(*plan, *request);
  if (!grant) return refuse(req, grant.error());
  if (!limiter_.allow((*user)->id, plan->mints_per_minute, now_ms)) {
    return refuse(req, Error::rate_limited);
  }
  const std::int64_t now = now_ms / 1000;
  // The key that signs is chosen before the reservation records its kid, so every key a
  // signing key signed is in the store when rotation asks for the last one's expiry.
  const std::shared_ptr<const ActiveKey> signer = keys_.current(now_ms);
  auto key = store.reserve_key(
      (*user)->id, utc_day(now), now, config_.settle_grace, [&](const MintState& state) {
        return decide_key(*plan, **user, *request, *grant, signer->kid, random_jti(), now, state);
      });
  if (!key) return refuse(req, key.error());
  auto jwt = mint_key(key_claims(config_, **user, *key, *grant), signer->key);
  if (!jwt) return refuse(req, Error::internal, "mint_key refused the claims");
  return net::make_response(req, http::status::ok, minted_json(*jwt, *key, config_.server));
}

BackendService::Checked BackendService::check(const net::Request& req) {
  const std::int64_t now_ms = clock_();
  auto store = stores_.local();
  if (!store) return refuse(req, Error::store_unavailable, "cannot open the database");
  auto keys = pinned_keys(**store, now_ms);
  if (!keys) return refuse(req, keys.error(), "no usable pinned server identity");
  const WebhookHeaders headers{.id = header(req, "webhook-id"),
                               .timestamp = header(req, "webhook-timestamp"),
                               .signature = header(req, "webhook-signature")};
  const CallbackContext ctx{.backend_id = config_.id,
                            .server_id = config_.server.id,
                            .server_keys = **keys,
                            .now = now_ms / 1000,
                            .tolerance = config_.callback_tolerance};
  auto event = check_callback(headers, req.body(), ctx);
  if (!event) return refuse(req, event.error(), "usage callback rejected");
  // Runs on the writer's thread, inside the transaction: everything by value but the
  // configuration, which outlives the writer.
  CostFn cost = [config = &config_, model = event->model, prompt = event->prompt_tokens,
                 completion = event->completion_tokens](const User& user) -> std::int64_t {
    const Plan* plan = config->plan(user.plan);
    if (plan == nullptr) return 0;
    return usage_cost(plan->price(model), prompt, completion);
  };
  return NewEvent{.event = std::move(*event),
                  .raw_body = std::string(req.body()),
                  .received_at = now_ms / 1000,
                  .cost = std::move(cost)};
}

net::Response BackendService::recorded(const net::Request& req, const Result<Recorded>& result) {
  if (!result) return refuse(req, result.error(), "recording the event failed");
  return net::make_response(req, http::status::ok, recorded_json(*result));
}

Result<std::shared_ptr<const std::vector<PublicKey>>> BackendService::pinned_keys(
    BackendStore& store, std::int64_t now_ms) {
  std::shared_ptr<const PinnedKeys> cached = pinned_.load(std::memory_order_acquire);
  if (cached && now_ms < cached->fresh_until_ms) {
    return std::shared_ptr<const std::vector<PublicKey>>(cached, &cached->keys);
  }
  auto keys = pinned_server_keys(store, config_.server.id);
  if (!keys) return Unexpected(keys.error());
  auto fresh = std::make_shared<const PinnedKeys>(
      PinnedKeys{.keys = std::move(*keys), .fresh_until_ms = now_ms + kPinnedKeysTtlMs});
  pinned_.store(fresh, std::memory_order_release);
  return std::shared_ptr<const std::vector<PublicKey>>(fresh, &fresh->keys);
}

net::Response BackendService::jwks(const net::Request& req, BackendStore& store) {
  auto keys = store.signing_keys();
  if (!keys) return refuse(req, keys.error(), "listing signing keys failed");
  json::array list;
  for (const SigningKeyRecord& k : *keys) {
    if (k.state != KeyState::retired) list.push_back(json::parse(k.public_jwk));
  }
  return net::make_response(req, http::status::ok,
                            json::serialize(json::object{{"keys", std::move(list)}}));
}

}  // namespace dynaseal::backend
