#include "core/error.hpp"

namespace dynaseal {

// Exhaustive on purpose: no default, so -Werror=switch flags a new code without text.
std::string_view to_string(Error e) {
  switch (e) {
    case Error::body_malformed: return "body_malformed";
    case Error::model_missing: return "model_missing";
    case Error::member_not_allowed: return "member_not_allowed";
    case Error::content_not_allowed: return "content_not_allowed";
    case Error::token_missing: return "token_missing";
    case Error::token_malformed: return "token_malformed";
    case Error::token_too_large: return "token_too_large";
    case Error::alg_not_allowed: return "alg_not_allowed";
    case Error::issuer_unknown: return "issuer_unknown";
    case Error::kid_unknown: return "kid_unknown";
    case Error::signature_invalid: return "signature_invalid";
    case Error::claims_malformed: return "claims_malformed";
    case Error::audience_mismatch: return "audience_mismatch";
    case Error::token_expired: return "token_expired";
    case Error::token_not_yet_valid: return "token_not_yet_valid";
    case Error::ttl_too_long: return "ttl_too_long";
    case Error::uses_exhausted: return "uses_exhausted";
    case Error::token_revoked: return "token_revoked";
    case Error::model_not_allowed: return "model_not_allowed";
    case Error::max_tokens_exceeded: return "max_tokens_exceeded";
    case Error::n_not_allowed: return "n_not_allowed";
    case Error::stream_not_allowed: return "stream_not_allowed";
    case Error::endpoint_not_allowed: return "endpoint_not_allowed";
    case Error::budget_exhausted: return "budget_exhausted";
    case Error::body_too_large: return "body_too_large";
    case Error::rate_limited: return "rate_limited";
    case Error::upstream_error: return "upstream_error";
    case Error::upstream_timeout: return "upstream_timeout";
    case Error::store_unavailable: return "store_unavailable";
    case Error::not_found: return "not_found";
    case Error::method_not_allowed: return "method_not_allowed";
    case Error::model_not_found: return "model_not_found";
    case Error::admin_unauthorized: return "admin_unauthorized";
    case Error::conflict: return "conflict";
    case Error::user_unknown: return "user_unknown";
    case Error::uses_not_allowed: return "uses_not_allowed";
    case Error::quota_exhausted: return "quota_exhausted";
    case Error::credit_exhausted: return "credit_exhausted";
    case Error::webhook_malformed: return "webhook_malformed";
    case Error::timestamp_stale: return "timestamp_stale";
    case Error::server_unknown: return "server_unknown";
    case Error::json_syntax: return "json_syntax";
    case Error::json_duplicate_member: return "json_duplicate_member";
    case Error::json_too_deep: return "json_too_deep";
    case Error::json_too_large: return "json_too_large";
    case Error::json_number_invalid: return "json_number_invalid";
    case Error::base64_invalid: return "base64_invalid";
    case Error::key_invalid: return "key_invalid";
    case Error::key_file_unsafe: return "key_file_unsafe";
    case Error::io_error: return "io_error";
    case Error::internal: return "internal";
  }
  return "internal";  // unreachable for valid enum values
}

}  // namespace dynaseal

namespace dynaseal {

std::string_view describe(Error e) {
  switch (e) {
    case Error::body_malformed: return "the request body is not valid for this endpoint";
    case Error::model_missing: return "the request names no model";
    case Error::member_not_allowed:
      return "the request carries a member this server does not accept";
    case Error::content_not_allowed:
      return "the request carries content this server does not accept";
    case Error::token_missing: return "no dynamic key was presented";
    case Error::token_malformed: return "the dynamic key is malformed";
    case Error::token_too_large: return "the dynamic key is too large";
    case Error::alg_not_allowed: return "the dynamic key's algorithm is not allowed";
    case Error::issuer_unknown: return "the dynamic key's issuer is not registered";
    case Error::kid_unknown: return "the dynamic key's signing key is not registered";
    case Error::signature_invalid: return "the dynamic key's signature is invalid";
    case Error::claims_malformed: return "the dynamic key's claims are malformed";
    case Error::audience_mismatch: return "the dynamic key is not meant for this server";
    case Error::token_expired: return "the dynamic key has expired";
    case Error::token_not_yet_valid: return "the dynamic key is not valid yet";
    case Error::ttl_too_long: return "the dynamic key's lifetime exceeds the server's limit";
    case Error::uses_exhausted: return "the dynamic key has no uses left";
    case Error::token_revoked: return "the dynamic key has been revoked";
    case Error::model_not_allowed: return "the dynamic key does not allow this model";
    case Error::max_tokens_exceeded: return "max_tokens exceeds the dynamic key's cap";
    case Error::n_not_allowed: return "only n = 1 is allowed";
    case Error::stream_not_allowed: return "the dynamic key does not allow streaming";
    case Error::endpoint_not_allowed: return "the dynamic key does not allow this endpoint";
    case Error::budget_exhausted: return "the dynamic key's token budget is exhausted";
    case Error::body_too_large: return "the request body is too large";
    case Error::rate_limited: return "too many requests";
    case Error::upstream_error: return "the inference engine failed";
    case Error::upstream_timeout: return "the inference engine timed out";
    case Error::store_unavailable: return "usage state is unavailable; nothing is served";
    case Error::not_found: return "not found";
    case Error::method_not_allowed: return "method not allowed";
    case Error::model_not_found: return "no upstream serves this model";
    case Error::admin_unauthorized: return "a valid admin token is required";
    case Error::conflict: return "the resource already exists";
    case Error::user_unknown: return "the user token is not valid";
    case Error::uses_not_allowed: return "the plan does not allow that many uses per key";
    case Error::quota_exhausted: return "the daily token quota is used up";
    case Error::credit_exhausted: return "the prepaid credit is used up";
    case Error::webhook_malformed: return "the callback is not a well-formed usage event";
    case Error::timestamp_stale: return "the callback timestamp is too far from now";
    case Error::server_unknown: return "the callback comes from a server that is not pinned";
    case Error::json_syntax: return "the input is not valid JSON";
    case Error::json_duplicate_member: return "a JSON object repeats a member name";
    case Error::json_too_deep: return "the JSON input is nested too deeply";
    case Error::json_too_large: return "the JSON input is too large";
    case Error::json_number_invalid: return "a JSON number is out of range";
    case Error::base64_invalid: return "the input is not canonical base64url";
    case Error::key_invalid: return "not a valid Ed25519 JWK or JWKS";
    case Error::key_file_unsafe: return "the private key file is readable by group or others";
    case Error::io_error: return "a file could not be read or written";
    case Error::internal: return "internal error";
  }
  return "internal error";  // unreachable for valid enum values
}

}  // namespace dynaseal
