// The one place where an Error becomes an HTTP status and an OpenAI-shaped error body
// ({"error":{"message","type","code"}}). Messages stay coarse (describe()); details go to logs.
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

std::string error_body(Error e);

// The error response for `req`: status, JSON body, and WWW-Authenticate on 401s.
Response error_response(const Request& req, Error e);

}  // namespace dynaseal::net
