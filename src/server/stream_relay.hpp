// Relays an upstream engine's SSE stream to the client event by event, without buffering the
// body: each upstream piece goes in, the bytes to send come out.
//
// Each data event must be JSON (or [DONE]); a usage chunk is read and, when the client did not
// ask for usage (stream_options.include_usage), removed again — the whole chunk when it only
// carries usage, its "usage" member otherwise. Comments are passed on (keep-alives).
//
//   StreamRelay relay(request.client_wants_usage);
//   std::string out;
//   if (!relay.feed(piece, out)) { StreamRelay::append_error(out, Error::upstream_error); ... }
//   co_await client.write(out); out.clear();
//   ...; at the end of the body: relay.complete() tells a clean end from a truncated stream.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/sse.hpp"
#include "server/usage.hpp"

namespace dynaseal::server {

class StreamRelay {
 public:
  // `cap`: the completion tokens the engine was allowed. Every chunk with choices but the
  // first (the role) and the last (finish_reason) carries at least one token, so more than
  // cap + 2 of them prove the engine ignored the cap: the relay then ends the stream for the
  // client with [DONE] instead of that chunk, and cut() turns true.
  StreamRelay(bool client_wants_usage, std::int64_t cap);

  // Appends to `out` what the client should receive for these upstream bytes. False when the
  // stream is malformed (SSE framing, oversized event, data that is not JSON); stays false.
  bool feed(std::string_view upstream, std::string& out);

  // True once [DONE] was relayed and nothing is pending: the stream ended cleanly.
  bool complete() const;
  // True once the stream was ended at the cap (see the constructor).
  bool cut() const { return cut_; }
  // The usage the engine reported, if it did.
  const std::optional<TokenUsage>& usage() const { return usage_; }
  // Chunks that carried choices: the completion tokens to count when no usage came.
  std::int64_t content_chunks() const { return content_chunks_; }

  // The error event that ends a broken stream: data: {"error":{...}}.
  static void append_error(std::string& out, Error e);

 private:
  bool relay(const SseEvent& event, std::string& out);

  SseParser parser_;
  bool client_wants_usage_;
  bool done_ = false;
  bool failed_ = false;
  bool cut_ = false;
  std::int64_t max_chunks_;
  std::optional<TokenUsage> usage_;
  std::int64_t content_chunks_ = 0;
};

}  // namespace dynaseal::server
