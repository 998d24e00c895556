// The backend's configuration (DESIGN §11, docs/backend.md), read from TOML as strictly as the
// server's: unknown keys, wrong types and values out of range are errors naming the key, so a
// typo never falls back to a default. Relative paths are taken relative to the config file's
// directory. Money is exact: prices are written as decimal strings ("0.0015") or integers and
// kept as integer micro-units (money.hpp); a TOML float is refused.
//
//   BackendConfig config = load_backend_config("backend.toml");   // throws ConfigError
//   const Plan* plan = config.plan("free");
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "backend/money.hpp"
#include "core/toml_reader.hpp"
#include "net/http_server.hpp"

namespace dynaseal::backend {

using dynaseal::ConfigError;  // core/toml_reader.hpp

struct Plan {
  std::string name{};
  std::vector<std::string> models{};
  std::int64_t max_tokens = 256;       // cap on dks.max_tokens
  std::int64_t uses = 1;               // cap on dks.uses
  std::int64_t key_ttl = 60;           // seconds: exp - iat of every key
  std::int64_t mints_per_minute = 60;  // per user
  std::int64_t daily_tokens = 0;       // per user and UTC day; 0: no daily quota
  std::int64_t key_budget = 0;         // tokens per key; 0: (max_tokens + prompt_tokens) × uses
  // The prompt each use of a key may bring, in the server's prompt bound (its body's bytes plus
  // the engine's template overhead, docs/server.md): part of the key's budget when the plan
  // sets one by itself (key_budget 0 with a daily quota or prepaid credit).
  std::int64_t prompt_tokens = 4096;
  bool prepaid = false;                                     // keys are limited by the user's credit
  std::map<std::string, ModelPrice, std::less<>> prices{};  // by model

  bool allows_model(std::string_view model) const;
  // The model's price, or zero prices when the plan names none.
  ModelPrice price(std::string_view model) const;
};

struct ServerRef {
  std::string id = "llm-1";
  std::string url = "http://127.0.0.1:8000";
};

struct BackendConfig {
  std::string id{};  // required: the iss of every key, the backend id at the server
  net::ServerOptions http{.port = 9000};
  std::string public_url{};               // default http://<listen>
  std::filesystem::path signing_key;      // default <id>.jwk
  std::string db = "sqlite:backend.db";   // as written
  std::filesystem::path db_path;          // resolved sqlite path; empty for PostgreSQL
  std::int64_t callback_tolerance = 300;  // seconds a webhook-timestamp may be off
  std::int64_t settle_grace = 300;        // seconds a key's reservation outlives its exp
  bool access_log = true;
  ServerRef server;
  std::vector<Plan> plans{};

  const Plan* plan(std::string_view name) const;
};

BackendConfig load_backend_config(const std::filesystem::path& file);
BackendConfig parse_backend_config(std::string_view toml, const std::filesystem::path& base_dir);

}  // namespace dynaseal::backend
