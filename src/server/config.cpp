#include "server/config.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <set>

#include <toml++/toml.h>

#include "core/toml_reader.hpp"
#include "server/backend_checks.hpp"
#include "store/key_file.hpp"
#include "store/postgres_url.hpp"
#include "store/redis_keys.hpp"
#include "store/sqlite.hpp"

namespace dynaseal::server {
namespace {

using std::chrono::milliseconds;

using Reader = TomlReader;

std::filesystem::path resolve(const std::filesystem::path& base, const std::string& p) {
  const std::filesystem::path path(p);
  return path.is_absolute() ? path : base / path;
}

EngineKind read_engine(const Reader& r) {
  const std::string name = r.string("engine", "generic");
  if (name == "generic") return EngineKind::generic;
  if (name == "openai") return EngineKind::openai;
  if (name == "vllm") return EngineKind::vllm;
  if (name == "llamacpp") return EngineKind::llamacpp;
  if (name == "ollama") return EngineKind::ollama;
  if (name == "tgi") return EngineKind::tgi;
  r.fail("engine", "expected generic, openai, vllm, llamacpp, ollama or tgi");
}

void set_cap_fields(EngineKind engine, UpstreamConfig& u) {
  switch (engine) {
    case EngineKind::generic:
    case EngineKind::vllm: u.chat_cap_fields = {"max_tokens", "max_completion_tokens"}; break;
    case EngineKind::openai: u.chat_cap_fields = {"max_completion_tokens"}; break;
    case EngineKind::llamacpp: u.chat_cap_fields = {"max_tokens", "n_predict"}; break;
    case EngineKind::ollama:
    case EngineKind::tgi: u.chat_cap_fields = {"max_tokens"}; break;
  }
  u.completion_cap_fields = {"max_tokens"};
  if (engine == EngineKind::llamacpp) u.completion_cap_fields.emplace_back("n_predict");
}

// engine, cap_fields, extra_members, media_item_tokens, prompt_overhead_tokens.
void read_enforcement(const Reader& r, UpstreamConfig& u) {
  u.engine = read_engine(r);
  set_cap_fields(u.engine, u);
  if (r.get("cap_fields") != nullptr) {
    auto fields = r.strings("cap_fields");
    for (const std::string& f : fields) {
      if (f != "max_tokens" && f != "max_completion_tokens" && f != "n_predict" &&
          f != "max_new_tokens" && f != "num_predict") {
        r.fail("cap_fields", "unknown field " + f +
                                 " (max_tokens, max_completion_tokens, n_predict, "
                                 "max_new_tokens, num_predict)");
      }
    }
    u.chat_cap_fields = u.completion_cap_fields = fields;
  }
  if (r.get("extra_members") != nullptr) {
    u.members.extra_members = r.strings("extra_members");
    for (const std::string& m : u.members.extra_members) {
      if (is_length_member(m)) {
        r.fail("extra_members", m + " changes how much an engine generates, or is a standard "
                                    "member: it cannot be allowed as an extra");
      }
    }
  }
  u.members.media_item_tokens = r.integer("media_item_tokens", 0, 0, 1'000'000);
  u.prompt_overhead_tokens = r.integer("prompt_overhead_tokens", 256, 0, 1'000'000);
}

UpstreamConfig read_upstream(const toml::table& t, std::size_t index) {
  Reader r(t, "upstream[" + std::to_string(index) + "]");
  r.only({"name", "url", "models", "api_key_env", "connect_timeout", "first_byte_timeout",
          "idle_timeout", "total_timeout", "max_idle_connections", "verify_tls", "ca_file",
          "engine", "cap_fields", "extra_members", "media_item_tokens", "prompt_overhead_tokens"});
  UpstreamConfig u;
  u.name = r.required("name");
  u.url = r.required("url");
  auto target = net::parse_upstream_url(u.url);
  if (!target) r.fail("url", "expected http://host[:port][/path] or https://...");
  u.target = *target;
  u.models = r.strings("models");
  if (u.models.empty()) r.fail("models", "must name at least one model");
  u.api_key_env = r.string("api_key_env", "");
  if (!u.api_key_env.empty()) {
    const char* key = std::getenv(u.api_key_env.c_str());
    if (key == nullptr || *key == '\0') {
      r.fail("api_key_env", "environment variable " + u.api_key_env + " is not set");
    }
    u.api_key = key;
  }
  net::ClientOptions& o = u.client;
  o.connect_timeout = r.seconds("connect_timeout", o.connect_timeout);
  o.first_byte_timeout = r.seconds("first_byte_timeout", o.first_byte_timeout);
  o.idle_timeout = r.seconds("idle_timeout", o.idle_timeout);
  o.total_timeout = r.seconds("total_timeout", o.total_timeout);
  o.max_idle_connections = static_cast<std::size_t>(r.integer(
      "max_idle_connections", static_cast<std::int64_t>(o.max_idle_connections), 0, 100000));
  o.verify_tls = r.boolean("verify_tls", true);
  o.ca_file = r.string("ca_file", "");
  read_enforcement(r, u);
  return u;
}

BackendConfig read_backend(const toml::table& t, std::size_t index,
                           const std::filesystem::path& base, bool allow_link_local) {
  Reader r(t, "backend[" + std::to_string(index) + "]");
  r.only({"id", "jwks", "callback_url"});
  BackendConfig b;
  b.id = r.required("id");
  if (!valid_backend_id(b.id)) r.fail("id", "expected 1-128 characters of [A-Za-z0-9._-]");
  b.jwks_file = resolve(base, r.required("jwks"));
  auto keys = store::read_jwks_file(b.jwks_file);
  if (!keys) {
    r.fail("jwks", std::string(to_string(keys.error())) + ": cannot use " + b.jwks_file.string());
  }
  b.keys = std::move(*keys);
  b.callback_url = r.string("callback_url", "");
  if (!b.callback_url.empty()) {
    if (auto problem = callback_url_problem(b.callback_url, allow_link_local)) {
      r.fail("callback_url", *problem);
    }
  }
  return b;
}

// hostname:port identifies a replica sharing PostgreSQL across its restarts; with port 0 the
// process id stands in, and a restarted replica's unfinished records go to recover_stale.
std::string default_replica_id(std::uint16_t port) {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::strcpy(host, "localhost");
  return std::string(host) + ":" + std::to_string(port != 0 ? port : getpid());
}

// Below the descriptor limit: each client connection may hold an engine connection too, and
// the process needs some for its databases, logs and listeners. A server that runs out of
// descriptors fails every accept and every upstream connect at once.
std::int64_t default_max_connections() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 100'000;
  const auto usable = static_cast<std::int64_t>(limit.rlim_cur) - 64;
  return std::clamp<std::int64_t>(usable / 2, 16, 100'000);
}

void read_top(const Reader& r, ServerConfig& c, const std::filesystem::path& base) {
  r.only({"id",
          "listen",
          "identity_key",
          "admin_token_file",
          "max_key_ttl",
          "leeway",
          "max_body_bytes",
          "store",
          "store_max_entries",
          "store_timeout_ms",
          "store_key_prefix",
          "db",
          "threads",
          "access_log",
          "header_timeout",
          "idle_timeout",
          "body_timeout",
          "write_timeout",
          "max_connections",
          "tls_certificate",
          "tls_private_key",
          "upstream",
          "backend",
          "outbox",
          "replica_id",
          "reuse_port",
          "refusal_log_per_second",
          "allow_link_local_callbacks"});
  c.id = r.string("id", c.id);
  if (c.id.empty() || c.id.size() > kMaxIssBytes) r.fail("id", "must be 1-256 bytes");
  std::tie(c.http.host, c.http.port) = parse_listen(r.string("listen", "127.0.0.1:8000"), "listen");
  c.identity_key = resolve(base, r.string("identity_key", "server.jwk"));
  c.admin_token_file = resolve(base, r.string("admin_token_file", "admin.token"));
  c.policy.max_ttl = r.integer("max_key_ttl", 3600, 1, 7 * 86400);
  c.policy.leeway = r.integer("leeway", 30, 0, 3600);
  c.http.max_body_bytes =
      static_cast<std::size_t>(r.integer("max_body_bytes", 1 << 20, 1024, 64 << 20));
  c.store = r.string("store", "memory");
  if (c.store != "memory") {
    auto redis = store::parse_redis_url(c.store);  // its errors never show the password
    if (!redis) r.fail("store", "expected \"memory\" or a Redis URL: " + redis.error());
    c.store_redis = *redis;
  }
  c.store_timeout = milliseconds(r.integer("store_timeout_ms", 250, 10, 60'000));
  c.store_key_prefix = r.string("store_key_prefix", "dks");
  if (!store::valid_redis_key_prefix(c.store_key_prefix)) {
    r.fail("store_key_prefix", "expected 1-64 characters of [A-Za-z0-9_.-]");
  }
  c.store_max_entries =
      static_cast<std::size_t>(r.integer("store_max_entries", 1'000'000, 1000, 1'000'000'000));
  c.db = r.string("db", "sqlite:server.db");
  if (c.db.starts_with("postgres")) {
    // The message never contains the password (postgres_url.hpp).
    if (auto bad = store::check_postgres_url(c.db)) r.fail("db", *bad);
    c.db_path.clear();
  } else {
    auto db_path = store::sqlite_path(c.db, base);
    if (!db_path) r.fail("db", "expected sqlite:PATH or postgresql://...");
    c.db_path = *db_path;
  }
  // A SQLite file serves one node: the server id names its only replica, stable across
  // restarts. Replicas sharing PostgreSQL need distinct names.
  c.replica_id = r.string("replica_id", c.db_path.empty() ? default_replica_id(c.http.port) : c.id);
  if (c.replica_id.empty() || c.replica_id.size() > 128)
    r.fail("replica_id", "must be 1-128 bytes");
  c.http.threads = static_cast<unsigned>(r.integer("threads", 0, 0, 1024));
  c.http.reuse_port = r.boolean("reuse_port", false);
  c.access_log = r.boolean("access_log", true);
  c.allow_link_local_callbacks = r.boolean("allow_link_local_callbacks", false);
  c.refusal_log_per_second = r.integer("refusal_log_per_second", 100, 0, 1'000'000);
  net::ServerOptions& h = c.http;
  h.header_timeout = r.seconds("header_timeout", h.header_timeout);
  h.idle_timeout = r.seconds("idle_timeout", h.idle_timeout);
  h.body_timeout = r.seconds("body_timeout", h.body_timeout);
  h.write_timeout = r.seconds("write_timeout", h.write_timeout);
  h.max_connections = static_cast<std::size_t>(
      r.integer("max_connections", default_max_connections(), 1, 10'000'000));
  const std::string cert = r.string("tls_certificate", ""), key = r.string("tls_private_key", "");
  if (cert.empty() != key.empty()) r.fail("tls_certificate", "needs tls_private_key too");
  if (!cert.empty()) h.tls = net::TlsFiles{resolve(base, cert), resolve(base, key)};
}

OutboxOptions read_outbox(const toml::table& t) {
  const Reader r(t, "outbox");
  r.only({"retry_base_ms", "retry_max_delay", "max_age", "retention", "concurrency_per_backend",
          "delivery_timeout_ms", "poll_ms", "heartbeat_ms", "replica_timeout", "open_log"});
  OutboxOptions o;
  auto ms = [&](std::string_view key, milliseconds fallback, std::int64_t min, std::int64_t max) {
    return milliseconds(r.integer(key, fallback.count(), min, max));
  };
  auto secs = [&](std::string_view key, milliseconds fallback, std::int64_t min, std::int64_t max) {
    return milliseconds(r.integer(key, fallback.count() / 1000, min, max) * 1000);
  };
  o.retry_base = ms("retry_base_ms", o.retry_base, 10, 3'600'000);
  o.retry_max_delay = secs("retry_max_delay", o.retry_max_delay, 1, 7 * 86400);
  o.max_age = secs("max_age", o.max_age, 1, 30 * 86400);
  o.retention = secs("retention", o.retention, 1, 365 * 86400);
  o.concurrency_per_backend =
      static_cast<std::size_t>(r.integer("concurrency_per_backend", 16, 1, 1024));
  o.delivery_timeout = ms("delivery_timeout_ms", o.delivery_timeout, 100, 600'000);
  o.poll = ms("poll_ms", o.poll, 10, 60'000);
  o.heartbeat = ms("heartbeat_ms", o.heartbeat, 100, 60'000);
  o.replica_timeout = secs("replica_timeout", o.replica_timeout, 1, 86400);
  o.open_log = r.boolean("open_log", o.open_log);
  if (o.replica_timeout < 2 * o.heartbeat)
    r.fail("replica_timeout", "must be at least 2 heartbeats");
  if (o.retry_max_delay < o.retry_base) r.fail("retry_max_delay", "is below retry_base_ms");
  return o;
}

}  // namespace

ServerConfig parse_server_config(std::string_view text, const std::filesystem::path& base_dir) {
  const toml::table table = parse_toml(text);
  ServerConfig c;
  const Reader top(table, "");
  read_top(top, c, base_dir);

  if (const toml::node* outbox = table.get("outbox")) {
    if (!outbox->is_table()) top.fail("outbox", "expected an [outbox] table");
    c.outbox = read_outbox(*outbox->as_table());
  }
  // A restarted server learns from its outbox which uses of live keys were taken (the memory
  // store forgets them): delivered records must outlive every key that may still be used.
  const std::int64_t key_lifetime = c.policy.max_ttl + 2 * c.policy.leeway;
  if (c.outbox.retention < std::chrono::seconds(key_lifetime)) {
    top.fail("outbox", "retention must be at least max_key_ttl + 2 * leeway (" +
                           std::to_string(key_lifetime) + " s)");
  }

  std::set<std::string> names, models, backend_ids;
  if (const toml::array* ups = top.tables("upstream")) {
    for (std::size_t i = 0; i < ups->size(); ++i) {
      UpstreamConfig u = read_upstream(*ups->get(i)->as_table(), i);
      if (!names.insert(u.name).second) top.fail("upstream", "two upstreams named " + u.name);
      for (const auto& m : u.models) {
        if (!models.insert(m).second) top.fail("upstream", "model " + m + " routed twice");
      }
      c.upstreams.push_back(std::move(u));
    }
  }
  if (const toml::array* backends = top.tables("backend")) {
    for (std::size_t i = 0; i < backends->size(); ++i) {
      BackendConfig b =
          read_backend(*backends->get(i)->as_table(), i, base_dir, c.allow_link_local_callbacks);
      if (!backend_ids.insert(b.id).second) top.fail("backend", "two backends with id " + b.id);
      c.backends.push_back(std::move(b));
    }
  }
  return c;
}

ServerConfig load_server_config(const std::filesystem::path& file) {
  auto text = store::read_small_file(file, 1 << 20);
  if (!text) throw ConfigError("cannot read " + file.string());
  return parse_server_config(*text, std::filesystem::absolute(file).parent_path());
}

}  // namespace dynaseal::server
