#include "server/request_members.hpp"

#include <algorithm>

#include "core/json.hpp"

namespace dynaseal::server {
namespace {

namespace json = boost::json;

using Refused = tl::unexpected<MemberRefusal>;

// Forwarded to the engine as they are (model, stream, stream_options and the caps are read by
// parse_completion_request; the caps are rewritten).
constexpr std::array kChatMembers = {
    "model",
    "messages",
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "n",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "user",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "functions",
    "function_call",
    "response_format",
    "reasoning_effort",
    "verbosity",
    "metadata",
    "store",
    "prompt_cache_key",
    "safety_identifier",
    "modalities",
};

// Not `echo`: it streams the prompt back as completion chunks, which the relay would count
// against the cap (stream_relay.hpp).
constexpr std::array kCompletionMembers = {
    "model",
    "prompt",
    "stream",
    "stream_options",
    "max_tokens",
    "n",
    "best_of",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "suffix",
    "user",
};

constexpr std::array kLengthMembers = {
    "n_predict",
    "max_new_tokens",
    "num_predict",
    "min_tokens",
    "ignore_eos",
    "min_length",
    "max_length",
    "use_beam_search",
    "num_beams",
    "beam_width",
    "options",
    "chat_template",
    "chat_template_kwargs",
    "continue_final_message",
    "add_generation_prompt",
    "audio",
    "prediction",
    "service_tier",
    "web_search_options",
    "documents",
};

template <std::size_t N>
bool listed(const std::array<const char*, N>& list, std::string_view name) {
  return std::any_of(list.begin(), list.end(), [&](const char* m) { return name == m; });
}

bool standard(Endpoint e, std::string_view name) {
  return e == Endpoint::completions ? listed(kCompletionMembers, name) : listed(kChatMembers, name);
}

// n and best_of: at most one answer per request.
bool at_most_one(const json::value& v) {
  return v.is_null() || (v.is_int64() && v.get_int64() == 1);
}

bool token_ids(const json::array& a) {
  return std::all_of(a.begin(), a.end(), [](const json::value& v) { return v.is_int64(); });
}

// One prompt: "text", [ids...], ["text"] or [[ids...]].
bool one_prompt(const json::value& v) {
  if (v.is_string()) return true;
  if (!v.is_array()) return false;
  const json::array& a = v.get_array();
  if (a.empty() || token_ids(a)) return !a.empty();
  if (a.size() != 1) return false;
  return a[0].is_string() || (a[0].is_array() && token_ids(a[0].get_array()));
}

bool is_media(std::string_view type) {
  return type == "image_url" || type == "input_audio" || type == "file" || type == "input_image";
}

std::string part_path(std::size_t message, std::size_t part) {
  return "messages[" + std::to_string(message) + "].content[" + std::to_string(part) + "]";
}

// Content parts of every message: text passes, media counts (or is refused), the rest refused.
tl::expected<RequestShape, MemberRefusal> check_messages(const json::value& messages,
                                                         const MemberPolicy& policy) {
  if (!messages.is_array()) return Refused({Error::body_malformed, "messages"});
  RequestShape shape;
  const json::array& list = messages.get_array();
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (!list[i].is_object()) return Refused({Error::body_malformed, "messages"});
    const json::value* content = member(list[i].get_object(), "content");
    if (content == nullptr || !content->is_array()) continue;  // a string or null
    const json::array& parts = content->get_array();
    for (std::size_t j = 0; j < parts.size(); ++j) {
      const json::value* type =
          parts[j].is_object() ? member(parts[j].get_object(), "type") : nullptr;
      if (type == nullptr || !type->is_string()) {
        return Refused({Error::body_malformed, part_path(i, j)});
      }
      const std::string_view t = as_view(type->get_string());
      if (t == "text" || t == "refusal") continue;
      if (!is_media(t) || policy.media_item_tokens < 1) {
        return Refused({Error::content_not_allowed, part_path(i, j)});
      }
      ++shape.media_items;
    }
  }
  return shape;
}

}  // namespace

bool is_length_member(std::string_view name) {
  return listed(kLengthMembers, name) || standard(Endpoint::chat_completions, name) ||
         standard(Endpoint::completions, name);
}

std::vector<std::string_view> standard_members(Endpoint endpoint) {
  std::vector<std::string_view> out;
  auto add = [&](const auto& list) {
    for (const char* m : list) out.emplace_back(m);
  };
  if (endpoint == Endpoint::completions) {
    add(kCompletionMembers);
  } else {
    add(kChatMembers);
  }
  return out;
}

tl::expected<RequestShape, MemberRefusal> check_members(const json::object& body, Endpoint endpoint,
                                                        const MemberPolicy& policy) {
  RequestShape shape;
  for (const json::key_value_pair& kv : body) {
    const std::string_view name = kv.key();
    const json::value& v = kv.value();
    if (!standard(endpoint, name)) {
      const auto& extra = policy.extra_members;
      if (std::find(extra.begin(), extra.end(), name) != extra.end()) continue;
      return Refused({Error::member_not_allowed, std::string(name)});
    }
    if ((name == "n" || name == "best_of") && !at_most_one(v)) {
      return Refused({Error::n_not_allowed, std::string(name)});
    }
    if (name == "modalities" && !v.is_null()) {
      const bool text_only = v.is_array() && v.get_array().size() == 1 &&
                             v.get_array()[0].is_string() &&
                             v.get_array()[0].get_string() == "text";
      if (!text_only) return Refused({Error::content_not_allowed, "modalities"});
    }
    if (name == "prompt" && !one_prompt(v)) {
      const bool several = v.is_array() && v.get_array().size() > 1;
      return Refused({several ? Error::n_not_allowed : Error::body_malformed, "prompt"});
    }
    if (name == "messages") {
      auto checked = check_messages(v, policy);
      if (!checked) return Refused(checked.error());
      shape = *checked;
    }
  }
  return shape;
}

}  // namespace dynaseal::server
