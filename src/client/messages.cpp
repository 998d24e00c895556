#include "client/messages.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "core/claims.hpp"
#include "core/json.hpp"

namespace dynaseal::client {
namespace {

namespace json = boost::json;

constexpr JsonLimits kGrantLimits{.max_bytes = 64 * 1024, .max_depth = 8};
constexpr JsonLimits kReplyLimits{.max_bytes = 16 << 20, .max_depth = 64};

ClientFailure malformed(std::string message) {
  return ClientFailure(protocol_error(kResponseMalformed, std::move(message)));
}

ClientResult<json::object> parse_object(std::string_view body, const JsonLimits& limits,
                                        std::string_view what) {
  auto doc = parse_json(body, limits);
  if (!doc) {
    return malformed(std::string(what) + " is not valid JSON (" +
                     std::string(to_string(doc.error())) + ")");
  }
  if (!doc->is_object()) return malformed(std::string(what) + " is not a JSON object");
  return std::move(doc->get_object());
}

// A member that must be a non-empty string.
std::optional<std::string> required_string(const json::object& o, std::string_view key) {
  auto s = string_member(o, key);
  if (!s || s->empty()) return std::nullopt;
  return std::string(*s);
}

// A member that may be absent or null, else must be a string.
bool optional_string(const json::object& o, std::string_view key, std::string& out) {
  const json::value* v = member(o, key);
  if (v == nullptr || v->is_null()) return true;
  if (!v->is_string()) return false;
  out = std::string(as_view(v->get_string()));
  return true;
}

// "usage" absent or null: nullopt in `out`. Otherwise it must hold the three counts.
bool optional_usage(const json::object& o, std::optional<Usage>& out) {
  const json::value* v = member(o, "usage");
  if (v == nullptr || v->is_null()) return true;
  if (!v->is_object()) return false;
  const json::object& u = v->get_object();
  auto prompt = int_member(u, "prompt_tokens");
  auto completion = int_member(u, "completion_tokens");
  auto total = int_member(u, "total_tokens");
  if (!prompt || !completion || !total) return false;
  out = Usage{*prompt, *completion, *total};
  return true;
}

// choices[0] as an object; nullptr when choices is empty. `ok` is false for a wrong shape.
const json::object* first_choice(const json::object& o, bool& ok) {
  const json::value* choices = member(o, "choices");
  ok = choices != nullptr && choices->is_array();
  if (!ok || choices->get_array().empty()) return nullptr;
  const json::value& first = choices->get_array().front();
  ok = first.is_object();
  return ok ? &first.get_object() : nullptr;
}

}  // namespace

std::string key_request_json(const KeyRequest& request) {
  json::object body;
  body["model"] = request.model;
  if (request.max_tokens) body["max_tokens"] = *request.max_tokens;
  if (request.uses) body["uses"] = *request.uses;
  return json::serialize(body);
}

ClientResult<KeyGrant> parse_key_grant(std::string_view body) {
  auto o = parse_object(body, kGrantLimits, "the key grant");
  if (!o) return ClientFailure(o.error());
  KeyGrant g;
  auto key = required_string(*o, "key");
  if (!key) return malformed("the key grant has no \"key\" string");
  g.key = std::move(*key);
  auto event_id = string_member(*o, "event_id");
  if (!event_id || !valid_jti(*event_id))
    return malformed("the key grant has no valid \"event_id\"");
  g.event_id = std::string(*event_id);
  auto expires_at = int_member(*o, "expires_at");
  if (!expires_at || *expires_at <= 0)
    return malformed("the key grant has no \"expires_at\" integer");
  g.expires_at = *expires_at;
  const json::value* server = member(*o, "server");
  if (server == nullptr || !server->is_object())
    return malformed("the key grant has no \"server\"");
  auto id = required_string(server->get_object(), "id");
  auto url = required_string(server->get_object(), "url");
  if (!id || !url) return malformed("the key grant's \"server\" lacks \"id\" or \"url\"");
  g.server_id = std::move(*id);
  g.server_url = std::move(*url);
  return g;
}

std::string chat_request_json(const ChatRequest& request) {
  json::object body;
  body["model"] = request.model;
  json::array messages;
  for (const ChatMessage& m : request.messages) {
    json::object message;
    message["role"] = m.role;
    message["content"] = m.content;
    messages.emplace_back(std::move(message));
  }
  body["messages"] = std::move(messages);
  if (request.max_tokens) body["max_tokens"] = *request.max_tokens;
  if (request.stream) {
    body["stream"] = true;
    json::object options;
    options["include_usage"] = true;
    body["stream_options"] = std::move(options);
  }
  return json::serialize(body);
}

ClientResult<ChatResult> parse_chat_completion(std::string_view body) {
  auto o = parse_object(body, kReplyLimits, "the chat completion");
  if (!o) return ClientFailure(o.error());
  bool ok = false;
  const json::object* choice = first_choice(*o, ok);
  if (choice == nullptr) return malformed("the chat completion has no choices");
  const json::value* message = member(*choice, "message");
  if (message == nullptr || !message->is_object()) {
    return malformed("the chat completion's choice has no message");
  }
  ChatResult r;
  if (!optional_string(message->get_object(), "content", r.content) ||
      !optional_string(*choice, "finish_reason", r.finish_reason)) {
    return malformed("the chat completion's content or finish_reason is not a string");
  }
  if (!optional_usage(*o, r.usage)) return malformed("the chat completion's usage is malformed");
  return r;
}

ClientResult<ChatChunk> parse_chat_chunk(std::string_view data, int status) {
  auto o = parse_object(data, kReplyLimits, "a stream event");
  if (!o) return ClientFailure(o.error());
  if (member(*o, "error") != nullptr) {
    if (auto e = error_from_body(data, status)) return ClientFailure(std::move(*e));
    return malformed("a stream event has a malformed \"error\"");
  }
  bool ok = false;
  const json::object* choice = first_choice(*o, ok);
  if (!ok) return malformed("a stream event has no \"choices\" array");
  ChatChunk c;
  if (!optional_usage(*o, c.usage)) return malformed("a stream event's usage is malformed");
  if (choice == nullptr) return c;  // the usage chunk
  const json::value* delta = member(*choice, "delta");
  if (delta != nullptr && !delta->is_object())
    return malformed("a stream event's delta is not an object");
  std::string finish;
  if ((delta != nullptr && !optional_string(delta->get_object(), "content", c.delta)) ||
      !optional_string(*choice, "finish_reason", finish)) {
    return malformed("a stream event's content or finish_reason is not a string");
  }
  if (!finish.empty()) c.finish_reason = std::move(finish);
  return c;
}

}  // namespace dynaseal::client
