// The client's error model: one ClientError, three kinds, stable codes.
//
// What went wrong decides the kind:
//   - transport: no usable HTTP exchange happened (a bad URL or token from the caller, a refused
//     connection, a timeout, a failed TLS handshake, a connection lost mid-response).
//     `http_status` is 0.
//   - http: the peer answered with an error. For a non-2xx status, `code` and `message` come
//     from the OpenAI error body {"error":{"message","type","code"}} that the Dynaseal server and
//     backend send (`code` falls back to the body's `type`, then to "http_error" when the body
//     has neither). An error event inside a streamed 200 response (the server's
//     `data: {"error":{...}}`) is also kind http, with `http_status` 200 and the event's code.
//   - protocol: the peer answered, but not in the shape the contract promises (not JSON,
//     duplicate members, missing fields, a broken event stream, a body above the size limit).
//
// Codes are the stable part: scripts and apps match on them, messages are for people.
//
//   auto grant = client.request_key(backend_url, user_token, {.model = "demo"});
//   if (!grant && grant.error().code == "rate_limited") retry_later();
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

namespace dynaseal::client {

struct ClientError {
  enum class Kind {
    transport,  // no usable exchange: URL, connect, timeout, TLS, connection lost
    http,       // the peer refused with an OpenAI error (status and body), or a stream error event
    protocol,   // the peer's answer is not what the contract promises
  };
  Kind kind = Kind::transport;
  int http_status = 0;  // the response's status for kind http, else 0
  std::string code;     // stable, e.g. "connect_failed", "uses_exhausted"
  std::string message;  // human readable, never empty
};

template <class T>
using ClientResult = tl::expected<T, ClientError>;
using ClientFailure = tl::unexpected<ClientError>;

// Transport codes.
inline constexpr std::string_view kUrlInvalid = "url_invalid";  // not http(s)://host[:port][/base]
inline constexpr std::string_view kRequestInvalid = "request_invalid";  // token unfit for a header
inline constexpr std::string_view kConnectFailed = "connect_failed";    // resolve or connect failed
inline constexpr std::string_view kTimeout = "timeout";                 // connect or read deadline
inline constexpr std::string_view kTlsFailed = "tls_failed";            // handshake or certificate
inline constexpr std::string_view kConnectionLost = "connection_lost";  // closed or reset mid-way
// Protocol codes.
inline constexpr std::string_view kResponseMalformed = "response_malformed";  // wrong shape
inline constexpr std::string_view kResponseTooLarge = "response_too_large";   // above the limit
inline constexpr std::string_view kStreamTruncated = "stream_truncated";      // ended before [DONE]
// The http code when an error response carries no OpenAI error body.
inline constexpr std::string_view kHttpError = "http_error";

// "transport", "http" or "protocol".
std::string_view to_string(ClientError::Kind kind);

ClientError transport_error(std::string_view code, std::string message);
ClientError protocol_error(std::string_view code, std::string message);

// The error for an HTTP response with status `status` and body `body`: code and message from
// the OpenAI error body when there is one, else kHttpError and a message naming the status.
ClientError http_error(int status, std::string_view body);

// The error of an OpenAI error body `{"error":{"message","type","code"}}` in `json`, kind http
// with `status`; nullopt when `json` is not such a body (not JSON, no "error" object).
std::optional<ClientError> error_from_body(std::string_view json, int status);

}  // namespace dynaseal::client
