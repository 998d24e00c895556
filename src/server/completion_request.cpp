#include "server/completion_request.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/serialize.hpp>

#include "core/json.hpp"

namespace dynaseal::server {
namespace {

namespace json = boost::json;

// A member that is absent or null gives nullopt; another kind than int64 is malformed.
Result<std::optional<std::int64_t>> optional_int(const json::object& o, std::string_view name) {
  const json::value* v = member(o, name);
  if (v == nullptr || v->is_null()) return std::optional<std::int64_t>();
  if (!v->is_int64()) return Unexpected(Error::body_malformed);
  return std::optional<std::int64_t>(v->get_int64());
}

Result<bool> optional_bool(const json::object& o, std::string_view name) {
  const json::value* v = member(o, name);
  if (v == nullptr || v->is_null()) return false;
  if (!v->is_bool()) return Unexpected(Error::body_malformed);
  return v->get_bool();
}

}  // namespace

std::string_view endpoint_path(Endpoint e) {
  switch (e) {
    case Endpoint::chat_completions: return "/v1/chat/completions";
    case Endpoint::completions: return "/v1/completions";
  }
  return "/v1/chat/completions";
}

Result<CompletionRequest> parse_completion_request(std::string_view body, Endpoint endpoint,
                                                   std::size_t max_bytes) {
  // One arena for the whole document (it lives as long as the request, and is edited once for
  // the engine), instead of an allocation per string, object and array.
  auto doc =
      parse_json(body, {.max_bytes = max_bytes, .max_depth = 64},
                 json::make_shared_resource<json::monotonic_resource>(2 * body.size() + 512));
  if (!doc || !doc->is_object()) return Unexpected(Error::body_malformed);
  CompletionRequest r;
  r.endpoint = endpoint;
  r.body = std::move(doc->get_object());
  const json::value* model = member(r.body, "model");
  if (model == nullptr || model->is_null()) return Unexpected(Error::model_missing);
  if (!model->is_string()) return Unexpected(Error::body_malformed);
  if (model->get_string().empty()) return Unexpected(Error::model_missing);
  r.model = std::string(as_view(model->get_string()));

  auto stream = optional_bool(r.body, "stream");
  auto n = optional_int(r.body, "n");
  auto max_tokens = optional_int(r.body, "max_tokens");
  auto max_completion = optional_int(r.body, "max_completion_tokens");
  if (!stream || !n || !max_tokens || !max_completion) return Unexpected(Error::body_malformed);
  r.stream = *stream;
  r.n = n->value_or(1);
  // With both fields given, the larger is what the engine might honour: check that one.
  r.max_tokens = *max_tokens;
  if (*max_completion && (!r.max_tokens || **max_completion > *r.max_tokens)) {
    r.max_tokens = *max_completion;
  }
  if (const json::value* options = member(r.body, "stream_options");
      options != nullptr && !options->is_null()) {
    if (!options->is_object()) return Unexpected(Error::body_malformed);
    auto include = optional_bool(options->get_object(), "include_usage");
    if (!include) return Unexpected(Error::body_malformed);
    r.client_wants_usage = *include;
  }
  return r;
}

RequestFacts CompletionRequest::facts() const {
  return {.endpoint = endpoint, .model = model, .max_tokens = max_tokens, .n = n, .stream = stream};
}

std::string CompletionRequest::upstream_body(std::int64_t cap,
                                             const std::vector<std::string>& cap_fields) {
  // The client's own spellings go: the engine gets the cap in the field(s) it reads, and no
  // other length field survives (check_members let no engine-specific one in).
  body.erase("max_tokens");
  body.erase("max_completion_tokens");
  for (const std::string& field : cap_fields) body[field] = cap;
  if (stream) {
    json::value& options = body["stream_options"];
    if (!options.is_object()) options = json::object();
    options.get_object()["include_usage"] = true;
  }
  return json::serialize(body);
}

}  // namespace dynaseal::server
