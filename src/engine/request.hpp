// Reading OpenAI completion requests for the stand-in engine. No I/O.
//
// The body is read with parse_json (strict: duplicate members, trailing data and the like are
// refused) and reduced at once to what the engine needs — the model, the streaming options,
// the token cap, the prompt's token count, hash and fault marker — so no JSON tree outlives
// the call. Members the engine does not use (temperature, tools, ...) are ignored; members it
// uses must have OpenAI's types, null counting as absent.
//
//   auto req = read_completion_request(Endpoint::chat, body, models, seed);
//   if (!req) return respond_error(req.error());
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "engine/fault.hpp"

namespace dynaseal::engine {

enum class Endpoint {
  chat,         // POST /v1/chat/completions
  completions,  // POST /v1/completions
};

// Which engine's length knobs the stand-in honours, so that tests can play each engine the
// README documents (docs/engine.md, "Flavors"):
//   generic   max_tokens and max_completion_tokens, the smaller wins (the default);
//   openai    max_completion_tokens, else max_tokens;
//   vllm      max_completion_tokens, else max_tokens; min_tokens; ignore_eos;
//   llamacpp  n_predict, else max_tokens, else max_completion_tokens (n_predict -1: no cap);
//   ollama    max_tokens only (its OpenAI API ignores max_completion_tokens);
//   tgi       max_new_tokens, else max_tokens;
//   reckless  reads the generic fields and ignores them: every answer runs 64 words past its
//             natural length (an engine that breaks the cap).
enum class Flavor { generic, openai, vllm, llamacpp, ollama, tgi, reckless };
std::optional<Flavor> parse_flavor(std::string_view name);

// Words an answer runs to when nothing stops it (ignore_eos without a cap).
inline constexpr std::int64_t kUncappedLength = 2048;

// An error as the engine reports it: an HTTP status and an OpenAI error body
// {"error":{"message":...,"type":...,"code":...}}. `type` and `code` are static strings.
struct ApiError {
  unsigned status;
  std::string_view type;  // "invalid_request_error" or "server_error"
  std::string_view code;  // stable, e.g. "model_not_found"; listed in docs/engine.md
  std::string message;
};

// The serialized OpenAI error body for `e`.
std::string error_body(const ApiError& e);

struct CompletionRequest {
  Endpoint endpoint = Endpoint::chat;
  std::size_t model = 0;  // index into the engine's models
  bool stream = false;
  bool include_usage = false;              // stream_options.include_usage
  std::optional<std::int64_t> max_tokens;  // >= 1, as the flavor reads it
  std::int64_t min_tokens = 0;             // vllm: the answer runs at least this long
  bool ignore_eos = false;                 // vllm: the answer runs to the cap
  std::int64_t prompt_tokens = 0;          // words of the prompt text (+1 per chat message)
  std::uint64_t prompt_hash = 0;           // of (seed, model, prompt text): picks the words
  Fault fault = Fault::none;
};

// Reads a request body for `endpoint`. Errors: 400 body_malformed (not JSON, wrong types, no
// messages/prompt, max_tokens < 1, stream_options without stream), 400 model_missing, 404
// model_not_found (not in `models`), 400 n_not_supported (n > 1), 400 fault_unknown.
tl::expected<CompletionRequest, ApiError> read_completion_request(
    Endpoint endpoint, std::string_view body, std::span<const std::string> models,
    std::uint64_t seed, Flavor flavor = Flavor::generic);

}  // namespace dynaseal::engine
