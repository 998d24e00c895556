// Which members a completion request may carry, per endpoint: the server forwards only what it
// knows, so a key's cap bounds what an engine generates whatever knobs the engine honours.
//
// The check is an allow-list, not a list of known tricks. A member outside the endpoint's list
// (docs/server.md, "What a request may carry") is refused with member_not_allowed naming it,
// never dropped silently: the client must learn why. An operator may allow extra members per
// upstream for engine features that do not change how much is generated (`top_k`,
// `repetition_penalty`); members that do (kLengthMembers) can never be allowed that way.
// Inside the body:
//   - n and best_of: absent, null or 1 (n_not_allowed otherwise);
//   - modalities: ["text"] only (audio output is generated apart from the token cap);
//   - /v1/completions prompt: one prompt (a string, or an array of token ids, or an array
//     holding one of those); several prompts give one answer each: n_not_allowed;
//   - chat content parts: "text" and "refusal"; media parts ("image_url", "input_audio",
//     "file") only when the upstream gives each a token bound (media_item_tokens), since an
//     engine expands them far beyond their bytes; any other part type is content_not_allowed.
//
//   auto shape = check_members(body, Endpoint::chat_completions, upstream.members);
//   if (!shape) return reject(shape.error().code, shape.error().member);
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <tl/expected.hpp>

#include "core/error.hpp"
#include "core/scope.hpp"

namespace dynaseal::server {

// Per upstream (its [[upstream]] table): what it may receive beyond the standard members.
struct MemberPolicy {
  std::vector<std::string> extra_members;  // forwarded as they are
  std::int64_t media_item_tokens = 0;      // 0: media content parts refused
};

// A refused request: the code and the member's path ("n_predict", "messages[2].content[0]").
struct MemberRefusal {
  Error code;
  std::string member;
};

// What the check learnt that the budget needs.
struct RequestShape {
  std::int64_t media_items = 0;  // media content parts (each bounded by media_item_tokens)
};

tl::expected<RequestShape, MemberRefusal> check_members(const boost::json::object& body,
                                                        Endpoint endpoint,
                                                        const MemberPolicy& policy);

// Members no operator may allow as extras: they set or change how much an engine generates or
// how many answers it gives (llama.cpp n_predict, TGI max_new_tokens, vLLM min_tokens /
// ignore_eos / best_of / use_beam_search, Ollama options.num_predict, chat templates that
// change the prompt beyond its bytes), or they are standard members checked above.
bool is_length_member(std::string_view name);

// The standard members of `endpoint`, in the order docs/server.md lists them.
std::vector<std::string_view> standard_members(Endpoint endpoint);

}  // namespace dynaseal::server
