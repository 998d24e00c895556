// The scope (`dks`) of a dynamic key, and the check of a request's facts against it.
//
//   auto cap = check_scope(claims.dks, {.endpoint = Endpoint::chat_completions,
//                                       .model = "demo", .max_tokens = 100});
//   if (!cap) return reject(cap.error());   // one of the 403-class codes
//   forward_with_max_tokens(*cap);
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace dynaseal {

enum class Endpoint : std::uint8_t {
  chat_completions = 1,  // POST /v1/chat/completions, scope name "chat.completions"
  completions = 2,       // POST /v1/completions, scope name "completions"
};
inline constexpr std::uint8_t kAllEndpoints = 3;

std::string_view to_string(Endpoint e);
std::optional<Endpoint> parse_endpoint(std::string_view name);

struct Scope {
  std::vector<std::string> models;     // exact names; never empty
  std::int64_t max_tokens = 0;         // >= 1
  std::int64_t uses = 1;               // >= 1
  std::optional<std::int64_t> budget;  // >= 1 when present
  bool stream = true;
  std::uint8_t endpoints = kAllEndpoints;  // bit set of Endpoint values

  bool allows(Endpoint e) const { return (endpoints & static_cast<std::uint8_t>(e)) != 0; }
  bool allows_model(std::string_view model) const;
};

// What a request asks for, as read from its body.
struct RequestFacts {
  Endpoint endpoint = Endpoint::chat_completions;
  std::string_view model{};
  std::optional<std::int64_t> max_tokens{};  // max_tokens or max_completion_tokens, if given
  std::int64_t n = 1;
  bool stream = false;
};

// Checks `facts` against `scope`. Returns the max_tokens to forward (the request's own, or the
// scope's cap when the request gives none), or endpoint_not_allowed, model_not_allowed,
// stream_not_allowed, n_not_allowed, max_tokens_exceeded — in that order — or body_malformed
// for a max_tokens or n below 1.
Result<std::int64_t> check_scope(const Scope& scope, const RequestFacts& facts);

}  // namespace dynaseal
