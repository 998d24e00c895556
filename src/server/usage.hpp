// What the server reports for every consumed use (DESIGN §5): the usage record and its
// callback body. The outbox (server/outbox.hpp) makes it durable and delivers it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "core/scope.hpp"
#include "core/usage_event.hpp"

namespace dynaseal::server {

struct TokenUsage {
  std::int64_t prompt = 0;
  std::int64_t completion = 0;
  std::int64_t total() const { return prompt + completion; }
};

// Reads {"usage":{"prompt_tokens":..,"completion_tokens":..}} from an OpenAI response or
// chunk; nothing when absent, null or malformed.
std::optional<TokenUsage> read_usage(const boost::json::object& response);

using dynaseal::UsageEstimate;  // core/usage_event.hpp
using dynaseal::UsageStatus;

struct UsageRecord {
  std::string event_id{};  // the key's jti
  std::int64_t use = 0;
  std::string server{};
  std::string iss{};
  std::string sub{};
  std::string model{};
  Endpoint endpoint = Endpoint::chat_completions;
  bool stream = false;
  UsageStatus status = UsageStatus::ok;
  TokenUsage usage{};
  bool usage_reported = false;  // false: counted by the gateway (engine cut off before usage)
  UsageEstimate estimate = UsageEstimate::none;  // how unreported counts were made
  std::int64_t prompt_bound = 0;  // the request's prompt bound (server.md, Budget): estimates
  std::int64_t started_at_ms = 0;
  std::int64_t finished_at_ms = 0;
  std::string request_sha256{};               // hex, of the client's request body
  std::string response_sha256{kEmptySha256};  // hex, of the body bytes sent to the client
  std::optional<std::string> ctx{};
};

// The DESIGN §5 callback body for a record.
std::string usage_event_json(const UsageRecord& r);

// The same body cut around the value of "use": head + decimal(use) + tail, so that a store that
// numbers the use can write the body of the use it grants (store::ConsumeRequest::event_head).
struct UsageEventJson {
  std::string head;  // {"type":"usage","event_id":"...","use":
  std::string tail;  // ,"server":"...",...}
  std::string with_use(std::int64_t use) const;
};
UsageEventJson usage_event_json_around_use(const UsageRecord& r);

// RFC 3339 UTC with milliseconds: 2026-11-21T05:36:48.123Z
std::string rfc3339(std::int64_t unix_ms);

}  // namespace dynaseal::server
