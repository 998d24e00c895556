// The edge client: get a dynamic key from a business backend, then call the LLM server with it
// (DESIGN §2, steps 1-5). Blocking calls for edge apps (a phone app's worker thread, a CLI).
//
// Every call returns ClientResult: the value, or a ClientError of kind transport (no usable
// exchange), http (the peer refused, with the code of its OpenAI error body) or protocol (the
// peer's answer broke the contract); see client_error.hpp. Nothing throws.
//
// Ownership and threads: a Client holds its options and a TLS context and no connection; each
// call opens its own connection, runs on the calling thread and closes the connection before
// it returns. Copies share the TLS context. One Client may be used by several threads at once.
// A streaming call invokes `on_delta` on the calling thread, before the call returns.
//
//   auto client = Client::create({.connect_timeout = std::chrono::seconds(5)});
//   if (!client) return fail(client.error());
//   auto grant = client->request_key("https://api.example.com", user_token, {.model = "demo"});
//   if (!grant) return fail(grant.error());                // e.g. 402 quota_exhausted
//   ChatRequest chat{.model = "demo", .messages = {{"user", "hello"}}, .stream = true};
//   auto answer = client->chat(*grant, chat, [](std::string_view delta) { show(delta); });
//   if (!answer) return fail(answer.error());              // e.g. 401 uses_exhausted
//   log(answer->event_id, answer->usage);
#pragma once

#include <string_view>

#include "client/chat_stream.hpp"
#include "client/client_error.hpp"
#include "client/messages.hpp"
#include "client/transport.hpp"

namespace dynaseal::client {

class Client {
 public:
  // Fails (tls_failed) only when options.ca_file cannot be loaded.
  static ClientResult<Client> create(ClientOptions options = {});

  // POST {backend_url}/v1/keys with `Authorization: Bearer <user_token>`. The grant is checked
  // strictly (see messages.hpp), including that server_url is an http(s) URL. Refusals are
  // kind http with the backend's code (401 unknown user, 403 outside the plan, 402 quota or
  // balance exhausted, 429 mint rate).
  ClientResult<KeyGrant> request_key(std::string_view backend_url, std::string_view user_token,
                                     const KeyRequest& request) const;

  // POST {server_url}/v1/chat/completions with `Authorization: Bearer <key>`.
  //   - request.stream false: reads and parses the whole chat.completion.
  //   - request.stream true: reads the event stream piece by piece and calls on_delta with each
  //     content delta as it arrives; returns once [DONE] is read. An error event in the stream
  //     ends the call with that error (kind http, status 200); a stream that ends without
  //     [DONE] is stream_truncated. An exception thrown by on_delta propagates to the caller
  //     (the connection is closed).
  // Answers above options.max_response_bytes, whole or streamed, are response_too_large. The
  // result carries the x-dynaseal-event-id header, and the usage when the server reported it
  // (streamed requests ask for it).
  ClientResult<ChatResult> chat(std::string_view server_url, std::string_view key,
                                const ChatRequest& request,
                                const DeltaCallback& on_delta = {}) const;
  // The same, at the server and with the key of a grant.
  ClientResult<ChatResult> chat(const KeyGrant& grant, const ChatRequest& request,
                                const DeltaCallback& on_delta = {}) const {
    return chat(grant.server_url, grant.key, request, on_delta);
  }

  const ClientOptions& options() const { return transport_.options(); }

 private:
  explicit Client(HttpTransport transport) : transport_(std::move(transport)) {}

  ClientResult<ChatResult> read_whole(HttpExchange& ex) const;
  ClientResult<ChatResult> read_stream(HttpExchange& ex, const DeltaCallback& on_delta) const;

  HttpTransport transport_;
};

}  // namespace dynaseal::client
