// The LLM server's configuration (DESIGN §11), read from TOML. Every key has a default;
// unknown keys and wrong types are errors (a typo must not silently fall back to a default).
// Relative paths are taken relative to the config file's directory.
//
//   ServerConfig config = load_server_config("server.toml");   // throws ConfigError
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/dynamic_key.hpp"
#include "core/toml_reader.hpp"
#include "net/http_client.hpp"
#include "net/http_server.hpp"
#include "server/request_members.hpp"
#include "store/redis_url.hpp"

namespace dynaseal::server {

using dynaseal::ConfigError;  // core/toml_reader.hpp

// The engine behind an upstream, for the field(s) that carry the cap (docs/server.md, "The
// cap, per engine"): generic and vllm get max_tokens and max_completion_tokens on chat; openai
// only max_completion_tokens on chat (its reasoning models refuse max_tokens); llamacpp
// max_tokens and n_predict; ollama and tgi max_tokens. /v1/completions always max_tokens, plus
// n_predict for llamacpp.
enum class EngineKind { generic, openai, vllm, llamacpp, ollama, tgi };

struct UpstreamConfig {
  std::string name;
  std::string url;
  net::UpstreamTarget target;
  std::vector<std::string> models;
  std::string api_key_env;  // empty: no key sent
  std::string api_key;      // read from api_key_env at load time; never logged
  net::ClientOptions client;
  EngineKind engine = EngineKind::generic;
  // The members that carry the cap to the engine, per endpoint (from `engine`, or cap_fields).
  std::vector<std::string> chat_cap_fields;
  std::vector<std::string> completion_cap_fields;
  MemberPolicy members;  // extra_members, media_item_tokens
  // Tokens a chat template may add beyond the request's bytes (system preamble, tool
  // instructions, generation prompt): part of every request's prompt bound (docs/server.md).
  std::int64_t prompt_overhead_tokens = 256;

  const std::vector<std::string>& cap_fields(Endpoint e) const {
    return e == Endpoint::completions ? completion_cap_fields : chat_cap_fields;
  }
};

struct BackendConfig {
  std::string id;
  std::filesystem::path jwks_file;
  std::vector<PublicJwk> keys;
  std::string callback_url;
};

// [outbox]: delivery of usage callbacks (server/outbox.hpp).
struct OutboxOptions {
  std::chrono::milliseconds retry_base{1000};
  std::chrono::milliseconds retry_max_delay{std::chrono::hours(6)};
  std::chrono::milliseconds max_age{std::chrono::hours(72)};
  std::chrono::milliseconds retention{std::chrono::hours(24 * 7)};  // delivered events kept
  std::size_t concurrency_per_backend = 16;
  std::chrono::milliseconds delivery_timeout{10000};
  std::chrono::milliseconds lease{std::chrono::minutes(5)};
  std::chrono::milliseconds poll{1000};  // looks for due retries at least this often
  // Replicas sharing one database (PostgreSQL): each records that it is alive every
  // `heartbeat`; the unfinished records of a replica silent for `replica_timeout` are taken
  // over by the others and sent as "interrupted" (Outbox).
  std::chrono::milliseconds heartbeat{1000};
  std::chrono::milliseconds replica_timeout{std::chrono::seconds(30)};
  // One server on SQLite with the memory use store: a request's record is made durable by an
  // append to the open log instead of an awaited commit (server/open_log.hpp).
  bool open_log = true;
};

struct ServerConfig {
  std::string id = "llm-1";
  // This process among the replicas of `id` (owner of its unfinished outbox records); distinct
  // per replica. Default: `id` with SQLite (one node), hostname:port with PostgreSQL.
  std::string replica_id;
  std::filesystem::path identity_key = "server.jwk";
  std::filesystem::path admin_token_file = "admin.token";
  VerifyPolicy policy;
  std::string store = "memory";                  // "memory" or a redis:// URL
  std::optional<store::RedisUrl> store_redis;    // the URL of `store` when it names Redis
  std::size_t store_max_entries = 1'000'000;     // bound of the memory store
  std::chrono::milliseconds store_timeout{250};  // per Redis operation
  std::string store_key_prefix = "dks";          // of every Redis key (docs/server.md)
  std::string db = "sqlite:server.db";
  // Of a "sqlite:PATH" db, resolved against the config's directory; empty for PostgreSQL.
  std::filesystem::path db_path = "server.db";
  OutboxOptions outbox;
  bool access_log = true;
  std::int64_t refusal_log_per_second = 100;
  bool allow_link_local_callbacks =
      false;  // backend_checks.hpp  // refused requests logged one line each, per second
  // The listening side: address (listen), threads, body limit, timeouts, TLS.
  net::ServerOptions http{.port = 8000};
  std::vector<UpstreamConfig> upstreams;
  std::vector<BackendConfig> backends;
};

ServerConfig load_server_config(const std::filesystem::path& file);
ServerConfig parse_server_config(std::string_view toml, const std::filesystem::path& base_dir);

}  // namespace dynaseal::server
