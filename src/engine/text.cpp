#include "engine/text.hpp"

#include <array>

namespace dynaseal::engine {
namespace {

// 64 words, so the top six bits of a generator output pick one without bias. Lowercase ASCII
// letters only: no JSON escaping is ever needed, and each word is one token by definition.
constexpr std::array<std::string_view, 64> kVocabulary = {
    "the",     "engine", "answers",  "with",    "words",   "drawn",   "from",    "a",
    "small",   "fixed",  "list",     "so",      "every",   "test",    "can",     "predict",
    "what",    "comes",  "next",     "signed",  "keys",    "expire",  "quickly", "and",
    "servers", "verify", "them",     "before",  "serving", "each",    "request", "model",
    "stream",  "token",  "usage",    "is",      "counted", "exactly", "while",   "edge",
    "agents",  "call",   "directly", "without", "secrets", "budget",  "scope",   "limits",
    "latency", "stays",  "low",      "under",   "load",    "replies", "arrive",  "in",
    "order",   "one",    "word",     "at",      "time",    "until",   "done",    "here",
};

constexpr std::uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
constexpr std::uint64_t kFnvPrime = 0x100000001b3ULL;
constexpr std::uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

constexpr std::uint64_t mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

constexpr bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

}  // namespace

std::size_t count_words(std::string_view text) {
  std::size_t words = 0;
  bool in_word = false;
  for (char c : text) {
    const bool space = is_space(c);
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

PromptHash::PromptHash(std::uint64_t seed) : state_(kFnvOffset ^ mix(seed + kGolden)) {}

void PromptHash::add(std::string_view part) {
  for (char c : part) {
    state_ ^= static_cast<unsigned char>(c);
    state_ *= kFnvPrime;
  }
  // Ends the part with 0x100, a value no byte can take, so part boundaries change the hash.
  state_ ^= 0x100;
  state_ *= kFnvPrime;
}

std::uint64_t PromptHash::value() const { return mix(state_); }

std::uint64_t splitmix_next(std::uint64_t& state) {
  state += kGolden;
  return mix(state);
}

std::size_t natural_length(std::uint64_t prompt_hash) { return 8 + prompt_hash % 56; }

std::string_view WordGenerator::next() { return kVocabulary[splitmix_next(state_) >> 58]; }

std::string completion_text(std::uint64_t prompt_hash, std::size_t words) {
  std::string text;
  text.reserve(words * 9);
  WordGenerator gen(prompt_hash);
  for (std::size_t i = 0; i < words; ++i) {
    if (i > 0) text += ' ';
    text += gen.next();
  }
  return text;
}

}  // namespace dynaseal::engine
