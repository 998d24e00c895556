#include "net/http_errors.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace dynaseal::net {

using http::status;

// Exhaustive on purpose: adding an Error without deciding its status fails the build.
HttpError http_error(Error e) {
  switch (e) {
    case Error::body_malformed:
    case Error::model_missing:
    case Error::member_not_allowed:
    case Error::content_not_allowed:
    case Error::webhook_malformed: return {status::bad_request, "invalid_request_error"};
    case Error::token_missing:
    case Error::token_malformed:
    case Error::token_too_large:
    case Error::alg_not_allowed:
    case Error::issuer_unknown:
    case Error::kid_unknown:
    case Error::signature_invalid:
    case Error::claims_malformed:
    case Error::audience_mismatch:
    case Error::token_expired:
    case Error::token_not_yet_valid:
    case Error::ttl_too_long:
    case Error::uses_exhausted:
    case Error::token_revoked:
    case Error::admin_unauthorized:
    case Error::user_unknown:
    case Error::timestamp_stale:
    case Error::server_unknown: return {status::unauthorized, "authentication_error"};
    case Error::model_not_allowed:
    case Error::max_tokens_exceeded:
    case Error::n_not_allowed:
    case Error::stream_not_allowed:
    case Error::endpoint_not_allowed:
    case Error::uses_not_allowed: return {status::forbidden, "permission_error"};
    case Error::budget_exhausted:
    case Error::quota_exhausted:
    case Error::credit_exhausted: return {status::payment_required, "insufficient_quota"};
    case Error::body_too_large: return {status::payload_too_large, "invalid_request_error"};
    case Error::rate_limited: return {status::too_many_requests, "rate_limit_error"};
    case Error::upstream_error: return {status::bad_gateway, "upstream_error"};
    case Error::upstream_timeout: return {status::gateway_timeout, "upstream_error"};
    case Error::store_unavailable: return {status::service_unavailable, "api_error"};
    case Error::not_found:
    case Error::model_not_found: return {status::not_found, "invalid_request_error"};
    case Error::method_not_allowed: return {status::method_not_allowed, "invalid_request_error"};
    case Error::conflict: return {status::conflict, "invalid_request_error"};
    // Internal codes never reach a client on purpose: the caller maps them first. If one
    // does, it is a bug, and it is reported as one.
    case Error::json_syntax:
    case Error::json_duplicate_member:
    case Error::json_too_deep:
    case Error::json_too_large:
    case Error::json_number_invalid:
    case Error::base64_invalid:
    case Error::key_invalid:
    case Error::key_file_unsafe:
    case Error::io_error:
    case Error::internal: return {status::internal_server_error, "api_error"};
  }
  return {status::internal_server_error, "api_error"};
}

std::string error_body(Error e, std::string_view param) {
  const HttpError h = http_error(e);
  const bool internal = h.status == status::internal_server_error;
  boost::json::object error;
  std::string message(describe(internal ? Error::internal : e));
  if (!param.empty() && !internal) {
    message += ": ";
    message += param;
  }
  error["message"] = message;
  error["type"] = h.type;
  if (!param.empty() && !internal) error["param"] = param;
  error["code"] = to_string(internal ? Error::internal : e);
  return boost::json::serialize(boost::json::object{{"error", std::move(error)}});
}

Response error_response(const net::Request& req, Error e, std::string_view param) {
  Response res = make_response(req, http_error(e).status, error_body(e, param));
  if (res.result() == status::unauthorized) {
    res.set(http::field::www_authenticate, "Bearer");
  }
  return res;
}

}  // namespace dynaseal::net
