#include "client/client.hpp"

#include <cctype>
#include <string>

namespace dynaseal::client {
namespace {

constexpr std::size_t kMaxGrantBytes = 64 * 1024;
constexpr std::size_t kMaxErrorBytes = 64 * 1024;
constexpr std::string_view kEventIdHeader = "x-dynaseal-event-id";

bool is_success(int status) { return status >= 200 && status < 300; }

bool starts_with_ignoring_case(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
  }
  return true;
}

// The error of a refused request: its status and whatever OpenAI error body it carries. A body
// that cannot be read whole still leaves the status, which is the refusal that matters.
ClientError refusal(HttpExchange& ex) {
  auto body = ex.read_all(kMaxErrorBytes);
  return http_error(ex.status(), body ? std::string_view(*body) : std::string_view());
}

}  // namespace

ClientResult<Client> Client::create(ClientOptions options) {
  auto transport = HttpTransport::create(std::move(options));
  if (!transport) return ClientFailure(transport.error());
  return Client(std::move(*transport));
}

ClientResult<KeyGrant> Client::request_key(std::string_view backend_url,
                                           std::string_view user_token,
                                           const KeyRequest& request) const {
  HttpExchange ex(transport_);
  if (auto e = ex.post(backend_url, "/v1/keys", user_token, key_request_json(request),
                       "application/json")) {
    return ClientFailure(std::move(*e));
  }
  if (!is_success(ex.status())) return ClientFailure(refusal(ex));
  auto body = ex.read_all(kMaxGrantBytes);
  if (!body) return ClientFailure(body.error());
  auto grant = parse_key_grant(*body);
  if (!grant) return grant;
  if (!valid_base_url(grant->server_url)) {
    return ClientFailure(
        protocol_error(kResponseMalformed,
                       "the key grant's server url is not an http(s) URL: " + grant->server_url));
  }
  return grant;
}

ClientResult<ChatResult> Client::chat(std::string_view server_url, std::string_view key,
                                      const ChatRequest& request,
                                      const DeltaCallback& on_delta) const {
  HttpExchange ex(transport_);
  const std::string_view accept = request.stream ? "text/event-stream" : "application/json";
  if (auto e =
          ex.post(server_url, "/v1/chat/completions", key, chat_request_json(request), accept)) {
    return ClientFailure(std::move(*e));
  }
  if (!is_success(ex.status())) return ClientFailure(refusal(ex));
  auto result = request.stream ? read_stream(ex, on_delta) : read_whole(ex);
  if (result) result->event_id = ex.header(kEventIdHeader);
  return result;
}

ClientResult<ChatResult> Client::read_whole(HttpExchange& ex) const {
  auto body = ex.read_all(options().max_response_bytes);
  if (!body) return ClientFailure(body.error());
  return parse_chat_completion(*body);
}

ClientResult<ChatResult> Client::read_stream(HttpExchange& ex,
                                             const DeltaCallback& on_delta) const {
  // A 200 that is not an event stream (a proxy's JSON, an HTML page) is not the contract.
  const std::string type = ex.header("content-type");
  if (!starts_with_ignoring_case(type, "text/event-stream")) {
    return ClientFailure(protocol_error(
        kResponseMalformed, "expected an event stream, got content type \"" + type + "\""));
  }
  ChatStreamReader reader(ex.status(), on_delta, options().max_response_bytes);
  while (!reader.done()) {
    auto piece = ex.read_some();
    if (!piece) return ClientFailure(piece.error());
    if (piece->empty()) break;
    if (auto e = reader.feed(*piece)) return ClientFailure(std::move(*e));
  }
  // Read the body's end too (a few bytes after [DONE]), so the server sees the response taken
  // whole rather than a client leaving mid-response. Anything after [DONE] is ignored.
  for (int pieces = 0; reader.done() && pieces < 4; ++pieces) {
    auto rest = ex.read_some();
    if (!rest || rest->empty()) break;
  }
  return reader.finish();
}

}  // namespace dynaseal::client
