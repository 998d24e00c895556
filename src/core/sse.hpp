// Server-Sent Events (text/event-stream): an incremental parser and a writer. No I/O.
//
// The parser follows the WHATWG HTML "event stream interpretation" rules. Lines end in CRLF, LF
// or CR, and a CRLF split across two feeds is one line ending. One UTF-8 BOM at the very start
// of the stream is skipped, even when it arrives split. A line `name:value` sets a field; one
// space after the colon is removed; a line without a colon is a field with an empty value. The
// fields are `event`, `data` (several data lines are joined with LF), `id` (ignored when it
// contains NUL) and `retry` (ignored unless it is only ASCII digits); other names are ignored,
// and names are case-sensitive. A blank line dispatches the event, unless the event has no data
// line at all (`data:` alone is a data line, so it dispatches an event with empty data). A line
// that starts with ':' is a comment: the spec ignores it, this parser reports it, with one space
// after the colon removed. At the end of the stream, an event that no blank line closed is
// discarded (spec); at_boundary() tells the caller whether that happened.
//
// Differences from a browser: bytes are passed through as they are, not decoded (invalid UTF-8
// is not replaced by U+FFFD; the JSON reader of the data judges it); the event type is "" where
// a browser says "message".
//
// Limits: a line longer than max_event_bytes, or one event whose data lines (each counted with
// its LF) add up to more than max_event_bytes, fails the parser. It then stays failed until
// reset(), so a hostile or broken upstream cannot make the gateway buffer without bound. The
// caller turns the failure into Error::upstream_error. Memory stays within a small multiple of
// max_event_bytes, and buffers are reused: after the first events, parsing does not allocate.
//
//   SseParser parser;
//   for (std::string_view chunk : chunks_from_upstream) {
//     bool ok = parser.feed(
//         chunk, [&](const SseEvent& e) { relay(e.data); },
//         [&](std::string_view comment) { /* keep-alive */ });
//     if (!ok) return Unexpected(Error::upstream_error);
//   }
//   if (!parser.at_boundary()) return Unexpected(Error::upstream_error);  // truncated
//
// Coroutine code that must co_await between events uses the pull form instead:
//
//   for (auto item = parser.next(chunk); item != SseParser::Item::need_more;
//        item = parser.next(chunk)) { ... parser.event() / parser.comment() ... }
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dynaseal {

// One dispatched event. `event` and `data` belong to this event alone; `id` and `retry` are
// stream state as the spec defines it (the last event ID and the reconnection time in
// milliseconds as of this event), absent until the stream first sets them. An `id:` line with
// an empty value sets id to "".
struct SseEvent {
  std::string event{};  // the event type; "" is the default type ("message")
  std::string data{};   // data lines joined with LF; never contains CR
  std::optional<std::string> id{};
  std::optional<std::int64_t> retry{};

  bool operator==(const SseEvent&) const = default;
};

class SseParser {
 public:
  // What next() stopped at.
  enum class Item {
    need_more,  // every byte was used without completing an event or comment
    event,      // an event was dispatched; read it with event()
    comment,    // a comment line was read; read it with comment()
    failed,     // a limit was exceeded, now or before
  };

  explicit SseParser(std::size_t max_event_bytes = std::size_t{1} << 20);

  // Parses `bytes` (any piece of the stream), calling on_event(const SseEvent&) for each event
  // and on_comment(std::string_view) for each comment, in stream order. The arguments are only
  // valid during the call, and the callbacks must not call back into the parser. Returns false,
  // now and on every later call, when a limit is exceeded; events before that point were
  // reported.
  template <class OnEvent, class OnComment>
  bool feed(std::string_view bytes, OnEvent&& on_event, OnComment&& on_comment) {
    for (;;) {
      switch (next(bytes)) {
        case Item::need_more: return true;
        case Item::event: on_event(event_); break;
        case Item::comment: on_comment(comment_); break;
        case Item::failed: return false;
      }
    }
  }

  // The pull form of feed: consumes bytes from the front of `bytes` up to the line that
  // completes an event or a comment, and says which. Call again with the rest until need_more.
  Item next(std::string_view& bytes);

  // The last event dispatched by next(); valid until the next call to next, feed or reset.
  const SseEvent& event() const { return event_; }
  // The last comment read by next(); a view into the caller's bytes or the parser's own
  // buffer, valid (if the caller's bytes still are) until the next call to next, feed or reset.
  std::string_view comment() const { return comment_; }

  bool failed() const { return failed_; }

  // True when the bytes so far end exactly at an event boundary: no partial line, and no
  // field line waiting for the blank line that ends its event (comments do not count). True
  // before the first byte; false once failed. At the end of the stream, false means truncated.
  bool at_boundary() const;

  // Forgets everything, including failure, the last event ID and the BOM check: a new stream.
  void reset();

 private:
  void skip_bom(std::string_view& bytes);
  Item take_line(std::string_view line);
  Item take_field(std::string_view name, std::string_view value);
  Item append_data(std::string_view value);
  Item dispatch();
  Item fail();

  std::size_t max_;
  SseEvent event_;            // the event being built; returned by reference when dispatched
  std::string line_;          // a partial line carried over from earlier bytes
  std::string held_line_;     // the last line completed from line_, which views may point into
  std::string_view comment_;  // into the caller's bytes or held_line_
  std::uint8_t bom_matched_ = 0;
  bool at_start_ = true;     // no byte after a possible BOM seen yet
  bool skip_lf_ = false;     // the last line ended in CR, so a LF next is part of that ending
  bool block_open_ = false;  // a field line was read since the last blank line
  bool dispatched_ = false;  // event_ was handed out and is cleared on the next call
  bool failed_ = false;
};

// Appends one event in canonical form: "event: <event>\n" when event is not empty, "id: <id>\n"
// when present, "retry: <ms>\n" when present and not negative, a "data: <line>\n" for every
// line of data (breaking at CRLF, CR and LF, so a reader sees LF), then "\n". SSE cannot carry
// a CR or LF in an event type or id, so such a field is left out rather than let it inject
// lines. Re-parsing the output gives back the event (with CR in data read as LF).
void sse_append_event(std::string& out, const SseEvent& e);

// Appends an event with only data, as "data: <line>\n" per line of data and then "\n".
void sse_append_data(std::string& out, std::string_view data);

// Appends ": <line>\n" for every line of `text`; a reader reports each line as one comment.
void sse_append_comment(std::string& out, std::string_view text);

}  // namespace dynaseal
