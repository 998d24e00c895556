#include "core/claims.hpp"

#include <boost/json/serialize.hpp>

#include "core/json.hpp"

namespace dynaseal {
namespace {

namespace json = boost::json;

const Unexpected kMalformed{Error::claims_malformed};

bool valid_time(std::int64_t t) { return t >= 0 && t <= kMaxTime; }

// A required string of 1..max bytes (UTF-8 validity is guaranteed by the parser).
std::optional<std::string> bounded_string(const json::object& obj, std::string_view name,
                                          std::size_t max) {
  auto s = string_member(obj, name);
  if (!s || s->empty() || s->size() > max) return std::nullopt;
  return std::string(*s);
}

bool read_audience(const json::value* aud, std::vector<std::string>& out) {
  if (aud == nullptr) return false;
  if (aud->is_string()) {
    if (aud->get_string().empty() || aud->get_string().size() > kMaxIssBytes) return false;
    out.emplace_back(as_view(aud->get_string()));
    return true;
  }
  if (!aud->is_array() || aud->get_array().empty()) return false;
  if (aud->get_array().size() > kMaxAudiences) return false;
  for (const json::value& v : aud->get_array()) {
    if (!v.is_string() || v.get_string().empty() || v.get_string().size() > kMaxIssBytes) {
      return false;
    }
    out.emplace_back(as_view(v.get_string()));
  }
  return true;
}

bool read_models(const json::value* models, std::vector<std::string>& out) {
  if (models == nullptr || !models->is_array()) return false;
  const json::array& list = models->get_array();
  if (list.empty() || list.size() > kMaxModels) return false;
  for (const json::value& v : list) {
    if (!v.is_string() || v.get_string().empty() || v.get_string().size() > kMaxModelBytes) {
      return false;
    }
    out.emplace_back(as_view(v.get_string()));
  }
  return true;
}

bool read_endpoints(const json::value* v, std::uint8_t& out) {
  if (v == nullptr) return true;  // default: every endpoint
  if (!v->is_array() || v->get_array().empty()) return false;
  out = 0;
  for (const json::value& e : v->get_array()) {
    if (!e.is_string()) return false;
    auto endpoint = parse_endpoint(as_view(e.get_string()));
    if (!endpoint) return false;
    out |= static_cast<std::uint8_t>(*endpoint);
  }
  return true;
}

// A positive int64 member; absent gives `fallback` (nullopt = required).
bool read_positive(const json::object& obj, std::string_view name,
                   std::optional<std::int64_t> fallback, std::int64_t& out) {
  const json::value* v = member(obj, name);
  if (v == nullptr) {
    if (!fallback) return false;
    out = *fallback;
    return true;
  }
  if (!v->is_int64() || v->get_int64() < 1) return false;
  out = v->get_int64();
  return true;
}

bool read_scope(const json::value* dks, Scope& scope) {
  if (dks == nullptr || !dks->is_object()) return false;
  const json::object& obj = dks->get_object();
  for (const auto& kv : obj) {
    const std::string_view name(kv.key().data(), kv.key().size());
    if (name != "models" && name != "max_tokens" && name != "uses" && name != "budget" &&
        name != "stream" && name != "endpoints") {
      return false;
    }
  }
  if (!read_models(member(obj, "models"), scope.models)) return false;
  if (!read_positive(obj, "max_tokens", std::nullopt, scope.max_tokens)) return false;
  if (!read_positive(obj, "uses", 1, scope.uses)) return false;
  if (member(obj, "budget") != nullptr) {
    std::int64_t budget = 0;
    if (!read_positive(obj, "budget", std::nullopt, budget)) return false;
    scope.budget = budget;
  }
  if (const json::value* stream = member(obj, "stream")) {
    if (!stream->is_bool()) return false;
    scope.stream = stream->get_bool();
  }
  return read_endpoints(member(obj, "endpoints"), scope.endpoints);
}

bool read_cnf(const json::value* cnf, std::optional<std::string>& out) {
  if (cnf == nullptr) return true;
  if (!cnf->is_object() || cnf->get_object().size() != 1) return false;
  auto jkt = string_member(cnf->get_object(), "jkt");
  if (!jkt || jkt->size() != 43) return false;  // base64url of a SHA-256 thumbprint
  out = std::string(*jkt);
  return true;
}

}  // namespace

bool valid_jti(std::string_view jti) {
  if (jti.size() < 16 || jti.size() > 128) return false;
  for (const char c : jti) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool valid_backend_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (const char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

Result<Claims> read_claims(const json::object& payload) {
  Claims c;
  auto iss = bounded_string(payload, "iss", kMaxIssBytes);
  auto sub = bounded_string(payload, "sub", kMaxSubBytes);
  auto jti = string_member(payload, "jti");
  auto iat = int_member(payload, "iat");
  auto exp = int_member(payload, "exp");
  if (!iss || !sub || !jti || !iat || !exp) return kMalformed;
  if (!valid_jti(*jti)) return kMalformed;
  if (!valid_time(*iat) || !valid_time(*exp) || *exp <= *iat) return kMalformed;
  if (!read_audience(member(payload, "aud"), c.aud)) return kMalformed;
  if (const json::value* nbf = member(payload, "nbf")) {
    if (!nbf->is_int64() || !valid_time(nbf->get_int64())) return kMalformed;
    c.nbf = nbf->get_int64();
  }
  if (!read_scope(member(payload, "dks"), c.dks)) return kMalformed;
  if (const json::value* ctx = member(payload, "ctx")) {
    if (!ctx->is_string() || ctx->get_string().size() > kMaxCtxBytes) return kMalformed;
    c.ctx = std::string(as_view(ctx->get_string()));
  }
  if (!read_cnf(member(payload, "cnf"), c.cnf_jkt)) return kMalformed;
  c.iss = std::move(*iss);
  c.sub = std::move(*sub);
  c.jti = std::string(*jti);
  c.iat = *iat;
  c.exp = *exp;
  return c;
}

std::string claims_json(const Claims& c) {
  json::object scope;
  json::array models;
  for (const auto& m : c.dks.models) models.emplace_back(m);
  scope["models"] = std::move(models);
  scope["max_tokens"] = c.dks.max_tokens;
  scope["uses"] = c.dks.uses;
  if (c.dks.budget) scope["budget"] = *c.dks.budget;
  scope["stream"] = c.dks.stream;
  if (c.dks.endpoints != kAllEndpoints) {
    json::array endpoints;
    for (Endpoint e : {Endpoint::chat_completions, Endpoint::completions}) {
      if (c.dks.allows(e)) endpoints.emplace_back(to_string(e));
    }
    scope["endpoints"] = std::move(endpoints);
  }

  json::object obj;
  obj["iss"] = c.iss;
  if (c.aud.size() == 1) {
    obj["aud"] = c.aud.front();
  } else {
    json::array aud;
    for (const auto& a : c.aud) aud.emplace_back(a);
    obj["aud"] = std::move(aud);
  }
  obj["sub"] = c.sub;
  obj["jti"] = c.jti;
  obj["iat"] = c.iat;
  if (c.nbf) obj["nbf"] = *c.nbf;
  obj["exp"] = c.exp;
  obj["dks"] = std::move(scope);
  if (c.ctx) obj["ctx"] = *c.ctx;
  if (c.cnf_jkt) obj["cnf"] = json::object{{"jkt", *c.cnf_jkt}};
  return json::serialize(obj);
}

}  // namespace dynaseal
