#include "server/usage.hpp"

#include <algorithm>
#include <chrono>

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

namespace {

// Appends `value` as `digits` decimal digits, zero-padded (value ≥ 0, and fits).
void append_digits(char*& at, unsigned value, int digits) {
  for (int i = digits - 1; i >= 0; --i) {
    at[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  at += digits;
}

}  // namespace

std::string rfc3339(std::int64_t unix_ms) {
  namespace chrono = std::chrono;
  // Four-digit years only, as RFC 3339 has them: 0000-01-01T00:00:00.000Z to
  // 9999-12-31T23:59:59.999Z.
  unix_ms = std::clamp<std::int64_t>(unix_ms, -62'167'219'200'000, 253'402'300'799'999);
  const chrono::sys_time<chrono::milliseconds> t{chrono::milliseconds{unix_ms}};
  const auto day = chrono::floor<chrono::days>(t);
  const chrono::year_month_day date{day};
  const chrono::hh_mm_ss time{t - day};
  char buf[24];  // 2026-11-21T05:36:48.123Z
  char* at = buf;
  append_digits(at, static_cast<unsigned>(static_cast<int>(date.year())), 4);
  *at++ = '-';
  append_digits(at, static_cast<unsigned>(date.month()), 2);
  *at++ = '-';
  append_digits(at, static_cast<unsigned>(date.day()), 2);
  *at++ = 'T';
  append_digits(at, static_cast<unsigned>(time.hours().count()), 2);
  *at++ = ':';
  append_digits(at, static_cast<unsigned>(time.minutes().count()), 2);
  *at++ = ':';
  append_digits(at, static_cast<unsigned>(time.seconds().count()), 2);
  *at++ = '.';
  append_digits(at, static_cast<unsigned>(time.subseconds().count()), 3);
  *at++ = 'Z';
  return std::string(buf, static_cast<std::size_t>(at - buf));
}

std::string UsageEventJson::with_use(std::int64_t use) const {
  std::string out;
  out.reserve(head.size() + 20 + tail.size());
  out.append(head);
  out.append(std::to_string(use));
  out.append(tail);
  return out;
}

namespace {

// The members of an event, appended in order; keys are literals that need no escape.
class EventWriter {
 public:
  explicit EventWriter(std::string& out) : out_(out) {}
  void string(std::string_view key, std::string_view value) {
    name(key);
    json_append_string(out_, value);
  }
  void integer(std::string_view key, std::int64_t value) {
    name(key);
    out_.append(std::to_string(value));
  }
  void boolean(std::string_view key, bool value) {
    name(key);
    out_.append(value ? "true" : "false");
  }
  void open(std::string_view key) {
    name(key);
    out_.push_back('{');
    first_ = true;
  }
  void close() { out_.push_back('}'); }

 private:
  void name(std::string_view key) {
    if (!first_) out_.push_back(',');
    first_ = false;
    out_.push_back('"');
    out_.append(key);
    out_.append("\":");
  }
  std::string& out_;
  bool first_ = true;
};

}  // namespace

UsageEventJson usage_event_json_around_use(const UsageRecord& r) {
  // Written member by member (no JSON object built): {"type":..,"event_id":.. | ,"use": | N |
  // ,"server":..}. The cut sits after event_id, whatever bytes the strings hold.
  UsageEventJson parts;
  parts.head.reserve(48 + r.event_id.size());
  parts.head.push_back('{');
  EventWriter head(parts.head);
  head.string("type", "usage");
  head.string("event_id", r.event_id);
  parts.head.append(",\"use\":");

  std::string& tail = parts.tail;
  tail.reserve(400 + r.server.size() + r.iss.size() + r.sub.size() + r.model.size() +
               (r.ctx ? r.ctx->size() : 0));
  tail.push_back(',');
  EventWriter rest(tail);
  rest.string("server", r.server);
  rest.string("iss", r.iss);
  rest.string("sub", r.sub);
  rest.string("model", r.model);
  rest.string("endpoint", to_string(r.endpoint));
  rest.boolean("stream", r.stream);
  rest.string("status", to_string(r.status));
  rest.open("usage");
  rest.integer("prompt_tokens", r.usage.prompt);
  rest.integer("completion_tokens", r.usage.completion);
  rest.integer("total_tokens", r.usage.total());
  rest.close();
  rest.string("started_at", rfc3339(r.started_at_ms));
  rest.string("finished_at", rfc3339(r.finished_at_ms));
  rest.string("request_sha256", r.request_sha256);
  rest.string("response_sha256", r.response_sha256);
  if (r.estimate != UsageEstimate::none) rest.string("usage_estimate", to_string(r.estimate));
  if (r.ctx) rest.string("ctx", *r.ctx);
  tail.push_back('}');
  return parts;
}

std::string usage_event_json(const UsageRecord& r) {
  return usage_event_json_around_use(r).with_use(r.use);
}

}  // namespace dynaseal::server
