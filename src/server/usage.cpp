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

std::string usage_event_json(const UsageRecord& r) {
  json::object o;
  o["type"] = "usage";
  o["event_id"] = r.event_id;
  o["use"] = r.use;
  o["server"] = r.server;
  o["iss"] = r.iss;
  o["sub"] = r.sub;
  o["model"] = r.model;
  o["endpoint"] = to_string(r.endpoint);
  o["stream"] = r.stream;
  o["status"] = to_string(r.status);
  o["usage"] = {{"prompt_tokens", r.usage.prompt},
                {"completion_tokens", r.usage.completion},
                {"total_tokens", r.usage.total()}};
  o["started_at"] = rfc3339(r.started_at_ms);
  o["finished_at"] = rfc3339(r.finished_at_ms);
  o["request_sha256"] = r.request_sha256;
  o["response_sha256"] = r.response_sha256;
  if (r.ctx) o["ctx"] = *r.ctx;
  return json::serialize(o);
}

}  // namespace dynaseal::server
