// Token counting and deterministic word generation of the stand-in engine.

#include "engine/text.hpp"

#include <set>

#include <gtest/gtest.h>

namespace dynaseal::engine {
namespace {

TEST(CountWords, CountsWhitespaceSeparatedWords) {
  EXPECT_EQ(count_words(""), 0u);
  EXPECT_EQ(count_words("   \t\n"), 0u);
  EXPECT_EQ(count_words("hello"), 1u);
  EXPECT_EQ(count_words("  hello   world  "), 2u);
  EXPECT_EQ(count_words("a\tb\nc\rd\ve\ff"), 6u);
  EXPECT_EQ(count_words("don't split-on punctuation!"), 3u);
  EXPECT_EQ(count_words("caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87"), 2u);  // UTF-8 bytes are letters
}

TEST(PromptHash, DependsOnSeedAndOnPartBoundaries) {
  auto hash = [](std::uint64_t seed, std::initializer_list<std::string_view> parts) {
    PromptHash h(seed);
    for (auto p : parts) h.add(p);
    return h.value();
  };
  EXPECT_EQ(hash(0, {"demo", "hi"}), hash(0, {"demo", "hi"}));
  EXPECT_NE(hash(0, {"demo", "hi"}), hash(1, {"demo", "hi"}));
  EXPECT_NE(hash(0, {"ab", "c"}), hash(0, {"a", "bc"}));
  EXPECT_NE(hash(0, {"demo", "hi"}), hash(0, {"demo", "hi", ""}));
}

TEST(NaturalLength, StaysWithin8And63Words) {
  std::set<std::size_t> seen;
  for (std::uint64_t seed = 0; seed < 2000; ++seed) {
    PromptHash h(seed);
    h.add("prompt");
    const std::size_t n = natural_length(h.value());
    ASSERT_GE(n, 8u);
    ASSERT_LE(n, 63u);
    seen.insert(n);
  }
  EXPECT_EQ(seen.size(), 56u);  // every length occurs
}

TEST(CompletionText, IsDeterministicAndAShorterTextIsAPrefix) {
  const std::string full = completion_text(12345, 40);
  EXPECT_EQ(full, completion_text(12345, 40));
  EXPECT_EQ(count_words(full), 40u);
  EXPECT_EQ(full.find("  "), std::string::npos);
  EXPECT_NE(full.back(), ' ');
  const std::string shorter = completion_text(12345, 7);
  EXPECT_EQ(full.substr(0, shorter.size()), shorter);
  EXPECT_EQ(full[shorter.size()], ' ');
  EXPECT_NE(completion_text(12346, 40), full);
  EXPECT_EQ(completion_text(1, 0), "");
}

TEST(WordGenerator, ProducesLowercaseAsciiWordsOnly) {
  WordGenerator gen(99);
  for (int i = 0; i < 1000; ++i) {
    const std::string_view w = gen.next();
    ASSERT_FALSE(w.empty());
    for (char c : w) ASSERT_TRUE(c >= 'a' && c <= 'z') << w;
  }
}

}  // namespace
}  // namespace dynaseal::engine
