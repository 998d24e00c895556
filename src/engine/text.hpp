// Deterministic text for the stand-in engine: token counting and word generation. No I/O.
//
// The engine's tokenizer is deliberately trivial so that tests can predict usage exactly: one
// token is one whitespace-separated word (a maximal run of bytes that are not ASCII space, tab,
// LF, VT, FF or CR). A completion is a sequence of words drawn from a fixed 64-word vocabulary
// by a SplitMix64 generator seeded with the prompt's hash, so the same (model, prompt, seed)
// always gives the same words, and a shorter completion is always a prefix of a longer one.
//
//   PromptHash hash(seed);
//   hash.add(model);
//   hash.add(prompt);
//   WordGenerator words(hash.value());
//   for (std::size_t i = 0; i < natural_length(hash.value()); ++i) emit(words.next());
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dynaseal::engine {

// The number of tokens in `text`: its whitespace-separated words.
std::size_t count_words(std::string_view text);

// A 64-bit hash of a sequence of strings (FNV-1a over each part and a separator, finished with
// a SplitMix64 mix), keyed by the engine's --seed. ("ab", "c") and ("a", "bc") differ.
class PromptHash {
 public:
  explicit PromptHash(std::uint64_t seed);
  void add(std::string_view part);
  std::uint64_t value() const;

 private:
  std::uint64_t state_;
};

// One step of SplitMix64: advances `state` and returns a well-mixed 64-bit output.
std::uint64_t splitmix_next(std::uint64_t& state);

// How many words a completion has when max_tokens does not cut it: 8 + hash % 56 (8..63).
std::size_t natural_length(std::uint64_t prompt_hash);

// The words of one completion, in order. Each word is a view of static storage.
class WordGenerator {
 public:
  explicit WordGenerator(std::uint64_t prompt_hash) : state_(prompt_hash) {}
  std::string_view next();

 private:
  std::uint64_t state_;
};

// The first `words` words of the completion for `prompt_hash`, joined by single spaces (no
// trailing space): exactly the concatenation of the streamed deltas.
std::string completion_text(std::uint64_t prompt_hash, std::size_t words);

}  // namespace dynaseal::engine
