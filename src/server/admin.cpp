// The admin API of the Gateway (Authorization: Bearer <admin token>):
//
//   GET    /admin/v1/backends                    list
//   POST   /admin/v1/backends                    {"id","jwks","callback_url"} -> 201 | 409
//   GET    /admin/v1/backends/{id}
//   PUT    /admin/v1/backends/{id}               {"jwks","callback_url"} replace
//   DELETE /admin/v1/backends/{id}
//   POST   /admin/v1/backends/{id}/keys          {"jwks"} add keys (rotation: register first)
//   DELETE /admin/v1/backends/{id}/keys/{kid}    retire a key (not the last one)
//   POST   /admin/v1/revocations                 {"iss","jti"} or {"iss","sub"}
//   GET    /admin/v1/outbox                      outbox counts (admin_outbox.cpp)
//   GET    /admin/v1/outbox/dead?limit=N         dead letters, newest first
//   POST   /admin/v1/outbox/replay               {"webhook_id"?, "iss"?}: dead -> pending
//
// Backend changes are stored (db) before they are acknowledged, so they survive a restart.
//
// "jwks" is a JWK or a JWKS object, checked as strictly as key files are.

#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include "core/crypto.hpp"
#include "core/json.hpp"
#include "core/jwk.hpp"
#include "net/http_client.hpp"
#include "net/http_errors.hpp"
#include "server/backend_checks.hpp"
#include "server/gateway.hpp"

namespace dynaseal::server {
namespace {

namespace http = net::http;
namespace json = boost::json;

json::object backend_json(const Backend& b) {
  json::array kids;
  for (const PublicJwk& k : b.keys) kids.emplace_back(k.kid);
  return {{"id", b.id}, {"callback_url", b.callback_url}, {"kids", std::move(kids)}};
}

Result<std::vector<PublicJwk>> read_keys(const json::object& body) {
  const json::value* jwks = member(body, "jwks");
  if (jwks == nullptr || !jwks->is_object()) return Unexpected(Error::body_malformed);
  auto keys = parse_jwks(json::serialize(*jwks));
  if (!keys) return Unexpected(Error::body_malformed);
  return keys;
}

// A Backend from a POST/PUT body; `id` comes from the path for PUT.
Result<Backend> read_backend(const json::object& body, std::string_view id, bool allow_link_local) {
  Backend b;
  b.id = std::string(id);
  auto keys = read_keys(body);
  if (!keys) return Unexpected(keys.error());
  b.keys = std::move(*keys);
  if (const json::value* url = member(body, "callback_url"); url != nullptr) {
    if (!url->is_string()) return Unexpected(Error::body_malformed);
    b.callback_url = std::string(as_view(url->get_string()));
    if (!b.callback_url.empty() && callback_url_problem(b.callback_url, allow_link_local)) {
      return Unexpected(Error::body_malformed);
    }
  }
  if (!valid_backend_id(b.id)) return Unexpected(Error::body_malformed);
  return b;
}

net::Response json_response(const net::Request& req, http::status status, const json::value& v) {
  return net::make_response(req, status, json::serialize(v));
}

// GCC 12 miscompiles braced JSON initializers inside coroutines; these live outside them.
net::Response ok_response(const net::Request& req, http::status status) {
  return json_response(req, status, json::object{{"ok", true}});
}

store::RegisteredBackend registered(const Backend& b) {
  return {.id = b.id, .jwks = jwks_json(b.keys), .callback_url = b.callback_url};
}

// Outside the coroutine: GCC 12 destroys a closure with non-trivial captures twice when it is a
// temporary in a coroutine.
net::asio::awaitable<Result<void>> store_backend(DbWorker& db, std::string id,
                                                 std::optional<store::RegisteredBackend> row) {
  return db.query<Result<void>>([row = std::move(row), id = std::move(id)](store::ServerStore& s) {
    return row ? s.put_backend(*row) : s.delete_backend(id);
  });
}

net::Response list_response(const net::Request& req, const RegistrySnapshot& snapshot) {
  json::array list;
  for (const auto& [id, b] : snapshot.backends) list.push_back(backend_json(b));
  return json_response(req, http::status::ok, json::object{{"backends", std::move(list)}});
}

}  // namespace

net::asio::awaitable<Result<void>> Gateway::persist(std::string id, const RegistrySnapshot& before,
                                                    Result<void> changed) {
  if (!changed) co_return changed;
  std::optional<store::RegisteredBackend> row;
  {
    auto after = ctx_.backends.snapshot();
    auto it = after->backends.find(id);
    if (it != after->backends.end()) row = registered(it->second);
  }
  auto stored = co_await store_backend(ctx_.db, id, std::move(row));
  if (stored) co_return stored;
  // Not stored means not done: a registration that would vanish at the next restart must not
  // be acknowledged.
  auto prev = before.backends.find(id);
  ctx_.backends.restore(id, prev == before.backends.end() ? nullptr : &prev->second);
  ctx_.metrics.store_error();
  co_return Unexpected(Error::store_unavailable);
}

net::asio::awaitable<void> Gateway::admin_done(net::Exchange& ex, Outcome& outcome,
                                               Result<void> result, net::http::status status) {
  if (!result) co_return co_await reject(ex, outcome, result.error());
  co_await reply(ex, outcome, ok_response(ex.request(), status));
}

net::asio::awaitable<void> Gateway::admin(net::Exchange& ex, Outcome& outcome) {
  const net::Request& req = ex.request();
  auto token = bearer_token(req);
  if (!token || !constant_time_equal(*token, ctx_.admin_token)) {
    co_return co_await reject(ex, outcome, Error::admin_unauthorized);
  }
  const std::string_view target = req.target();
  auto route = match_admin_route(req.method(), target.substr(0, target.find('?')));
  if (!route) co_return co_await reject(ex, outcome, route.error());
  json::object body;
  if (req.method() == http::verb::post || req.method() == http::verb::put) {
    auto doc =
        parse_json(req.body(), {.max_bytes = ctx_.config.http.max_body_bytes, .max_depth = 16});
    if (!doc || !doc->is_object()) co_return co_await reject(ex, outcome, Error::body_malformed);
    body = std::move(doc->get_object());
  }
  co_await admin_action(ex, outcome, *route, body);
  if (changes_state(route->action)) log_admin_change(ex, *route, body, outcome.status);
}

net::asio::awaitable<void> Gateway::admin_action(net::Exchange& ex, Outcome& outcome,
                                                 const AdminRoute& route,
                                                 const json::object& body) {
  const net::Request& req = ex.request();
  auto snapshot = ctx_.backends.snapshot();
  const std::string id(route.id);
  switch (route.action) {
    case AdminAction::list_backends:
      co_return co_await reply(ex, outcome, list_response(req, *snapshot));
    case AdminAction::add_backend: {
      auto given = string_member(body, "id");
      if (!given) co_return co_await reject(ex, outcome, Error::body_malformed);
      auto b = read_backend(body, *given, ctx_.config.allow_link_local_callbacks);
      if (!b) co_return co_await reject(ex, outcome, b.error());
      auto added = co_await persist(b->id, *snapshot, ctx_.backends.add(*b));
      co_return co_await admin_done(ex, outcome, added, http::status::created);
    }
    case AdminAction::get_backend: {
      auto it = snapshot->backends.find(id);
      if (it == snapshot->backends.end()) co_return co_await reject(ex, outcome, Error::not_found);
      co_return co_await reply(ex, outcome,
                               json_response(req, http::status::ok, backend_json(it->second)));
    }
    case AdminAction::replace_backend: {
      auto b = read_backend(body, id, ctx_.config.allow_link_local_callbacks);
      if (!b) co_return co_await reject(ex, outcome, b.error());
      auto replaced = co_await persist(b->id, *snapshot, ctx_.backends.replace(*b));
      co_return co_await admin_done(ex, outcome, replaced, http::status::ok);
    }
    case AdminAction::remove_backend: {
      auto removed = co_await persist(id, *snapshot, ctx_.backends.remove(id));
      co_return co_await admin_done(ex, outcome, removed, http::status::ok);
    }
    case AdminAction::add_keys: {
      auto keys = read_keys(body);
      if (!keys) co_return co_await reject(ex, outcome, keys.error());
      auto added = co_await persist(id, *snapshot, ctx_.backends.add_keys(id, *keys));
      co_return co_await admin_done(ex, outcome, added, http::status::ok);
    }
    case AdminAction::remove_key: {
      auto removed = co_await persist(id, *snapshot, ctx_.backends.remove_key(id, route.kid));
      co_return co_await admin_done(ex, outcome, removed, http::status::ok);
    }
    case AdminAction::revoke: co_return co_await revoke(ex, outcome, body);
    case AdminAction::outbox_stats:
    case AdminAction::outbox_dead:
    case AdminAction::outbox_replay:
      co_return co_await admin_outbox(ex, outcome, route.action, body);
  }
}

net::asio::awaitable<void> Gateway::revoke(net::Exchange& ex, Outcome& outcome,
                                           const json::object& body) {
  auto iss = string_member(body, "iss");
  auto jti = string_member(body, "jti");
  auto sub = string_member(body, "sub");
  if (!iss || jti.has_value() == sub.has_value()) {
    co_return co_await reject(ex, outcome, Error::body_malformed);
  }
  const std::int64_t now = unix_ms() / 1000;
  const VerifyPolicy& policy = ctx_.config.policy;
  // Every key the server would still accept has exp <= now + leeway + max_ttl, and its state
  // lives until exp + leeway: remembering the revocation that long covers them all.
  const std::int64_t until = now + policy.max_ttl + 2 * policy.leeway;
  Result<void> r;
  if (jti) {
    r = co_await ctx_.uses.revoke_jti(*iss, *jti, until, now);
  } else {
    // The verifier accepts keys issued up to `leeway` seconds in the future (clock skew), so
    // "every key of this sub issued so far" is every key with iat <= now + leeway. Keys minted
    // for the sub in the next `leeway` seconds are refused too: the safe side.
    r = co_await ctx_.uses.revoke_sub(*iss, *sub, now + policy.leeway, until, now);
  }
  if (!r && r.error() == Error::store_unavailable) ctx_.metrics.store_error();
  co_await admin_done(ex, outcome, r, http::status::ok);
}

// One line per change: what, on which backend or key, from where, and how it ended. Bodies are
// not logged (JWKS are public, but a body may carry anything a client put in it).
void Gateway::log_admin_change(net::Exchange& ex, const AdminRoute& route, const json::object& body,
                               unsigned status) {
  auto text = [&](std::string_view name) {
    auto v = string_member(body, name);
    return v ? std::string(*v) : std::string();
  };
  spdlog::info("admin: {} {} id={} kid={} iss={} jti={} sub={} -> {}", ex.request().method_string(),
               ex.request().target(), route.id.empty() ? text("id") : std::string(route.id),
               route.kid, text("iss"), text("jti"), text("sub").empty() ? "" : "(given)", status);
}

}  // namespace dynaseal::server
