// A usage callback as the backend receives it (DESIGN §5): its check and its parsed form.
//
// check_callback is the whole gate in front of the ledger, a pure function of the delivery, the
// pinned server keys and the clock: Standard Webhooks signature and timestamp first (cheap
// refusals before parsing), then the body, strictly, then its consistency with the headers and
// with this backend:
//   webhook_malformed  headers or body not a usage event of ours: bad id or timestamp syntax,
//                      not strict JSON (duplicate members too), a member missing or of the wrong
//                      type, total_tokens != prompt + completion, a bad RFC 3339 time,
//                      webhook-id != "<event_id>.<use>", iss != this backend, server != pinned;
//   timestamp_stale    webhook-timestamp more than the tolerance away from now;
//   signature_invalid  no v1a signature by a pinned key over "id.timestamp.body".
// Unknown body members are ignored (the server may add some, e.g. opted-in response content);
// they stay in the raw body the ledger stores.
//
//   CallbackContext ctx{.backend_id = "acme", .server_id = "llm-1", .server_keys = keys,
//                       .now = unix_now(), .tolerance = 300};
//   auto event = check_callback({id, ts, sig}, body, ctx);
//   if (!event) return reject(event.error());
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/webhook.hpp"

namespace dynaseal::backend {

inline constexpr std::size_t kMaxCallbackBytes = 64 * 1024;
inline constexpr std::int64_t kMaxReportedTokens = 1'000'000'000'000;

struct UsageEvent {
  std::string event_id{};  // the key's jti
  std::int64_t use = 0;    // >= 1
  std::string server{};
  std::string iss{};
  std::string sub{};
  std::string model{};
  std::string endpoint{};  // chat.completions | completions
  bool stream = false;
  std::string status{};  // a UsageStatus (core/usage_event.hpp)
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t total_tokens = 0;
  std::string started_at{};   // RFC 3339, as sent
  std::string finished_at{};  // RFC 3339, as sent
  std::int64_t finished_unix = 0;
  std::string request_sha256;
  std::string response_sha256;
  std::optional<std::string> ctx{};
  std::optional<std::string> usage_estimate{};  // a UsageEstimate, when the counts are one

  std::string webhook_id() const { return event_id + "." + std::to_string(use); }
};

// Parses a DESIGN §5 body strictly (see above); webhook_malformed otherwise.
Result<UsageEvent> parse_usage_event(std::string_view body);

struct CallbackContext {
  std::string_view backend_id;
  std::string_view server_id;
  std::span<const PublicKey> server_keys{};
  std::int64_t now = 0;          // unix seconds
  std::int64_t tolerance = 300;  // seconds
};

Result<UsageEvent> check_callback(const WebhookHeaders& headers, std::string_view body,
                                  const CallbackContext& ctx);

// "2026-11-21T05:36:48.123Z" or with an offset ("+02:00"), fraction optional: unix seconds
// (fraction dropped). Nothing for anything else or outside years 1970-9999.
std::optional<std::int64_t> parse_rfc3339(std::string_view text);

// "2026-11-21T05:36:48Z": a unix time in RFC 3339, UTC, whole seconds.
std::string format_rfc3339(std::int64_t unix_seconds);

// "2026-11-21": the UTC day of a unix time.
std::string utc_day(std::int64_t unix_seconds);

}  // namespace dynaseal::backend
