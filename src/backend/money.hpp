// Money in the backend's ledger: integer micro-units of the currency (1 unit = 1 000 000 µ),
// never floating point, so that sums, debits and refunds are exact and reproducible.
//
// Rounding rule (the only one): an event's cost is rounded UP once, to the next micro-unit,
// after summing its prompt and completion parts exactly. The backend never undercharges, and
// overcharges by less than one micro-unit per event. Budgets are rounded DOWN (a key never gets
// more tokens than the credit pays for), their reservations UP.
//
//   auto price = ModelPrice{.prompt_per_1k = 500, .completion_per_1k = 1500};  // 0.0005/0.0015
//   usage_cost(price, 12, 40);            // ceil((12*500 + 40*1500) / 1000) = 66 µ
//   parse_money("12.50");                 // 12'500'000
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dynaseal::backend {

inline constexpr std::int64_t kMicrosPerUnit = 1'000'000;
// Amounts are bounded to ±10^12 units so that no sum of a few of them can overflow.
inline constexpr std::int64_t kMaxMoneyMicros = 1'000'000'000'000'000'000;

// Price of 1000 tokens of one model, in micro-units.
struct ModelPrice {
  std::int64_t prompt_per_1k = 0;
  std::int64_t completion_per_1k = 0;

  std::int64_t dearest() const {
    return prompt_per_1k > completion_per_1k ? prompt_per_1k : completion_per_1k;
  }
};

// "12", "12.5", "0.000001" (and "-3.25" when `allow_negative`) to micro-units: digits, at most
// one '.', at most six decimals, at most 10^12 units. Nothing for anything else ("1e3", " 1",
// "1.", ".5", "+1", "0.0000001").
std::optional<std::int64_t> parse_money(std::string_view text, bool allow_negative = false);

// "12.50", "0.000001", "-3.00": two decimals at least, six at most, trailing zeros trimmed.
std::string format_money(std::int64_t micros);

// The cost of an event: ceil((prompt × prompt_per_1k + completion × completion_per_1k) / 1000)
// micro-units, computed without overflow and saturating at INT64_MAX. Negative counts cost 0.
std::int64_t usage_cost(const ModelPrice& price, std::int64_t prompt_tokens,
                        std::int64_t completion_tokens);

// The most tokens `micros` pays for at the model's dearer rate, floor(micros × 1000 / dearest),
// or nothing when the model is free (no limit from credit). 0 when micros <= 0.
std::optional<std::int64_t> affordable_tokens(const ModelPrice& price, std::int64_t micros);

// The most a budget of `tokens` can cost: ceil(tokens × dearest / 1000), saturating.
std::int64_t worst_case_cost(const ModelPrice& price, std::int64_t tokens);

}  // namespace dynaseal::backend
