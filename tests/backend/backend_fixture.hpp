// Shared pieces of the backend's unit tests: a configuration with one plan of each kind, usage
// event bodies as the server writes them (DESIGN §5), and their Standard Webhooks signature.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "backend/config.hpp"
#include "backend/usage_event.hpp"
#include "core/key_fixture.hpp"
#include "core/webhook.hpp"
#include "test_support.hpp"

namespace dynaseal::backend::test {

inline constexpr std::int64_t kNow = 1'800'000'000;  // 2027-01-15T08:00:00Z
inline constexpr std::string_view kJti = "AAAAAAAAAAAAAAAAAAAAAA";

// Plans: free (daily quota 1000, max_tokens 100, 2 uses), pro (prepaid: demo at 0.50 / 1.50
// per 1k tokens), open (no quota, no credit: no budget).
inline constexpr std::string_view kConfig = R"(
id = "acme"
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:9000"
db = "sqlite:backend.db"

[server]
id = "llm-1"
url = "http://127.0.0.1:8000"

[[plan]]
name = "free"
models = ["demo"]
max_tokens = 100
uses = 2
key_ttl = 60
mints_per_minute = 3
daily_tokens = 1000
prompt_tokens = 0

[[plan]]
name = "pro"
models = ["demo", "other"]
max_tokens = 1000
uses = 4
key_ttl = 120
prepaid = true
prompt_tokens = 0
[plan.prices.demo]
prompt_per_1k = "0.50"
completion_per_1k = "1.50"
[plan.prices.other]
prompt_per_1k = "0"
completion_per_1k = "0"

[[plan]]
name = "open"
models = ["demo"]
)";

inline BackendConfig test_config(const std::filesystem::path& dir) {
  return parse_backend_config(kConfig, dir);
}

// A usage event as the server's outbox writes it; adjust before serializing.
struct EventSpec {
  std::string event_id = std::string(kJti);
  std::int64_t use = 1;
  std::string server = "llm-1";
  std::string iss = "acme";
  std::string sub = "bob";
  std::string model = "demo";
  std::string status = "ok";
  std::int64_t prompt = 10;
  std::int64_t completion = 20;
  std::string finished_at = "2027-01-15T08:00:00.250Z";
  std::optional<std::string> ctx{};

  std::string webhook_id() const { return event_id + "." + std::to_string(use); }
  boost::json::object json() const {
    boost::json::object o;
    o["type"] = "usage";
    o["event_id"] = event_id;
    o["use"] = use;
    o["server"] = server;
    o["iss"] = iss;
    o["sub"] = sub;
    o["model"] = model;
    o["endpoint"] = "chat.completions";
    o["stream"] = true;
    o["status"] = status;
    o["usage"] = {{"prompt_tokens", prompt},
                  {"completion_tokens", completion},
                  {"total_tokens", prompt + completion}};
    o["started_at"] = "2027-01-15T07:59:59.000Z";
    o["finished_at"] = finished_at;
    o["request_sha256"] = std::string(64, 'a');
    o["response_sha256"] = std::string(64, 'b');
    if (ctx) o["ctx"] = *ctx;
    return o;
  }
  std::string body() const { return boost::json::serialize(json()); }
};

// One delivery: headers and body, signed by `key` at `timestamp`.
struct Delivery {
  std::string id;
  std::string timestamp;
  std::string signature;
  std::string body;
  WebhookHeaders headers() const { return {id, timestamp, signature}; }
};

inline Delivery sign_delivery(const SigningKey& key, std::string id, std::string body,
                              std::int64_t timestamp = kNow) {
  Delivery d{std::move(id), std::to_string(timestamp), "", std::move(body)};
  d.signature = webhook_signature(key, d.id, timestamp, d.body);
  return d;
}

inline Delivery sign_event(const SigningKey& key, const EventSpec& e,
                           std::int64_t timestamp = kNow) {
  return sign_delivery(key, e.webhook_id(), e.body(), timestamp);
}

}  // namespace dynaseal::backend::test
