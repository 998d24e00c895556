#include "backend/usage_event.hpp"

#include <chrono>
#include <cstdio>

#include <boost/json/object.hpp>

#include "core/claims.hpp"
#include "core/json.hpp"
#include "core/usage_event.hpp"

namespace dynaseal::backend {
namespace {

namespace json = boost::json;

const Unexpected kMalformed{Error::webhook_malformed};

bool one_of(std::string_view v, std::initializer_list<std::string_view> allowed) {
  for (std::string_view a : allowed) {
    if (v == a) return true;
  }
  return false;
}

bool lower_hex_sha256(std::string_view v) {
  if (v.size() != 64) return false;
  for (char c : v) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// A string member of 1..max bytes (0..max when `may_be_empty`).
std::optional<std::string> text(const json::object& o, std::string_view key, std::size_t max,
                                bool may_be_empty = false) {
  auto v = string_member(o, key);
  if (!v || v->size() > max || (v->empty() && !may_be_empty)) return std::nullopt;
  return std::string(*v);
}

std::optional<std::int64_t> count(const json::object& o, std::string_view key) {
  auto v = int_member(o, key);
  if (!v || *v < 0 || *v > kMaxReportedTokens) return std::nullopt;
  return v;
}

Result<void> read_usage(const json::object& body, UsageEvent& e) {
  const json::value* usage = member(body, "usage");
  if (usage == nullptr || !usage->is_object()) return kMalformed;
  const json::object& u = usage->get_object();
  auto prompt = count(u, "prompt_tokens");
  auto completion = count(u, "completion_tokens");
  auto total = count(u, "total_tokens");
  if (!prompt || !completion || !total || *total != *prompt + *completion) return kMalformed;
  e.prompt_tokens = *prompt;
  e.completion_tokens = *completion;
  e.total_tokens = *total;
  return {};
}

Result<void> read_times(const json::object& body, UsageEvent& e) {
  auto started = text(body, "started_at", 64);
  auto finished = text(body, "finished_at", 64);
  if (!started || !finished || !parse_rfc3339(*started)) return kMalformed;
  auto finished_unix = parse_rfc3339(*finished);
  if (!finished_unix) return kMalformed;
  e.started_at = std::move(*started);
  e.finished_at = std::move(*finished);
  e.finished_unix = *finished_unix;
  return {};
}

Result<void> read_identity(const json::object& body, UsageEvent& e) {
  auto type = string_member(body, "type");
  auto event_id = string_member(body, "event_id");
  auto use = int_member(body, "use");
  if (!type || *type != "usage" || !event_id || !valid_jti(*event_id) || !use || *use < 1) {
    return kMalformed;
  }
  e.event_id = std::string(*event_id);
  e.use = *use;
  auto server = text(body, "server", kMaxIssBytes);
  auto iss = text(body, "iss", kMaxIssBytes);
  auto sub = text(body, "sub", kMaxSubBytes, true);
  auto model = text(body, "model", kMaxModelBytes);
  if (!server || !iss || !sub || !model) return kMalformed;
  e.server = std::move(*server);
  e.iss = std::move(*iss);
  e.sub = std::move(*sub);
  e.model = std::move(*model);
  return {};
}

Result<void> read_request(const json::object& body, UsageEvent& e) {
  auto endpoint = string_member(body, "endpoint");
  auto status = string_member(body, "status");
  const json::value* stream = member(body, "stream");
  if (!endpoint || !one_of(*endpoint, {"chat.completions", "completions"})) return kMalformed;
  if (!status || !parse_usage_status(*status)) return kMalformed;
  if (stream == nullptr || !stream->is_bool()) return kMalformed;
  e.endpoint = std::string(*endpoint);
  e.status = std::string(*status);
  e.stream = stream->get_bool();
  auto request = string_member(body, "request_sha256");
  auto response = string_member(body, "response_sha256");
  if (!request || !lower_hex_sha256(*request) || !response || !lower_hex_sha256(*response)) {
    return kMalformed;
  }
  e.request_sha256 = std::string(*request);
  e.response_sha256 = std::string(*response);
  if (const json::value* estimate = member(body, "usage_estimate"); estimate != nullptr) {
    if (!estimate->is_string() || !parse_usage_estimate(as_view(estimate->get_string()))) {
      return kMalformed;
    }
    e.usage_estimate = std::string(as_view(estimate->get_string()));
  }
  if (const json::value* ctx = member(body, "ctx"); ctx != nullptr) {
    if (!ctx->is_string() || ctx->get_string().size() > kMaxCtxBytes) return kMalformed;
    e.ctx = std::string(as_view(ctx->get_string()));
  }
  return {};
}

// Two digits at text[at], or -1.
int two_digits(std::string_view text, std::size_t at) {
  const char a = text[at], b = text[at + 1];
  if (a < '0' || a > '9' || b < '0' || b > '9') return -1;
  return (a - '0') * 10 + (b - '0');
}

// "+HH:MM" / "-HH:MM" / "Z" to seconds east of UTC.
std::optional<std::int64_t> parse_offset(std::string_view zone) {
  if (zone == "Z" || zone == "z") return 0;
  if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') || zone[3] != ':') {
    return std::nullopt;
  }
  const int hours = two_digits(zone, 1), minutes = two_digits(zone, 4);
  if (hours < 0 || hours > 23 || minutes < 0 || minutes > 59) return std::nullopt;
  const std::int64_t seconds = hours * 3600 + minutes * 60;
  return zone[0] == '+' ? seconds : -seconds;
}

}  // namespace

Result<UsageEvent> parse_usage_event(std::string_view body) {
  auto doc = parse_json(body, {.max_bytes = kMaxCallbackBytes, .max_depth = 8});
  if (!doc || !doc->is_object()) return kMalformed;
  const json::object& o = doc->get_object();
  UsageEvent e;
  if (auto ok = read_identity(o, e); !ok) return Unexpected(ok.error());
  if (auto ok = read_request(o, e); !ok) return Unexpected(ok.error());
  if (auto ok = read_usage(o, e); !ok) return Unexpected(ok.error());
  if (auto ok = read_times(o, e); !ok) return Unexpected(ok.error());
  return e;
}

Result<UsageEvent> check_callback(const WebhookHeaders& headers, std::string_view body,
                                  const CallbackContext& ctx) {
  if (auto ok = verify_webhook(headers, body, ctx.server_keys, ctx.now, ctx.tolerance); !ok) {
    return Unexpected(ok.error());
  }
  auto event = parse_usage_event(body);
  if (!event) return event;
  if (headers.id != event->webhook_id()) return kMalformed;
  if (event->iss != ctx.backend_id || event->server != ctx.server_id) return kMalformed;
  return event;
}

std::optional<std::int64_t> parse_rfc3339(std::string_view t) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
  if (t.size() < 20 || t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != 't') ||
      t[13] != ':' || t[16] != ':') {
    return std::nullopt;
  }
  const int century = two_digits(t, 0), yy = two_digits(t, 2), month = two_digits(t, 5),
            day = two_digits(t, 8), hour = two_digits(t, 11), minute = two_digits(t, 14),
            second = two_digits(t, 17);
  if (century < 0 || yy < 0 || month < 0 || day < 0 || hour < 0 || hour > 23 || minute < 0 ||
      minute > 59 || second < 0 || second > 59) {
    return std::nullopt;
  }
  std::size_t rest = 19;
  if (t[rest] == '.') {
    const std::size_t digits_from = ++rest;
    while (rest < t.size() && t[rest] >= '0' && t[rest] <= '9') ++rest;
    if (rest == digits_from || rest - digits_from > 9) return std::nullopt;
  }
  const auto offset = parse_offset(t.substr(rest));
  if (!offset) return std::nullopt;
  using namespace std::chrono;
  const year_month_day date{year(century * 100 + yy), std::chrono::month(month),
                            std::chrono::day(day)};
  if (!date.ok() || date.year() < year(1970)) return std::nullopt;
  const std::int64_t days = sys_days(date).time_since_epoch().count();
  return days * 86400 + hour * 3600 + minute * 60 + second - *offset;
}

std::string format_rfc3339(std::int64_t unix_seconds) {
  const std::int64_t seconds = ((unix_seconds % 86400) + 86400) % 86400;
  char buf[16];
  std::snprintf(buf, sizeof buf, "T%02d:%02d:%02dZ", static_cast<int>(seconds / 3600),
                static_cast<int>(seconds / 60 % 60), static_cast<int>(seconds % 60));
  return utc_day(unix_seconds) + buf;
}

std::string utc_day(std::int64_t unix_seconds) {
  using namespace std::chrono;
  const std::int64_t days =
      unix_seconds >= 0 ? unix_seconds / 86400 : (unix_seconds - 86399) / 86400;
  const year_month_day date{sys_days{std::chrono::days{days}}};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()));
  return buf;
}

}  // namespace dynaseal::backend
