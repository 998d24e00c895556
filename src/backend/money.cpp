#include "backend/money.hpp"

#include <limits>

namespace dynaseal::backend {
namespace {

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

// a × b + c for non-negative operands, saturating at INT64_MAX.
std::int64_t mul_add(std::int64_t a, std::int64_t b, std::int64_t c) {
  std::int64_t product = 0, sum = 0;
  if (__builtin_mul_overflow(a, b, &product)) return kMax;
  if (__builtin_add_overflow(product, c, &sum)) return kMax;
  return sum;
}

// ceil(value / divisor) for value >= 0, divisor > 0.
std::int64_t ceil_div(std::int64_t value, std::int64_t divisor) {
  return value / divisor + (value % divisor != 0 ? 1 : 0);
}

}  // namespace

std::optional<std::int64_t> parse_money(std::string_view text, bool allow_negative) {
  const bool negative = allow_negative && text.starts_with('-');
  if (negative) text.remove_prefix(1);
  const std::size_t dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  const std::string_view fraction =
      dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  if (whole.empty() || whole.size() > 13) return std::nullopt;
  if (dot != std::string_view::npos && (fraction.empty() || fraction.size() > 6)) {
    return std::nullopt;
  }
  std::int64_t micros = 0;
  for (char c : whole) {
    if (c < '0' || c > '9') return std::nullopt;
    micros = micros * 10 + (c - '0');
  }
  micros *= kMicrosPerUnit;
  std::int64_t scale = kMicrosPerUnit / 10;
  for (char c : fraction) {
    if (c < '0' || c > '9') return std::nullopt;
    micros += (c - '0') * scale;
    scale /= 10;
  }
  if (micros > kMaxMoneyMicros) return std::nullopt;
  return negative ? -micros : micros;
}

std::string format_money(std::int64_t micros) {
  const bool negative = micros < 0;
  // |INT64_MIN| does not fit; amounts are bounded far below it, but stay defined anyway.
  const std::uint64_t magnitude =
      negative ? std::uint64_t(0) - static_cast<std::uint64_t>(micros) : std::uint64_t(micros);
  std::string fraction = std::to_string(magnitude % kMicrosPerUnit);
  fraction.insert(0, 6 - fraction.size(), '0');
  while (fraction.size() > 2 && fraction.back() == '0') fraction.pop_back();
  return (negative ? "-" : "") + std::to_string(magnitude / kMicrosPerUnit) + "." + fraction;
}

std::int64_t usage_cost(const ModelPrice& price, std::int64_t prompt_tokens,
                        std::int64_t completion_tokens) {
  const std::int64_t prompt = prompt_tokens > 0 ? prompt_tokens : 0;
  const std::int64_t completion = completion_tokens > 0 ? completion_tokens : 0;
  const std::int64_t part = mul_add(prompt, price.prompt_per_1k, 0);
  const std::int64_t total = mul_add(completion, price.completion_per_1k, part);
  if (total == kMax) return kMax;
  return ceil_div(total, 1000);
}

std::optional<std::int64_t> affordable_tokens(const ModelPrice& price, std::int64_t micros) {
  const std::int64_t rate = price.dearest();
  if (rate <= 0) return std::nullopt;
  if (micros <= 0) return 0;
  // micros × 1000 / rate without overflow: micros = q × rate + r, so the quotient is
  // q × 1000 + r × 1000 / rate, and r × 1000 < rate × 1000 fits 128 bits.
  __extension__ using Wide = __int128;
  const std::int64_t q = micros / rate, r = micros % rate;
  const auto tail = static_cast<std::int64_t>(Wide(r) * 1000 / rate);
  return mul_add(q, 1000, tail);
}

std::int64_t worst_case_cost(const ModelPrice& price, std::int64_t tokens) {
  if (tokens <= 0) return 0;
  const std::int64_t total = mul_add(tokens, price.dearest(), 0);
  if (total == kMax) return kMax;
  return ceil_div(total, 1000);
}

}  // namespace dynaseal::backend
