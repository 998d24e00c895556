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

#include "core/crypto.hpp"
#include "core/json.hpp"
#include "core/jwk.hpp"
#include "net/http_client.hpp"
#include "net/http_errors.hpp"
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

// Splits "/admin/v1/backends/acme/keys/kid" into its segments after "/admin/v1/".
std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  path.remove_prefix(std::string_view("/admin/v1/").size());
  while (!path.empty()) {
    const std::size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

Result<std::vector<PublicJwk>> read_keys(const json::object& body) {
  const json::value* jwks = member(body, "jwks");
  if (jwks == nullptr || !jwks->is_object()) return Unexpected(Error::body_malformed);
  auto keys = parse_jwks(json::serialize(*jwks));
  if (!keys) return Unexpected(Error::body_malformed);
  return keys;
}

// A Backend from a POST/PUT body; `id` comes from the path for PUT.
Result<Backend> read_backend(const json::object& body, std::string_view id) {
  Backend b;
  b.id = std::string(id);
  auto keys = read_keys(body);
  if (!keys) return Unexpected(keys.error());
  b.keys = std::move(*keys);
  if (const json::value* url = member(body, "callback_url"); url != nullptr) {
    if (!url->is_string()) return Unexpected(Error::body_malformed);
    b.callback_url = std::string(as_view(url->get_string()));
    if (!b.callback_url.empty() && !net::parse_upstream_url(b.callback_url)) {
      return Unexpected(Error::body_malformed);
    }
  }
  if (b.id.empty() || b.id.size() > kMaxIssBytes) return Unexpected(Error::body_malformed);
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
  const auto path = segments(target.substr(0, target.find('?')));
  const http::verb method = req.method();
  json::object body;
  if (method == http::verb::post || method == http::verb::put) {
    auto doc =
        parse_json(req.body(), {.max_bytes = ctx_.config.http.max_body_bytes, .max_depth = 16});
    if (!doc || !doc->is_object()) co_return co_await reject(ex, outcome, Error::body_malformed);
    body = std::move(doc->get_object());
  }
  auto snapshot = ctx_.backends.snapshot();

  if (path.size() == 1 && path[0] == "backends" && method == http::verb::get) {
    co_return co_await reply(ex, outcome, list_response(req, *snapshot));
  }
  if (path.size() == 1 && path[0] == "backends" && method == http::verb::post) {
    auto id = string_member(body, "id");
    if (!id) co_return co_await reject(ex, outcome, Error::body_malformed);
    auto b = read_backend(body, *id);
    if (!b) co_return co_await reject(ex, outcome, b.error());
    auto added = co_await persist(b->id, *snapshot, ctx_.backends.add(*b));
    co_return co_await admin_done(ex, outcome, added, http::status::created);
  }
  if (path.size() == 2 && path[0] == "backends") {
    if (method == http::verb::get) {
      auto it = snapshot->backends.find(path[1]);
      if (it == snapshot->backends.end()) co_return co_await reject(ex, outcome, Error::not_found);
      co_return co_await reply(ex, outcome,
                               json_response(req, http::status::ok, backend_json(it->second)));
    }
    if (method == http::verb::put) {
      auto b = read_backend(body, path[1]);
      if (!b) co_return co_await reject(ex, outcome, b.error());
      auto replaced = co_await persist(b->id, *snapshot, ctx_.backends.replace(*b));
      co_return co_await admin_done(ex, outcome, replaced, http::status::ok);
    }
    if (method == http::verb::delete_) {
      auto removed =
          co_await persist(std::string(path[1]), *snapshot, ctx_.backends.remove(path[1]));
      co_return co_await admin_done(ex, outcome, removed, http::status::ok);
    }
  }
  if (path.size() == 3 && path[0] == "backends" && path[2] == "keys" &&
      method == http::verb::post) {
    auto keys = read_keys(body);
    if (!keys) co_return co_await reject(ex, outcome, keys.error());
    auto added =
        co_await persist(std::string(path[1]), *snapshot, ctx_.backends.add_keys(path[1], *keys));
    co_return co_await admin_done(ex, outcome, added, http::status::ok);
  }
  if (path.size() == 4 && path[0] == "backends" && path[2] == "keys" &&
      method == http::verb::delete_) {
    auto removed = co_await persist(std::string(path[1]), *snapshot,
                                    ctx_.backends.remove_key(path[1], path[3]));
    co_return co_await admin_done(ex, outcome, removed, http::status::ok);
  }
  if (path.size() == 1 && path[0] == "revocations" && method == http::verb::post) {
    auto iss = string_member(body, "iss");
    auto jti = string_member(body, "jti");
    auto sub = string_member(body, "sub");
    if (!iss || jti.has_value() == sub.has_value()) {
      co_return co_await reject(ex, outcome, Error::body_malformed);
    }
    const std::int64_t now = unix_ms() / 1000;
    // Every key the server would still accept has exp <= now + leeway + max_ttl, and its state
    // lives until exp + leeway: remembering the revocation that long covers them all.
    const std::int64_t until = now + ctx_.config.policy.max_ttl + 2 * ctx_.config.policy.leeway;
    Result<void> r;
    if (jti) {
      r = co_await ctx_.uses.revoke_jti(*iss, *jti, until, now);
    } else {
      r = co_await ctx_.uses.revoke_sub(*iss, *sub, now, until, now);
    }
    if (!r && r.error() == Error::store_unavailable) ctx_.metrics.store_error();
    co_return co_await admin_done(ex, outcome, r, http::status::ok);
  }
  if (!path.empty() && path[0] == "outbox")
    co_return co_await admin_outbox(ex, outcome, path, body);
  co_await reject(ex, outcome, Error::not_found);
}

}  // namespace dynaseal::server
