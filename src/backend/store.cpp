#include "backend/store.hpp"

namespace dynaseal::backend {

std::string_view to_string(KeyState s) {
  switch (s) {
    case KeyState::active: return "active";
    case KeyState::retiring: return "retiring";
    case KeyState::retired: return "retired";
  }
  return "active";  // unreachable for valid enum values
}

Result<Recorded> BackendStore::record_usage(const UsageEvent& event, std::string_view raw_body,
                                            std::int64_t received_at, const CostFn& cost) {
  const NewEvent one{
      .event = event, .raw_body = std::string(raw_body), .received_at = received_at, .cost = cost};
  auto results = record_events(std::span(&one, 1));
  if (!results) return Unexpected(results.error());
  return std::move(results->front());
}

}  // namespace dynaseal::backend
