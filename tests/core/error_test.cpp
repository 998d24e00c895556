#include "core/error.hpp"

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace dynaseal {
namespace {

TEST(Error, EveryCodeHasAUniqueNameAndADescription) {
  std::set<std::string_view> names;
  for (int i = 0; i <= static_cast<int>(Error::internal); ++i) {
    const auto e = static_cast<Error>(i);
    const std::string_view name = to_string(e);
    EXPECT_FALSE(name.empty()) << i;
    EXPECT_FALSE(describe(e).empty()) << name;
    EXPECT_TRUE(names.insert(name).second) << name;
    // Stable codes are identifiers: lowercase and underscores only.
    EXPECT_EQ(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_0123456789"), name.npos);
  }
}

TEST(Error, UsesTheContractNamesOfTheHttpApi) {
  EXPECT_EQ(to_string(Error::token_expired), "token_expired");
  EXPECT_EQ(to_string(Error::uses_exhausted), "uses_exhausted");
  EXPECT_EQ(to_string(Error::budget_exhausted), "budget_exhausted");
  EXPECT_EQ(to_string(Error::store_unavailable), "store_unavailable");
  EXPECT_EQ(to_string(Error::max_tokens_exceeded), "max_tokens_exceeded");
}

}  // namespace
}  // namespace dynaseal
