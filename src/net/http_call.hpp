// One blocking HTTP exchange, for command-line tools: the backend's registration and key
// rotation through a server's admin API, the server's own outbox commands. Each call runs the
// coroutine HTTP client (net/http_client.hpp) in its own io_context on the calling thread, so a
// CLI needs no event loop of its own. http:// and https:// (certificates verified against the
// system's CAs).
//
//   auto reply = http_call("https://llm.example", http::verb::get, "/.well-known/dynaseal");
//   if (!reply) fail(reply.error());                 // upstream_error / upstream_timeout
//   if (reply->status != 200) fail(reply->error());  // the server's refusal
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "net/http_server.hpp"

namespace dynaseal::net {

inline constexpr std::size_t kMaxReplyBytes = 1 << 20;

struct HttpReply {
  unsigned status = 0;
  std::string body;

  bool ok() const { return status >= 200 && status < 300; }
  // error.code of an OpenAI error body, or "" when there is none.
  std::string error_code() const;
  // The Error for a refusal: admin_unauthorized (401), not_found (404), conflict (409), else
  // upstream_error.
  Error error() const;
  // "HTTP 409 conflict" for messages.
  std::string describe() const;
};

// One request to `base_url` + `target` (JSON body when not empty; bearer token when given).
// upstream_error when the URL is unusable, the server cannot be reached or the reply is not
// HTTP; upstream_timeout when it does not answer within `timeout`.
Result<HttpReply> http_call(std::string_view base_url, http::verb method, std::string_view target,
                            std::string body = {}, std::string_view bearer = {},
                            std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace dynaseal::net
