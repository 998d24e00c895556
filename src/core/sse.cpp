#include "core/sse.hpp"

#include <charconv>
#include <system_error>

namespace dynaseal {
namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";

// Index of the first CR or LF in `bytes`, or bytes.size(). A plain loop on purpose: two memchr
// passes (one per character) would rescan the rest of the chunk for every line of a CR-only
// stream, which is quadratic.
std::size_t find_line_end(std::string_view bytes) {
  std::size_t i = 0;
  while (i < bytes.size() && bytes[i] != '\n' && bytes[i] != '\r') ++i;
  return i;
}

bool has_line_break(std::string_view text) { return find_line_end(text) != text.size(); }

std::string_view without_one_space(std::string_view value) {
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  return value;
}

// The spec's rule: only ASCII digits, base ten. Empty values and values beyond int64 are
// ignored too, as browsers do.
std::optional<std::int64_t> parse_retry(std::string_view value) {
  if (value.empty()) return std::nullopt;
  for (char c : value) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  std::int64_t ms = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
  if (ec != std::errc() || end != value.data() + value.size()) return std::nullopt;
  return ms;
}

// Appends "<prefix><line>\n" for every line of `text`, breaking at CRLF, CR and LF. An empty
// text is one empty line.
void append_lines(std::string& out, std::string_view prefix, std::string_view text) {
  for (;;) {
    const std::size_t end = find_line_end(text);
    out.append(prefix).append(text.substr(0, end)).push_back('\n');
    if (end == text.size()) return;
    const bool crlf = text[end] == '\r' && end + 1 < text.size() && text[end + 1] == '\n';
    text.remove_prefix(end + (crlf ? 2 : 1));
  }
}

}  // namespace

SseParser::SseParser(std::size_t max_event_bytes) : max_(max_event_bytes) {}

SseParser::Item SseParser::next(std::string_view& bytes) {
  if (failed_) return Item::failed;
  if (dispatched_) {
    // Cleared here rather than at dispatch, so that the caller could read event_ meanwhile;
    // clear() keeps the capacity, so the next event reuses it.
    event_.event.clear();
    event_.data.clear();
    dispatched_ = false;
  }
  skip_bom(bytes);
  while (!bytes.empty()) {
    if (skip_lf_) {
      skip_lf_ = false;
      if (bytes.front() == '\n') {
        bytes.remove_prefix(1);
        continue;
      }
    }
    const std::size_t end = find_line_end(bytes);
    // Checked before buffering, and on complete lines too, so the verdict does not depend on
    // how the stream was split into feeds.
    if (line_.size() + end > max_) return fail();
    if (end == bytes.size()) {
      line_.append(bytes);
      bytes = {};
      break;
    }
    skip_lf_ = bytes[end] == '\r';
    std::string_view line = bytes.substr(0, end);
    bytes.remove_prefix(end + 1);
    if (!line_.empty()) {
      // Keep the completed line alive in held_line_ (a comment may view it) and free line_
      // for the next one; swapping keeps both buffers' capacity.
      line_.append(line);
      line_.swap(held_line_);
      line_.clear();
      line = held_line_;
    }
    const Item item = take_line(line);
    if (item != Item::need_more) return item;
  }
  return Item::need_more;
}

bool SseParser::at_boundary() const {
  const bool partial_bom = at_start_ && bom_matched_ > 0;
  return !failed_ && line_.empty() && !block_open_ && !partial_bom;
}

// Clears rather than reassigns, so a pooled parser keeps its buffers' capacity.
void SseParser::reset() {
  event_.event.clear();
  event_.data.clear();
  event_.id.reset();
  event_.retry.reset();
  line_.clear();
  comment_ = {};
  bom_matched_ = 0;
  at_start_ = true;
  skip_lf_ = false;
  block_open_ = false;
  dispatched_ = false;
  failed_ = false;
}

// The BOM may arrive split across feeds, so the bytes matched so far are remembered; when the
// stream turns out not to start with a BOM, those bytes were text and begin the first line.
void SseParser::skip_bom(std::string_view& bytes) {
  if (!at_start_) return;
  while (bom_matched_ < kBom.size() && !bytes.empty() && bytes.front() == kBom[bom_matched_]) {
    ++bom_matched_;
    bytes.remove_prefix(1);
  }
  if (bom_matched_ == kBom.size()) {
    at_start_ = false;
    return;
  }
  if (bytes.empty()) return;  // undecided until more bytes come
  line_.assign(kBom.substr(0, bom_matched_));
  at_start_ = false;
}

SseParser::Item SseParser::take_line(std::string_view line) {
  if (line.empty()) return dispatch();
  if (line.front() == ':') {
    comment_ = without_one_space(line.substr(1));
    return Item::comment;
  }
  block_open_ = true;
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return take_field(line, {});
  return take_field(line.substr(0, colon), without_one_space(line.substr(colon + 1)));
}

SseParser::Item SseParser::take_field(std::string_view name, std::string_view value) {
  if (name == "data") return append_data(value);
  if (name == "event") {
    event_.event.assign(value);
  } else if (name == "id") {
    if (value.find('\0') != std::string_view::npos) return Item::need_more;
    if (!event_.id) event_.id.emplace();
    event_.id->assign(value);
  } else if (name == "retry") {
    if (auto ms = parse_retry(value)) event_.retry = ms;
  }
  return Item::need_more;
}

// The spec's data buffer: each value followed by LF; dispatch() drops the last LF. The buffer
// never exceeds max_, so the subtraction cannot wrap.
SseParser::Item SseParser::append_data(std::string_view value) {
  if (value.size() >= max_ - event_.data.size()) return fail();
  event_.data.append(value).push_back('\n');
  return Item::need_more;
}

SseParser::Item SseParser::dispatch() {
  block_open_ = false;
  if (event_.data.empty()) {
    event_.event.clear();
    return Item::need_more;
  }
  event_.data.pop_back();
  dispatched_ = true;
  return Item::event;
}

SseParser::Item SseParser::fail() {
  failed_ = true;
  return Item::failed;
}

void sse_append_event(std::string& out, const SseEvent& e) {
  if (!e.event.empty() && !has_line_break(e.event))
    out.append("event: ").append(e.event).push_back('\n');
  if (e.id && !has_line_break(*e.id)) out.append("id: ").append(*e.id).push_back('\n');
  if (e.retry && *e.retry >= 0) {
    char digits[24];
    const char* end = std::to_chars(digits, digits + sizeof digits, *e.retry).ptr;
    out.append("retry: ").append(digits, end - digits).push_back('\n');
  }
  sse_append_data(out, e.data);
}

void sse_append_data(std::string& out, std::string_view data) {
  append_lines(out, "data: ", data);
  out.push_back('\n');
}

void sse_append_comment(std::string& out, std::string_view text) { append_lines(out, ": ", text); }

}  // namespace dynaseal
