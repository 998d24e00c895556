#include "engine/fault.hpp"

#include <array>

namespace dynaseal::engine {
namespace {

constexpr std::string_view kOpen = "[[fault:";
constexpr std::string_view kClose = "]]";

constexpr std::array kModes = {
    Fault::status500, Fault::status503, Fault::reset, Fault::reset_mid_stream,
    Fault::truncate,  Fault::garbage,   Fault::hang,  Fault::slow_first_byte,
};

}  // namespace

std::string_view to_string(Fault f) {
  switch (f) {
    case Fault::none: return "none";
    case Fault::status500: return "status500";
    case Fault::status503: return "status503";
    case Fault::reset: return "reset";
    case Fault::reset_mid_stream: return "reset-mid-stream";
    case Fault::truncate: return "truncate";
    case Fault::garbage: return "garbage";
    case Fault::hang: return "hang";
    case Fault::slow_first_byte: return "slow-first-byte";
  }
  return "none";  // unreachable for valid enum values
}

std::optional<Fault> find_fault(std::string_view text) {
  const std::size_t open = text.find(kOpen);
  if (open == std::string_view::npos) return Fault::none;
  const std::size_t start = open + kOpen.size();
  const std::size_t close = text.find(kClose, start);
  if (close == std::string_view::npos) return std::nullopt;
  const std::string_view mode = text.substr(start, close - start);
  for (Fault f : kModes) {
    if (to_string(f) == mode) return f;
  }
  return std::nullopt;
}

}  // namespace dynaseal::engine
