// The [[fault:MODE]] markers of the stand-in engine.

#include "engine/fault.hpp"

#include <gtest/gtest.h>

namespace dynaseal::engine {
namespace {

TEST(FindFault, FindsEveryModeBySpelling) {
  for (Fault f : {Fault::status500, Fault::status503, Fault::reset, Fault::reset_mid_stream,
                  Fault::truncate, Fault::garbage, Fault::hang, Fault::slow_first_byte}) {
    const std::string text = "please [[fault:" + std::string(to_string(f)) + "]] now";
    EXPECT_EQ(find_fault(text), f) << text;
  }
}

TEST(FindFault, ReportsNoneWithoutAMarker) {
  EXPECT_EQ(find_fault(""), Fault::none);
  EXPECT_EQ(find_fault("a normal prompt [fault:reset]"), Fault::none);
}

TEST(FindFault, RefusesUnknownOrUnclosedModes) {
  EXPECT_EQ(find_fault("[[fault:explode]]"), std::nullopt);
  EXPECT_EQ(find_fault("[[fault:RESET]]"), std::nullopt);
  EXPECT_EQ(find_fault("[[fault:reset"), std::nullopt);
  EXPECT_EQ(find_fault("[[fault:]]"), std::nullopt);
}

TEST(FindFault, TakesTheFirstMarker) {
  EXPECT_EQ(find_fault("[[fault:hang]] [[fault:reset]]"), Fault::hang);
}

}  // namespace
}  // namespace dynaseal::engine
