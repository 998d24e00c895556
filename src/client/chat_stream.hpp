// Reads a streamed chat completion (text/event-stream of chat.completion.chunk events ending in
// `data: [DONE]`) piece by piece, as the bytes arrive. No I/O: the caller feeds the body.
//
// Each non-empty content delta goes to the callback at once, in stream order, and is appended
// to the result. Comments are skipped, and so is everything after [DONE]. The first event that
// is an error ({"error":{...}}, which the server sends before it ends a stream that broke) or
// that is not a chunk ends the reading: feed() returns the error and the caller stops. Memory
// stays bounded: one event at most max_event_bytes (SseParser), the answer at most
// max_answer_bytes (response_too_large beyond either).
//
//   ChatStreamReader reader(200, [](std::string_view d) { std::cout << d << std::flush; });
//   while (auto piece = next_piece_of_body()) {
//     if (auto e = reader.feed(*piece)) return fail(*e);
//     if (reader.done()) break;
//   }
//   ClientResult<ChatResult> result = reader.finish();   // stream_truncated without [DONE]
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string_view>

#include "client/client_error.hpp"
#include "client/messages.hpp"
#include "core/sse.hpp"

namespace dynaseal::client {

// Called with each piece of the answer as it arrives; never with an empty piece.
using DeltaCallback = std::function<void(std::string_view delta)>;

class ChatStreamReader {
 public:
  // `status` is the HTTP status of the stream (for errors reported inside it); `on_delta` may
  // be empty. An exception thrown by on_delta propagates out of feed().
  ChatStreamReader(int status, DeltaCallback on_delta, std::size_t max_answer_bytes = 16 << 20,
                   std::size_t max_event_bytes = 1 << 20);

  // Parses the next piece of the body. Returns the error that ends the stream, if any; after
  // an error every later call returns it again.
  std::optional<ClientError> feed(std::string_view bytes);

  // True once `data: [DONE]` was read.
  bool done() const { return done_; }

  // The answer so far, and its ending: the result when [DONE] was read, else stream_truncated
  // (or the error feed returned).
  ClientResult<ChatResult> finish();

 private:
  void take(const SseEvent& event);

  int status_;
  DeltaCallback on_delta_;
  std::size_t max_answer_;
  SseParser parser_;
  ChatResult result_;
  std::optional<ClientError> error_;
  bool done_ = false;
};

}  // namespace dynaseal::client
