// The one error model of Dynaseal.
//
// Every function that can fail on data returns `Result<T>`; the error is one `Error` value whose
// text (`to_string`) is a stable code that clients, scripts and tests match on. The codes of the
// LLM server's HTTP contract (DESIGN §4) are listed first, verbatim; internal codes follow and
// are turned into one of those by whoever has the context (a JSON syntax error in a token's
// header is `token_malformed`, in a request body `body_malformed`).
#pragma once

#include <string_view>

#include <tl/expected.hpp>

namespace dynaseal {

enum class Error {
  // 400
  body_malformed,       // request body is not the JSON object the endpoint expects
  model_missing,        // request body names no model
  member_not_allowed,   // the body carries a member the server does not forward (named)
  content_not_allowed,  // a content part or modality the server does not forward (named)
  // 401
  token_missing,        // no bearer token in the request
  token_malformed,      // not a compact JWS of our shape, or its header is wrong
  token_too_large,      // token longer than the 8 KiB limit
  alg_not_allowed,      // header alg is not EdDSA/Ed25519
  issuer_unknown,       // iss is not a registered backend
  kid_unknown,          // kid is not a key of that backend
  signature_invalid,    // Ed25519 signature does not verify
  claims_malformed,     // payload is not a valid claim set
  audience_mismatch,    // aud does not name this server
  token_expired,        // now is past exp (plus leeway)
  token_not_yet_valid,  // now is before nbf or iat (minus leeway)
  ttl_too_long,         // exp - iat exceeds the server's max key TTL
  uses_exhausted,       // every use of the key has been consumed
  token_revoked,        // the key's jti or sub was revoked
  // 403
  model_not_allowed,     // model not in dks.models
  max_tokens_exceeded,   // requested max tokens above dks.max_tokens
  n_not_allowed,         // n > 1 requested
  stream_not_allowed,    // stream requested but dks.stream is false
  endpoint_not_allowed,  // endpoint not in dks.endpoints
  // 402
  budget_exhausted,  // the key's token budget is spent
  // 413
  body_too_large,  // request body above max_body_bytes
  // 429
  rate_limited,  // too many requests
  // 502 / 504
  upstream_error,    // the engine failed or answered garbage
  upstream_timeout,  // the engine did not answer in time
  // 503
  store_unavailable,  // uses cannot be counted, so nothing is served
  // Beyond DESIGN §4, for the rest of the HTTP surface (admin API, unknown paths).
  not_found,           // 404: no such endpoint or resource
  method_not_allowed,  // 405: the endpoint exists, not with this method
  model_not_found,     // 404: the key allows the model but no upstream serves it
  admin_unauthorized,  // 401: missing or wrong admin token
  conflict,            // 409: the resource exists already
  // The backend's HTTP surface (DESIGN §6): minting refusals and callback checks.
  user_unknown,       // 401: the user token names no user
  uses_not_allowed,   // 403: more uses per key than the user's plan allows
  quota_exhausted,    // 402: the user's daily token quota is spent
  credit_exhausted,   // 402: the user's prepaid credit is spent
  webhook_malformed,  // 400: callback headers or body are not a usage event of ours
  timestamp_stale,    // 401: callback timestamp more than the tolerance away from now
  server_unknown,     // 401: callback from a server this backend has not pinned

  // Internal codes, mapped by the caller to one of the above or reported by tools.
  json_syntax,            // not JSON: syntax, invalid UTF-8, lone surrogate, trailing data
  json_duplicate_member,  // an object names the same member twice
  json_too_deep,          // nesting deeper than the limit
  json_too_large,         // input longer than the limit
  json_number_invalid,    // a number outside what the reader accepts (range, fraction)
  base64_invalid,         // not canonical unpadded base64url
  key_invalid,            // a JWK or JWKS that is not a valid Ed25519 key of ours
  key_file_unsafe,        // a private key file readable by group or others
  io_error,               // a file could not be read or written
  internal,               // a bug or a library failure that should not happen
};

template <class T>
using Result = tl::expected<T, Error>;

using Unexpected = tl::unexpected<Error>;

// The stable code for an error, e.g. "token_expired". Never empty.
std::string_view to_string(Error e);

// One coarse human sentence for an error, safe to show to any client ("the key has expired").
std::string_view describe(Error e);

}  // namespace dynaseal
