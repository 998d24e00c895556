#include "engine/request.hpp"

#include <algorithm>
#include <array>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "core/json.hpp"
#include "engine/text.hpp"

namespace dynaseal::engine {
namespace {

namespace json = boost::json;

constexpr std::string_view kInvalid = "invalid_request_error";
// The HTTP server bounds the body; this only keeps the parser's own limit out of the way.
constexpr std::size_t kMaxJsonBytes = std::size_t{64} << 20;
constexpr std::size_t kMaxJsonDepth = 64;
// Typical request bodies parse entirely inside this stack buffer: no heap allocation.
constexpr std::size_t kParseBuffer = 8 * 1024;

using Status = std::optional<ApiError>;

ApiError malformed(std::string message) {
  return {400, kInvalid, "body_malformed", std::move(message)};
}

// A member that is present and not null, or nullptr: OpenAI treats null as "not given".
const json::value* present(const json::object& obj, std::string_view key) {
  const json::value* v = member(obj, key);
  return v != nullptr && !v->is_null() ? v : nullptr;
}

// Accumulates the prompt text: token count, hash, the first fault marker.
class PromptReader {
 public:
  explicit PromptReader(PromptHash hash) : hash_(hash) {}

  Status text(std::string_view t) {
    tokens_ += static_cast<std::int64_t>(count_words(t));
    hash_.add(t);
    if (fault_ != Fault::none) return std::nullopt;
    const std::optional<Fault> f = find_fault(t);
    if (!f) return ApiError{400, kInvalid, "fault_unknown", "unknown [[fault:MODE]] marker"};
    fault_ = *f;
    return std::nullopt;
  }

  // A chat message's role: one token, and part of the hash.
  void role(std::string_view r) {
    ++tokens_;
    hash_.add(r);
  }

  void finish(CompletionRequest& req) const {
    req.prompt_tokens = tokens_;
    req.prompt_hash = hash_.value();
    req.fault = fault_;
  }

 private:
  PromptHash hash_;
  std::int64_t tokens_ = 0;
  Fault fault_ = Fault::none;
};

// content: a string, an array of parts ({type:"text",text} counted, other types ignored), or
// absent/null (an assistant message with tool calls).
Status read_content(const json::value* content, PromptReader& prompt) {
  if (content == nullptr) return std::nullopt;
  if (content->is_string()) return prompt.text(as_view(content->get_string()));
  if (!content->is_array()) return malformed("message content must be a string or an array");
  for (const json::value& part : content->get_array()) {
    if (!part.is_object()) return malformed("content parts must be objects");
    const auto type = string_member(part.get_object(), "type");
    if (!type) return malformed("content parts need a type");
    if (*type != "text") continue;
    const auto text = string_member(part.get_object(), "text");
    if (!text) return malformed("text content parts need a text string");
    if (Status s = prompt.text(*text)) return s;
  }
  return std::nullopt;
}

Status read_messages(const json::object& obj, PromptReader& prompt) {
  const json::value* messages = present(obj, "messages");
  if (messages == nullptr || !messages->is_array() || messages->get_array().empty()) {
    return malformed("messages must be a non-empty array");
  }
  for (const json::value& m : messages->get_array()) {
    if (!m.is_object()) return malformed("messages must be objects");
    const auto role = string_member(m.get_object(), "role");
    if (!role) return malformed("each message needs a role");
    prompt.role(*role);
    if (Status s = read_content(present(m.get_object(), "content"), prompt)) return s;
  }
  return std::nullopt;
}

// prompt: a string or a non-empty array of strings (token-id prompts are not supported).
Status read_prompt(const json::object& obj, PromptReader& prompt) {
  const json::value* p = present(obj, "prompt");
  if (p != nullptr && p->is_string()) return prompt.text(as_view(p->get_string()));
  if (p == nullptr || !p->is_array() || p->get_array().empty()) {
    return malformed("prompt must be a string or a non-empty array of strings");
  }
  for (const json::value& part : p->get_array()) {
    if (!part.is_string()) return malformed("prompt arrays must hold strings");
    if (Status s = prompt.text(as_view(part.get_string()))) return s;
  }
  return std::nullopt;
}

// Reads an optional token cap into `cap`, keeping the smaller when both spellings are given.
Status read_cap(const json::object& obj, std::string_view key, std::optional<std::int64_t>& cap) {
  const json::value* v = present(obj, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_int64() || v->get_int64() < 1) {
    return malformed(std::string(key) + " must be an integer of at least 1");
  }
  cap = cap ? std::min(*cap, v->get_int64()) : v->get_int64();
  return std::nullopt;
}

Status read_stream_options(const json::object& obj, CompletionRequest& req) {
  const json::value* stream = present(obj, "stream");
  if (stream != nullptr && !stream->is_bool()) return malformed("stream must be a boolean");
  req.stream = stream != nullptr && stream->get_bool();
  const json::value* options = present(obj, "stream_options");
  if (options == nullptr) return std::nullopt;
  if (!req.stream) return malformed("stream_options is only allowed when stream is true");
  if (!options->is_object()) return malformed("stream_options must be an object");
  const json::value* usage = present(options->get_object(), "include_usage");
  if (usage != nullptr && !usage->is_bool()) return malformed("include_usage must be a boolean");
  req.include_usage = usage != nullptr && usage->get_bool();
  return std::nullopt;
}

Status read_model(const json::object& obj, std::span<const std::string> models,
                  CompletionRequest& req) {
  const json::value* model = present(obj, "model");
  if (model == nullptr) return ApiError{400, kInvalid, "model_missing", "no model was given"};
  if (!model->is_string()) return malformed("model must be a string");
  const std::string_view name = as_view(model->get_string());
  const auto it = std::find(models.begin(), models.end(), name);
  if (it == models.end()) {
    return ApiError{404, kInvalid, "model_not_found",
                    "The model `" + std::string(name) + "` does not exist"};
  }
  req.model = static_cast<std::size_t>(it - models.begin());
  return std::nullopt;
}

Status read_n(const json::object& obj) {
  const json::value* n = present(obj, "n");
  if (n == nullptr) return std::nullopt;
  if (!n->is_int64() || n->get_int64() < 1) return malformed("n must be an integer of at least 1");
  if (n->get_int64() > 1)
    return ApiError{400, kInvalid, "n_not_supported", "only n = 1 is supported"};
  return std::nullopt;
}

// The first of `keys` that is present, read as a cap (the flavor's order of precedence).
Status read_first_cap(const json::object& obj, std::initializer_list<std::string_view> keys,
                      std::optional<std::int64_t>& cap) {
  for (std::string_view key : keys) {
    if (present(obj, key) != nullptr) return read_cap(obj, key, cap);
  }
  return std::nullopt;
}

// vLLM's knobs that make an answer longer than its natural end.
Status read_vllm_length(const json::object& obj, CompletionRequest& req) {
  if (const json::value* min = present(obj, "min_tokens")) {
    if (!min->is_int64() || min->get_int64() < 0) return malformed("min_tokens must be >= 0");
    req.min_tokens = min->get_int64();
  }
  if (const json::value* eos = present(obj, "ignore_eos")) {
    if (!eos->is_bool()) return malformed("ignore_eos must be a boolean");
    req.ignore_eos = eos->get_bool();
  }
  return std::nullopt;
}

Status read_caps(Endpoint endpoint, const json::object& obj, Flavor flavor,
                 CompletionRequest& req) {
  const bool chat = endpoint == Endpoint::chat;
  switch (flavor) {
    case Flavor::generic:
    case Flavor::reckless:
      if (chat) {
        if (Status s = read_cap(obj, "max_completion_tokens", req.max_tokens)) return s;
      }
      return read_cap(obj, "max_tokens", req.max_tokens);
    case Flavor::openai:
    case Flavor::vllm:
      if (flavor == Flavor::vllm) {
        if (Status s = read_vllm_length(obj, req)) return s;
      }
      if (!chat) return read_cap(obj, "max_tokens", req.max_tokens);
      return read_first_cap(obj, {"max_completion_tokens", "max_tokens"}, req.max_tokens);
    case Flavor::llamacpp: {
      const json::value* n_predict = present(obj, "n_predict");
      if (n_predict != nullptr && n_predict->is_int64() && n_predict->get_int64() == -1) {
        return std::nullopt;  // llama.cpp: -1 generates until the end of the context
      }
      return read_first_cap(obj, {"n_predict", "max_tokens", "max_completion_tokens"},
                            req.max_tokens);
    }
    case Flavor::ollama: return read_cap(obj, "max_tokens", req.max_tokens);
    case Flavor::tgi: return read_first_cap(obj, {"max_new_tokens", "max_tokens"}, req.max_tokens);
  }
  return std::nullopt;
}

Status read_object(Endpoint endpoint, const json::object& obj, std::span<const std::string> models,
                   std::uint64_t seed, Flavor flavor, CompletionRequest& req) {
  if (Status s = read_model(obj, models, req)) return s;
  if (Status s = read_n(obj)) return s;
  if (Status s = read_stream_options(obj, req)) return s;
  if (Status s = read_caps(endpoint, obj, flavor, req)) return s;
  PromptHash hash(seed);
  hash.add(models[req.model]);
  PromptReader prompt(hash);
  Status s = endpoint == Endpoint::chat ? read_messages(obj, prompt) : read_prompt(obj, prompt);
  if (s) return s;
  prompt.finish(req);
  return std::nullopt;
}

}  // namespace

std::optional<Flavor> parse_flavor(std::string_view name) {
  if (name == "generic") return Flavor::generic;
  if (name == "openai") return Flavor::openai;
  if (name == "vllm") return Flavor::vllm;
  if (name == "llamacpp") return Flavor::llamacpp;
  if (name == "ollama") return Flavor::ollama;
  if (name == "tgi") return Flavor::tgi;
  if (name == "reckless") return Flavor::reckless;
  return std::nullopt;
}

std::string error_body(const ApiError& e) {
  json::object error;
  error["message"] = e.message;
  error["type"] = e.type;
  error["code"] = e.code;
  json::object body;
  body["error"] = std::move(error);
  return json::serialize(body);
}

tl::expected<CompletionRequest, ApiError> read_completion_request(
    Endpoint endpoint, std::string_view body, std::span<const std::string> models,
    std::uint64_t seed, Flavor flavor) {
  alignas(std::max_align_t) std::array<unsigned char, kParseBuffer> buffer;
  json::monotonic_resource resource(buffer.data(), buffer.size());
  auto parsed = parse_json(body, {.max_bytes = kMaxJsonBytes, .max_depth = kMaxJsonDepth},
                           json::storage_ptr(&resource));
  if (!parsed) return tl::unexpected(malformed("the request body is not valid JSON"));
  if (!parsed->is_object()) return tl::unexpected(malformed("the request body must be an object"));
  CompletionRequest req;
  req.endpoint = endpoint;
  if (Status s = read_object(endpoint, parsed->get_object(), models, seed, flavor, req)) {
    return tl::unexpected(std::move(*s));
  }
  return req;
}

}  // namespace dynaseal::engine
