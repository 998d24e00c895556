#include "core/scope.hpp"

#include <algorithm>

namespace dynaseal {

std::string_view to_string(Endpoint e) {
  switch (e) {
    case Endpoint::chat_completions: return "chat.completions";
    case Endpoint::completions: return "completions";
  }
  return "chat.completions";  // unreachable for valid enum values
}

std::optional<Endpoint> parse_endpoint(std::string_view name) {
  if (name == "chat.completions") return Endpoint::chat_completions;
  if (name == "completions") return Endpoint::completions;
  return std::nullopt;
}

bool Scope::allows_model(std::string_view model) const {
  return std::find(models.begin(), models.end(), model) != models.end();
}

Result<std::int64_t> check_scope(const Scope& scope, const RequestFacts& facts) {
  if (!scope.allows(facts.endpoint)) return Unexpected(Error::endpoint_not_allowed);
  if (!scope.allows_model(facts.model)) return Unexpected(Error::model_not_allowed);
  if (facts.stream && !scope.stream) return Unexpected(Error::stream_not_allowed);
  if (facts.n < 1) return Unexpected(Error::body_malformed);
  if (facts.n > 1) return Unexpected(Error::n_not_allowed);
  if (!facts.max_tokens) return scope.max_tokens;
  if (*facts.max_tokens < 1) return Unexpected(Error::body_malformed);
  if (*facts.max_tokens > scope.max_tokens) return Unexpected(Error::max_tokens_exceeded);
  return *facts.max_tokens;
}

}  // namespace dynaseal
