#include "client/client_error.hpp"

#include "core/json.hpp"

namespace dynaseal::client {
namespace {

constexpr std::size_t kMaxErrorBody = 64 * 1024;

}  // namespace

// Exhaustive on purpose: no default, so -Werror=switch flags a new kind without text.
std::string_view to_string(ClientError::Kind kind) {
  switch (kind) {
    case ClientError::Kind::transport: return "transport";
    case ClientError::Kind::http: return "http";
    case ClientError::Kind::protocol: return "protocol";
  }
  return "transport";
}

ClientError transport_error(std::string_view code, std::string message) {
  return {ClientError::Kind::transport, 0, std::string(code), std::move(message)};
}

ClientError protocol_error(std::string_view code, std::string message) {
  return {ClientError::Kind::protocol, 0, std::string(code), std::move(message)};
}

std::optional<ClientError> error_from_body(std::string_view json, int status) {
  auto doc = parse_json(json, {.max_bytes = kMaxErrorBody, .max_depth = 16});
  if (!doc || !doc->is_object()) return std::nullopt;
  const boost::json::value* error = member(doc->get_object(), "error");
  if (error == nullptr || !error->is_object()) return std::nullopt;
  const boost::json::object& e = error->get_object();
  // OpenAI itself sends "code": null for some errors; the type is the next most stable name.
  std::optional<std::string_view> code = string_member(e, "code");
  if (!code || code->empty()) code = string_member(e, "type");
  const std::optional<std::string_view> message = string_member(e, "message");
  ClientError out{ClientError::Kind::http, status, std::string(code ? *code : kHttpError), {}};
  out.message = message && !message->empty() ? std::string(*message) : out.code;
  return out;
}

ClientError http_error(int status, std::string_view body) {
  if (auto e = error_from_body(body, status)) return *e;
  return {ClientError::Kind::http, status, std::string(kHttpError),
          "HTTP " + std::to_string(status) + " without an error body"};
}

}  // namespace dynaseal::client
