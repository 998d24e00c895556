#include "engine/response.hpp"

#include <charconv>

namespace dynaseal::engine {
namespace {

void append_int(std::string& out, std::int64_t v) {
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v);
  out.append(digits, end);
}

// `{"id":"chatcmpl-7","object":"...","created":...,"model":"demo","choices":[`
void append_head(std::string& out, const ResponseMeta& meta, std::string_view object) {
  out += meta.endpoint == Endpoint::chat ? R"({"id":"chatcmpl-)" : R"({"id":"cmpl-)";
  append_int(out, static_cast<std::int64_t>(meta.id));
  out += R"(","object":")";
  out += object;
  out += R"(","created":)";
  append_int(out, meta.created);
  out += R"(,"model":)";
  out += meta.model_json;
  out += R"(,"choices":[)";
}

void append_usage(std::string& out, Usage u) {
  out += R"("usage":{"prompt_tokens":)";
  append_int(out, u.prompt_tokens);
  out += R"(,"completion_tokens":)";
  append_int(out, u.completion_tokens);
  out += R"(,"total_tokens":)";
  append_int(out, u.prompt_tokens + u.completion_tokens);
  out += '}';
}

void append_finish_reason(std::string& out, std::string_view reason) {
  out += R"(,"finish_reason":)";
  if (reason.empty()) {
    out += "null";
    return;
  }
  out += '"';
  out += reason;
  out += '"';
}

}  // namespace

std::string completion_body(const ResponseMeta& meta, std::string_view text,
                            std::string_view finish_reason, Usage usage) {
  const bool chat = meta.endpoint == Endpoint::chat;
  std::string out;
  out.reserve(320 + meta.model_json.size() + text.size());
  append_head(out, meta, chat ? "chat.completion" : "text_completion");
  if (chat) {
    out += R"({"index":0,"message":{"role":"assistant","content":")";
    out += text;
    out += R"("},"logprobs":null)";
  } else {
    out += R"({"text":")";
    out += text;
    out += R"(","index":0,"logprobs":null)";
  }
  append_finish_reason(out, finish_reason);
  out += "}],";
  append_usage(out, usage);
  out += '}';
  return out;
}

ChunkWriter::ChunkWriter(const ResponseMeta& meta)
    : endpoint_(meta.endpoint), tail_(meta.include_usage ? R"(],"usage":null})" : "]}") {
  prefix_.reserve(128 + meta.model_json.size());
  prefix_ = "data: ";
  append_head(prefix_, meta,
              meta.endpoint == Endpoint::chat ? "chat.completion.chunk" : "text_completion");
}

void ChunkWriter::open_choice(std::string& out) const {
  out += prefix_;
  out += endpoint_ == Endpoint::chat ? R"({"index":0,"delta":{)" : R"({"text":")";
}

void ChunkWriter::close_choice(std::string& out, std::string_view reason) const {
  out += endpoint_ == Endpoint::chat ? R"(},"logprobs":null)" : R"(","index":0,"logprobs":null)";
  append_finish_reason(out, reason);
  out += '}';
  out += tail_;
  out += "\n\n";
}

void ChunkWriter::role(std::string& out) const {
  if (endpoint_ != Endpoint::chat) return;  // text completions have no role
  open_choice(out);
  out += R"("role":"assistant","content":"")";
  close_choice(out, {});
}

void ChunkWriter::token(std::string& out, std::string_view word, bool space) const {
  open_choice(out);
  if (endpoint_ == Endpoint::chat) out += R"("content":")";
  out += word;
  if (space) out += ' ';
  if (endpoint_ == Endpoint::chat) out += '"';
  close_choice(out, {});
}

void ChunkWriter::finish(std::string& out, std::string_view reason) const {
  open_choice(out);
  close_choice(out, reason);
}

void ChunkWriter::usage(std::string& out, Usage u) const {
  out += prefix_;
  out += "],";
  append_usage(out, u);
  out += "}\n\n";
}

void ChunkWriter::done(std::string& out) { out += "data: [DONE]\n\n"; }

}  // namespace dynaseal::engine
