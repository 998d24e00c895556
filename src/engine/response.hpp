// OpenAI response bodies and stream events of the stand-in engine. No I/O.
//
// Bodies are written by hand rather than through a JSON tree: the engine must never be the
// bottleneck of a benchmark, and everything it writes is either a number, a fixed string, a
// model name serialized once at start-up, or generated words (lowercase ASCII, see text.hpp).
// Callers must therefore only pass such words as text; nothing here escapes.
//
// Shapes follow OpenAI exactly: chat.completion / text_completion bodies with usage; streamed
// chat.completion.chunk / text_completion events, `"usage":null` on every chunk and a final
// `"choices":[]` chunk with usage when stream_options.include_usage is set, then [DONE].
//
//   ChunkWriter events(meta);
//   events.role(buffer);                    // chat only
//   events.token(buffer, "hello", true);    // data: {... "delta":{"content":"hello "} ...}
//   events.finish(buffer, "stop");
//   events.usage(buffer, {12, 1});          // only when include_usage
//   ChunkWriter::done(buffer);              // data: [DONE]
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/request.hpp"

namespace dynaseal::engine {

struct ResponseMeta {
  Endpoint endpoint = Endpoint::chat;
  std::uint64_t id = 0;         // "chatcmpl-<id>" / "cmpl-<id>"
  std::int64_t created = 0;     // Unix seconds
  std::string_view model_json;  // the model name as a JSON string, quotes included
  bool include_usage = false;   // streams: usage null on every chunk, then a usage chunk
};

struct Usage {
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
};

// The non-streamed body: chat.completion (message) or text_completion (text) with usage.
std::string completion_body(const ResponseMeta& meta, std::string_view text,
                            std::string_view finish_reason, Usage usage);

// Appends whole SSE events (`data: <json>\n\n`) of one streamed response to a buffer.
class ChunkWriter {
 public:
  explicit ChunkWriter(const ResponseMeta& meta);

  // The first chunk of a chat stream, delta {"role":"assistant","content":""}; nothing for
  // text completions.
  void role(std::string& out) const;
  // One content delta: `word`, followed by a space when `space`.
  void token(std::string& out, std::string_view word, bool space) const;
  // The chunk with an empty delta (chat) or empty text and the finish reason.
  void finish(std::string& out, std::string_view reason) const;
  // The usage chunk: "choices":[] and the usage object.
  void usage(std::string& out, Usage u) const;
  static void done(std::string& out);

 private:
  void open_choice(std::string& out) const;
  void close_choice(std::string& out, std::string_view reason) const;

  Endpoint endpoint_;
  std::string prefix_;     // `data: {"id":...,"model":...,"choices":[`
  std::string_view tail_;  // `]}` or `],"usage":null}`
};

}  // namespace dynaseal::engine
