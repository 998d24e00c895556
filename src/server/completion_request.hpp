// A completion request body as the gateway sees it: the facts the scope check needs, and the
// body to forward upstream once the scope is known.
//
//   auto req = parse_completion_request(body, Endpoint::chat_completions, max_bytes);
//   if (!req) return reject(req.error());                 // body_malformed / model_missing
//   auto cap = check_scope(claims.dks, req->facts(Endpoint::chat_completions));
//   std::string upstream = req->upstream_body(*cap, upstream.cap_fields(endpoint));
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "core/error.hpp"
#include "core/scope.hpp"

namespace dynaseal::server {

struct CompletionRequest {
  boost::json::object body;
  std::string model;
  bool stream = false;
  bool client_wants_usage = false;         // stream_options.include_usage
  std::optional<std::int64_t> max_tokens;  // the larger of max_tokens / max_completion_tokens
  std::int64_t n = 1;
  Endpoint endpoint = Endpoint::chat_completions;

  RequestFacts facts() const;

  // The JSON to send upstream: the client's body without its max_tokens and
  // max_completion_tokens, with `cap` in each of `cap_fields` (the ones the engine reads) and,
  // on streams, stream_options.include_usage forced on so that usage can be counted.
  std::string upstream_body(std::int64_t cap, const std::vector<std::string>& cap_fields);
};

// Strictly parses a body (parse_json: duplicates, depth and size refused). Errors:
// body_malformed (not a JSON object; a known member of the wrong type: model, stream, n,
// max_tokens, max_completion_tokens, stream_options), model_missing (no model or "").
Result<CompletionRequest> parse_completion_request(std::string_view body, Endpoint endpoint,
                                                   std::size_t max_bytes);

// The OpenAI endpoint path for `e`, e.g. "/v1/chat/completions".
std::string_view endpoint_path(Endpoint e);

}  // namespace dynaseal::server
