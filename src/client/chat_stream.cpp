#include "client/chat_stream.hpp"

namespace dynaseal::client {

ChatStreamReader::ChatStreamReader(int status, DeltaCallback on_delta, std::size_t max_answer_bytes,
                                   std::size_t max_event_bytes)
    : status_(status),
      on_delta_(std::move(on_delta)),
      max_answer_(max_answer_bytes),
      parser_(max_event_bytes) {}

std::optional<ClientError> ChatStreamReader::feed(std::string_view bytes) {
  if (error_ || done_) return error_;
  const bool ok = parser_.feed(
      bytes, [this](const SseEvent& e) { take(e); }, [](std::string_view) {});
  if (!ok && !error_) {
    error_ = protocol_error(kResponseTooLarge, "a stream event is larger than the client accepts");
  }
  return error_;
}

void ChatStreamReader::take(const SseEvent& event) {
  if (error_ || done_) return;  // nothing after [DONE] or an error counts
  if (event.data == "[DONE]") {
    done_ = true;
    return;
  }
  auto chunk = parse_chat_chunk(event.data, status_);
  if (!chunk) {
    error_ = std::move(chunk.error());
    return;
  }
  if (chunk->usage) result_.usage = chunk->usage;
  if (chunk->finish_reason) result_.finish_reason = std::move(*chunk->finish_reason);
  if (chunk->delta.empty()) return;
  if (result_.content.size() + chunk->delta.size() > max_answer_) {
    error_ = protocol_error(kResponseTooLarge, "the answer is larger than the client accepts");
    return;
  }
  result_.content += chunk->delta;
  if (on_delta_) on_delta_(chunk->delta);
}

ClientResult<ChatResult> ChatStreamReader::finish() {
  if (error_) return ClientFailure(*error_);
  if (!done_) {
    return ClientFailure(protocol_error(kStreamTruncated, "the stream ended before [DONE]"));
  }
  return std::move(result_);
}

}  // namespace dynaseal::client
