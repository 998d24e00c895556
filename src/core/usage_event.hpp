// The usage event's vocabulary (DESIGN §5), one definition for the server that writes events
// (server/usage.hpp) and the backend that reads them (backend/usage_event.hpp), so the two
// cannot disagree on what a status or an estimate is called.
//
// Members of the event body, all required unless marked:
//   type "usage", event_id (the key's jti), use (>= 1), server, iss, sub, model, endpoint,
//   stream, status (UsageStatus), usage {prompt_tokens, completion_tokens, total_tokens =
//   prompt + completion}, started_at, finished_at (RFC 3339), request_sha256, response_sha256
//   (64 lowercase hex digits, always: the SHA-256 of the body bytes the client received, of
//   nothing when it received none), usage_estimate (optional: present when the counts are the
//   server's estimate, naming how it was made), ctx (optional).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace dynaseal {

enum class UsageStatus {
  ok,                   // the answer was delivered whole
  over_cap,             // delivered, but the engine generated more than the key's cap
  upstream_error,       // the engine failed: 5xx, a 4xx passed on, reset, garbage, timeout
  client_disconnected,  // the client left before the answer was delivered whole
  interrupted,          // the server stopped before it finished the use (found at restart)
};

std::string_view to_string(UsageStatus s);
std::optional<UsageStatus> parse_usage_status(std::string_view text);

// How counts that the engine did not report were made. Estimates are upper bounds of what the
// engine may have spent on the use, never below.
enum class UsageEstimate {
  none,          // the engine reported the counts
  prompt_bound,  // prompt: the request's prompt bound; completion: content chunks relayed
};

std::string_view to_string(UsageEstimate e);
std::optional<UsageEstimate> parse_usage_estimate(std::string_view text);

// The hex SHA-256 of nothing: response_sha256 of a use whose client received no body.
inline constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

}  // namespace dynaseal
