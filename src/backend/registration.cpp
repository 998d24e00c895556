#include "backend/registration.hpp"

#include <cstdio>
#include <filesystem>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "backend/signing_key.hpp"
#include "core/json.hpp"
#include "core/jwk.hpp"
#include "net/http_call.hpp"
#include "store/key_file.hpp"

namespace dynaseal::backend {
namespace {

namespace json = boost::json;
namespace http = net::http;
using net::http_call;
using net::HttpReply;
using net::kMaxReplyBytes;

struct WellKnown {
  std::string id{};
  std::string jwks{};  // JWKS document
  std::vector<std::string> kids{};
  std::int64_t leeway = 30;
};

Result<WellKnown> read_well_known(std::string_view body) {
  auto doc = parse_json(body, {.max_bytes = kMaxReplyBytes, .max_depth = 16});
  if (!doc || !doc->is_object()) return Unexpected(Error::upstream_error);
  const json::object& o = doc->get_object();
  auto id = string_member(o, "id");
  const json::value* jwks = member(o, "jwks");
  if (!id || jwks == nullptr || !jwks->is_object()) return Unexpected(Error::upstream_error);
  WellKnown w{.id = std::string(*id), .jwks = json::serialize(*jwks)};
  auto keys = parse_jwks(w.jwks);
  if (!keys) return Unexpected(Error::key_invalid);
  for (const PublicJwk& k : *keys) w.kids.push_back(k.kid);
  if (auto leeway = int_member(o, "leeway"); leeway && *leeway >= 0) w.leeway = *leeway;
  return w;
}

// {"keys":[...]} of every signing key not retired yet.
Result<json::object> backend_jwks(BackendStore& store, std::vector<std::string>& kids) {
  auto keys = store.signing_keys();
  if (!keys) return Unexpected(keys.error());
  json::array list;
  for (const SigningKeyRecord& k : *keys) {
    if (k.state == KeyState::retired) continue;
    list.push_back(json::parse(k.public_jwk));
    kids.push_back(k.kid);
  }
  return json::object{{"keys", std::move(list)}};
}

std::string registration_body(const BackendConfig& c, json::object jwks, bool with_id) {
  json::object body;
  if (with_id) body["id"] = c.id;
  body["jwks"] = std::move(jwks);
  body["callback_url"] = c.public_url + "/v1/callbacks/usage";
  return json::serialize(body);
}

// The signing key in the file is the active one (store.hpp: activate_signing_key).
Result<ActiveKey> sync_active_key(const BackendConfig& c, BackendStore& store, std::int64_t now) {
  auto key = load_or_create_signing_key(c.signing_key);
  if (!key) return key;
  if (auto ok = store.activate_signing_key(key->kid, key->public_jwk, now); !ok) {
    return Unexpected(ok.error());
  }
  return key;
}

std::string server_url(const BackendConfig& c, BackendStore& store) {
  auto pinned = store.pinned_server(c.server.id);
  return pinned && *pinned ? (*pinned)->url : c.server.url;
}

std::int64_t server_leeway(const BackendConfig& c, BackendStore& store) {
  auto pinned = store.pinned_server(c.server.id);
  return pinned && *pinned ? (*pinned)->leeway : 30;
}

// Refuses (with a message) a reply that is not 2xx.
Result<HttpReply> expect_ok(Result<HttpReply> reply, std::string_view what, std::string& message) {
  if (!reply) {
    message = "cannot reach the server for " + std::string(what);
    return reply;
  }
  if (reply->ok()) return reply;
  message = std::string(what) + ": the server answered " + reply->describe();
  return Unexpected(reply->error());
}

// Creates <signing_key>.next, or reads it when an interrupted rotation left it.
Result<ActiveKey> next_key(const BackendConfig& c) {
  std::filesystem::path next = c.signing_key;
  next += ".next";
  return load_or_create_signing_key(next);
}

}  // namespace

Result<std::vector<PublicKey>> pinned_server_keys(BackendStore& store, std::string_view id) {
  auto pinned = store.pinned_server(id);
  if (!pinned) return Unexpected(pinned.error());
  if (!*pinned) return Unexpected(Error::server_unknown);
  auto keys = parse_jwks((*pinned)->jwks);
  if (!keys) return Unexpected(Error::server_unknown);
  std::vector<PublicKey> out{};
  for (const PublicJwk& k : *keys) out.push_back(k.key);
  return out;
}

Result<RegisterReport> register_with_server(const BackendConfig& c, BackendStore& store,
                                            std::string_view url, std::string_view admin_token,
                                            std::int64_t now, std::string& message) {
  if (c.public_url.empty()) {
    message = "public_url is not set (needed for the callback URL)";
    return Unexpected(Error::io_error);
  }
  auto reply = expect_ok(http_call(url, http::verb::get, "/.well-known/dynaseal"),
                         "GET /.well-known/dynaseal", message);
  if (!reply) return Unexpected(reply.error());
  auto known = read_well_known(reply->body);
  if (!known) {
    message = "the server's /.well-known/dynaseal document is not usable";
    return Unexpected(known.error());
  }
  if (known->id != c.server.id) {
    message = "the server at " + std::string(url) + " is '" + known->id + "', the configuration " +
              "expects '" + c.server.id + "'";
    return Unexpected(Error::server_unknown);
  }
  PinnedServer pin{.id = known->id,
                   .url = std::string(url),
                   .jwks = known->jwks,
                   .leeway = known->leeway,
                   .pinned_at = now};
  if (auto ok = store.pin_server(pin); !ok) return Unexpected(ok.error());
  if (auto key = sync_active_key(c, store, now); !key) return Unexpected(key.error());
  RegisterReport report{.server_id = known->id, .server_kids = known->kids};
  auto jwks = backend_jwks(store, report.backend_kids);
  if (!jwks) return Unexpected(jwks.error());
  auto added = http_call(url, http::verb::post, "/admin/v1/backends",
                         registration_body(c, *jwks, true), admin_token);
  if (added && added->status == 409) {
    report.updated = true;
    added = http_call(url, http::verb::put, "/admin/v1/backends/" + c.id,
                      registration_body(c, *jwks, false), admin_token);
  }
  if (auto ok = expect_ok(std::move(added), "registration", message); !ok) {
    return Unexpected(ok.error());
  }
  return report;
}

std::int64_t retire_after(const SigningKeyRecord& key, std::int64_t leeway) {
  const std::int64_t switched = key.rotated_at.value_or(key.created_at) + kSwitchMargin;
  const std::int64_t expired = key.last_expiry ? *key.last_expiry + leeway : 0;
  return std::max(switched, expired);
}

Result<RetireReport> finish_rotation(const BackendConfig& c, BackendStore& store,
                                     std::string_view admin_token, std::int64_t now,
                                     std::string& message) {
  if (auto key = sync_active_key(c, store, now); !key) return Unexpected(key.error());
  auto keys = store.signing_keys();
  if (!keys) return Unexpected(keys.error());
  const std::string url = server_url(c, store);
  const std::int64_t leeway = server_leeway(c, store);
  RetireReport report;
  for (const SigningKeyRecord& k : *keys) {
    if (k.state != KeyState::retiring) continue;
    const std::int64_t due = retire_after(k, leeway);
    if (now < due) {
      report.pending.emplace_back(k.kid, due);
      continue;
    }
    auto gone = http_call(url, http::verb::delete_, "/admin/v1/backends/" + c.id + "/keys/" + k.kid,
                          {}, admin_token);
    if (!(gone && gone->status == 404)) {  // 404: removed already (or never registered)
      if (auto ok = expect_ok(std::move(gone), "retiring key " + k.kid, message); !ok) {
        return Unexpected(ok.error());
      }
    }
    if (auto ok = store.retire_signing_key(k.kid, now); !ok) return Unexpected(ok.error());
    report.retired.push_back(k.kid);
  }
  return report;
}

Result<RotateReport> rotate_signing_key(const BackendConfig& c, BackendStore& store,
                                        std::string_view admin_token, std::int64_t now,
                                        std::string& message) {
  auto retired = finish_rotation(c, store, admin_token, now, message);
  if (!retired) return Unexpected(retired.error());
  auto old = read_signing_key(c.signing_key);
  auto next = next_key(c);
  if (!old || !next) {
    message = "cannot read or create the signing key files";
    return Unexpected(!old ? old.error() : next.error());
  }
  json::object jwks{{"keys", json::array{json::parse(next->public_jwk)}}};
  auto added =
      http_call(server_url(c, store), http::verb::post, "/admin/v1/backends/" + c.id + "/keys",
                json::serialize(json::object{{"jwks", std::move(jwks)}}), admin_token);
  if (auto ok = expect_ok(std::move(added), "registering the new key", message); !ok) {
    return Unexpected(ok.error());  // the .next file stays for the next attempt
  }
  std::filesystem::path next_path = c.signing_key;
  next_path += ".next";
  if (std::rename(next_path.c_str(), c.signing_key.c_str()) != 0) {
    message = "cannot rename " + next_path.string() + " over " + c.signing_key.string();
    return Unexpected(Error::io_error);
  }
  if (auto ok = store.activate_signing_key(next->kid, next->public_jwk, now); !ok) {
    message = "the new key signs, but the store did not record it; run rotate-key --finish";
    return Unexpected(ok.error());
  }
  RotateReport report{.new_kid = next->kid, .old_kid = old->kid, .retire = std::move(*retired)};
  auto keys = store.signing_keys();
  if (!keys) return Unexpected(keys.error());
  for (const SigningKeyRecord& k : *keys) {
    if (k.kid == old->kid) report.old_due_at = retire_after(k, server_leeway(c, store));
  }
  return report;
}

}  // namespace dynaseal::backend
