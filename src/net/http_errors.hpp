// The one place where an Error becomes an HTTP status and an OpenAI-shaped error body
// ({"error":{"message","type","param"?,"code"}}). Messages stay coarse (describe()); details go to
// logs.
#pragma once

#include <string>
#include <string_view>

#include "core/error.hpp"
#include "net/http_server.hpp"

namespace dynaseal::net {

struct HttpError {
  http::status status;
  std::string_view type;  // OpenAI error type, e.g. "authentication_error"
};

HttpError http_error(Error e);

// {"error":{"message","type","param"?,"code"}}. A non-empty `param` names the part of the
// request at fault (OpenAI's "param"), and is appended to the message.
std::string error_body(Error e, std::string_view param = {});

// The error response for `req`: status, JSON body, and WWW-Authenticate on 401s.
Response error_response(const Request& req, Error e, std::string_view param = {});

}  // namespace dynaseal::net
