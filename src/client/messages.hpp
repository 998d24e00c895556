// The bodies the edge client sends and reads: the backend's key grant (DESIGN §6) and the
// server's OpenAI chat completions (DESIGN §4). Pure JSON, no I/O.
//
// Every reply is read through parse_json (duplicate members anywhere are rejected) and checked
// member by member: a required member that is absent or of another type makes the whole reply
// response_malformed (a protocol ClientError). Members the client does not know are ignored, so
// peers can add to their replies without breaking older clients.
//
//   std::string body = key_request_json({.model = "demo", .max_tokens = 64});
//   ClientResult<KeyGrant> grant = parse_key_grant(reply_body);
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/client_error.hpp"

namespace dynaseal::client {

// What the client asks the backend for; the user's plan decides what is granted.
struct KeyRequest {
  std::string model;
  std::optional<std::int64_t> max_tokens{};  // cap on completion tokens per request
  std::optional<std::int64_t> uses{};        // requests the key may serve
};

// The backend's answer to POST /v1/keys.
struct KeyGrant {
  std::string key;              // the dynamic key (a JWT): the bearer token for the server
  std::string event_id;         // the key's jti, 16-128 chars of [A-Za-z0-9_-]
  std::int64_t expires_at = 0;  // Unix seconds
  std::string server_id;        // e.g. "llm-1"
  std::string server_url;       // http(s)://host[:port][/base], checked to be one
};

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

struct ChatRequest {
  std::string model;
  std::vector<ChatMessage> messages;
  std::optional<std::int64_t> max_tokens{};
  bool stream = false;  // streamed replies also ask for usage (stream_options.include_usage)
};

struct Usage {
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t total_tokens = 0;

  bool operator==(const Usage&) const = default;
};

struct ChatResult {
  std::string content;        // the whole answer (a stream's deltas, concatenated)
  std::string finish_reason;  // "stop", "length", ...; "" when the peer gave none
  std::optional<Usage> usage;
  std::string event_id;  // the x-dynaseal-event-id response header; "" when absent
};

std::string key_request_json(const KeyRequest& request);
ClientResult<KeyGrant> parse_key_grant(std::string_view body);

std::string chat_request_json(const ChatRequest& request);
// A chat.completion body: choices[0].message.content (null reads as ""), its finish_reason
// and the optional usage. event_id is left empty; it comes from a header.
ClientResult<ChatResult> parse_chat_completion(std::string_view body);

// One `data:` payload of a chat stream (not "[DONE]").
struct ChatChunk {
  std::string delta;                           // choices[0].delta.content; "" when absent
  std::optional<std::string> finish_reason{};  // set on the chunk that ends the choice
  std::optional<Usage> usage{};                // the usage chunk (choices [])
};

// Reads a chat.completion.chunk. An error event {"error":{...}} is returned as its ClientError
// (kind http, `status` as given: the stream's status); anything else that is not a chunk is
// response_malformed.
ClientResult<ChatChunk> parse_chat_chunk(std::string_view data, int status);

}  // namespace dynaseal::client
