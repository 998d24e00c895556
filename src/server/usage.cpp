#include "server/usage.hpp"

#include <ctime>

#include <boost/json/serialize.hpp>

#include "core/json.hpp"

namespace dynaseal::server {

namespace json = boost::json;

std::optional<TokenUsage> read_usage(const json::object& response) {
  const json::value* usage = member(response, "usage");
  if (usage == nullptr || !usage->is_object()) return std::nullopt;
  auto prompt = int_member(usage->get_object(), "prompt_tokens");
  auto completion = int_member(usage->get_object(), "completion_tokens");
  if (!prompt || !completion || *prompt < 0 || *completion < 0) return std::nullopt;
  return TokenUsage{*prompt, *completion};
}

std::string_view to_string(UsageStatus s) {
  switch (s) {
    case UsageStatus::ok: return "ok";
    case UsageStatus::upstream_error: return "upstream_error";
    case UsageStatus::client_disconnected: return "client_disconnected";
    case UsageStatus::interrupted: return "interrupted";
  }
  return "ok";
}

std::string rfc3339(std::int64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(unix_ms % 1000));
  return buf;
}

std::string UsageEventJson::with_use(std::int64_t use) const {
  std::string out;
  out.reserve(head.size() + 20 + tail.size());
  out.append(head);
  out.append(std::to_string(use));
  out.append(tail);
  return out;
}

UsageEventJson usage_event_json_around_use(const UsageRecord& r) {
  // Two objects serialized apart and joined: {"type":..,"event_id":.. | ,"use": | N | ,"server":..}
  // is byte for byte the serialization of one object with these members in this order.
  json::object first;
  first["type"] = "usage";
  first["event_id"] = r.event_id;
  json::object rest;
  rest["server"] = r.server;
  rest["iss"] = r.iss;
  rest["sub"] = r.sub;
  rest["model"] = r.model;
  rest["endpoint"] = to_string(r.endpoint);
  rest["stream"] = r.stream;
  rest["status"] = to_string(r.status);
  rest["usage"] = {{"prompt_tokens", r.usage.prompt},
                   {"completion_tokens", r.usage.completion},
                   {"total_tokens", r.usage.total()}};
  rest["started_at"] = rfc3339(r.started_at_ms);
  rest["finished_at"] = rfc3339(r.finished_at_ms);
  rest["request_sha256"] = r.request_sha256;
  rest["response_sha256"] = r.response_sha256;
  if (r.ctx) rest["ctx"] = *r.ctx;
  UsageEventJson parts{.head = json::serialize(first), .tail = json::serialize(rest)};
  parts.head.back() = ',';  // the closing brace
  parts.head.append("\"use\":");
  parts.tail.front() = ',';  // the opening brace
  return parts;
}

std::string usage_event_json(const UsageRecord& r) {
  return usage_event_json_around_use(r).with_use(r.use);
}

}  // namespace dynaseal::server
