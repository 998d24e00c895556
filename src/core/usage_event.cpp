#include "core/usage_event.hpp"

#include <array>

namespace dynaseal {
namespace {

constexpr std::array kStatuses = {UsageStatus::ok, UsageStatus::over_cap,
                                  UsageStatus::upstream_error, UsageStatus::client_disconnected,
                                  UsageStatus::interrupted};

}  // namespace

std::string_view to_string(UsageStatus s) {
  switch (s) {
    case UsageStatus::ok: return "ok";
    case UsageStatus::over_cap: return "over_cap";
    case UsageStatus::upstream_error: return "upstream_error";
    case UsageStatus::client_disconnected: return "client_disconnected";
    case UsageStatus::interrupted: return "interrupted";
  }
  return "ok";
}

std::optional<UsageStatus> parse_usage_status(std::string_view text) {
  for (UsageStatus s : kStatuses) {
    if (to_string(s) == text) return s;
  }
  return std::nullopt;
}

std::string_view to_string(UsageEstimate e) {
  switch (e) {
    case UsageEstimate::none: return "none";
    case UsageEstimate::prompt_bound: return "prompt_bound";
  }
  return "none";
}

std::optional<UsageEstimate> parse_usage_estimate(std::string_view text) {
  if (text == "prompt_bound") return UsageEstimate::prompt_bound;
  return std::nullopt;  // "none" is never written: the member is absent instead
}

}  // namespace dynaseal
