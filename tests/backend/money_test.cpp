#include "backend/money.hpp"

#include <limits>

#include <gtest/gtest.h>

namespace dynaseal::backend {
namespace {

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

TEST(Money, ParsesDecimalAmountsExactlyIntoMicroUnits) {
  EXPECT_EQ(parse_money("0"), 0);
  EXPECT_EQ(parse_money("12"), 12'000'000);
  EXPECT_EQ(parse_money("12.5"), 12'500'000);
  EXPECT_EQ(parse_money("12.50"), 12'500'000);
  EXPECT_EQ(parse_money("0.000001"), 1);
  EXPECT_EQ(parse_money("0.1"), 100'000);  // no binary fraction anywhere
  EXPECT_EQ(parse_money("1000000000000"), kMaxMoneyMicros);
  EXPECT_EQ(parse_money("-2.25", true), -2'250'000);
}

TEST(Money, RefusesAnythingButPlainDecimals) {
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "1.", ".5", "1e3", "0x10", "1,5", "1.2.3",
                          "0.0000001", "1000000000000.000001", "10000000000000", "--1", "nan"}) {
    EXPECT_FALSE(parse_money(bad)) << bad;
  }
  EXPECT_FALSE(parse_money("-", true));
  EXPECT_FALSE(parse_money("--1", true));
}

TEST(Money, FormatsWithTwoToSixDecimals) {
  EXPECT_EQ(format_money(0), "0.00");
  EXPECT_EQ(format_money(12'500'000), "12.50");
  EXPECT_EQ(format_money(1), "0.000001");
  EXPECT_EQ(format_money(1'234'560), "1.23456");
  EXPECT_EQ(format_money(-3'000'000), "-3.00");
  EXPECT_EQ(format_money(std::numeric_limits<std::int64_t>::min()), "-9223372036854.775808");
  for (std::int64_t v :
       {std::int64_t{0}, std::int64_t{7}, std::int64_t{-999'999}, std::int64_t{123'456'789}}) {
    EXPECT_EQ(parse_money(format_money(v), true), v);
  }
}

TEST(Money, CostIsRoundedUpOnceAfterAnExactSum) {
  const ModelPrice price{.prompt_per_1k = 500'000, .completion_per_1k = 1'500'000};  // 0.5, 1.5
  EXPECT_EQ(usage_cost(price, 1000, 0), 500'000);
  EXPECT_EQ(usage_cost(price, 0, 1000), 1'500'000);
  EXPECT_EQ(usage_cost(price, 12, 40), 66'000);                       // 6000 + 60000 µ exactly
  const ModelPrice tiny{.prompt_per_1k = 1, .completion_per_1k = 3};  // µ per 1000 tokens
  EXPECT_EQ(usage_cost(tiny, 1, 0), 1);                               // 0.001 µ rounds up to 1 µ
  EXPECT_EQ(usage_cost(tiny, 500, 166), 1);  // 0.5 + 0.498 = 0.998 µ: summed, then rounded once
  EXPECT_EQ(usage_cost(tiny, 500, 167), 2);  // 1.001 µ
  EXPECT_EQ(usage_cost(tiny, 1000, 0), 1);   // exact: no rounding
  EXPECT_EQ(usage_cost(tiny, 0, 0), 0);
  EXPECT_EQ(usage_cost(ModelPrice{}, 1'000'000, 1'000'000), 0);  // free
  EXPECT_EQ(usage_cost(tiny, -5, -5), 0);
}

TEST(Money, CostSaturatesInsteadOfOverflowing) {
  const ModelPrice dear{.prompt_per_1k = kMaxMoneyMicros, .completion_per_1k = kMaxMoneyMicros};
  EXPECT_EQ(usage_cost(dear, 1'000'000'000'000, 0), kMax);
  EXPECT_EQ(usage_cost(dear, kMax, kMax), kMax);
  EXPECT_EQ(worst_case_cost(dear, kMax), kMax);
}

TEST(Money, AffordableTokensRoundDownAtTheDearerRate) {
  const ModelPrice price{.prompt_per_1k = 500, .completion_per_1k = 1500};
  EXPECT_EQ(affordable_tokens(price, 1000), 666);  // 1000 µ × 1000 / 1500
  EXPECT_EQ(affordable_tokens(price, 1500), 1000);
  EXPECT_EQ(affordable_tokens(price, 1), 0);
  EXPECT_EQ(affordable_tokens(price, 0), 0);
  EXPECT_EQ(affordable_tokens(price, -10), 0);
  EXPECT_FALSE(affordable_tokens(ModelPrice{}, 1000));  // free: no limit
  // Large credit and rate: no overflow in micros × 1000.
  const ModelPrice dear{.prompt_per_1k = 999'999'999'999'999, .completion_per_1k = 1};
  EXPECT_EQ(affordable_tokens(dear, kMaxMoneyMicros), 1'000'000);
  EXPECT_EQ(affordable_tokens(ModelPrice{.prompt_per_1k = 1}, kMaxMoneyMicros), kMax);
}

TEST(Money, AReservationCoversWhatTheBudgetCanCostAndNoMoreThanTheCredit) {
  const ModelPrice price{.prompt_per_1k = 500, .completion_per_1k = 1500};
  for (std::int64_t credit : {1, 2, 3, 999, 1000, 1001, 123'457}) {
    const std::int64_t tokens = *affordable_tokens(price, credit);
    EXPECT_LE(worst_case_cost(price, tokens), credit) << credit;
    EXPECT_GE(worst_case_cost(price, tokens), usage_cost(price, 0, tokens)) << credit;
    EXPECT_GT(worst_case_cost(price, tokens + 1), credit - 1) << credit;
  }
}

}  // namespace
}  // namespace dynaseal::backend
