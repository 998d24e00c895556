#include "core/sse.hpp"

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace dynaseal {

// Readable failures: gtest would otherwise print the struct's bytes.
void PrintTo(const SseEvent& e, std::ostream* os) {
  *os << "{event=\"" << e.event << "\" data=\"" << e.data << "\" id=";
  *os << (e.id ? '"' + *e.id + '"' : "none") << " retry=";
  *os << (e.retry ? std::to_string(*e.retry) : "none") << '}';
}

namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";

std::string with_bom(std::string_view text) { return std::string(kBom).append(text); }

// Everything a parser reported for a stream, in a form that compares as a whole.
struct Parsed {
  std::vector<SseEvent> events;
  std::vector<std::string> comments;
  std::string order;  // 'e' per event and 'c' per comment, in the order they were reported
  bool ok = true;     // every feed returned true
  bool boundary = true;

  bool operator==(const Parsed&) const = default;
};

void PrintTo(const Parsed& p, std::ostream* os) {
  *os << "order=" << p.order << " ok=" << p.ok << " boundary=" << p.boundary << " events=";
  for (const SseEvent& e : p.events) PrintTo(e, os);
}

Parsed parse_chunks(const std::vector<std::string_view>& chunks,
                    std::size_t max_event_bytes = std::size_t{1} << 20) {
  SseParser parser(max_event_bytes);
  Parsed out;
  for (std::string_view chunk : chunks) {
    const bool ok = parser.feed(
        chunk,
        [&](const SseEvent& e) {
          out.events.push_back(e);
          out.order += 'e';
        },
        [&](std::string_view text) {
          out.comments.emplace_back(text);
          out.order += 'c';
        });
    out.ok = out.ok && ok;
  }
  out.boundary = parser.at_boundary();
  return out;
}

Parsed parse(std::string_view stream) { return parse_chunks({stream}); }

std::vector<std::string> data_of(const Parsed& p) {
  std::vector<std::string> data;
  for (const SseEvent& e : p.events) data.push_back(e.data);
  return data;
}

SseEvent data_event(std::string data) { return SseEvent{.data = std::move(data)}; }

// A stream that exercises every rule at once: BOM, all three line endings, comments, every
// field, multi-line data, an undispatched block and unknown fields.
constexpr std::string_view kRichStream =
    "\xEF\xBB\xBF: hello\r\n"
    "data: one\n\n"
    "event: add\r\nid: 7\rretry: 250\ndata:two\r\ndata:  three\r\r"
    "event: lost\n\n"
    "foo: bar\ndata\n\n"
    ":keep-alive\r"
    "data: {\"id\":\"x\",\"choices\":[]}\r\n\r\n"
    "data: [DONE]\n\n";

TEST(SseParser, ParsesOneEvent) {
  const Parsed p = parse("data: hello\n\n");
  ASSERT_EQ(p.events.size(), 1u);
  EXPECT_EQ(p.events[0], data_event("hello"));
  EXPECT_TRUE(p.ok);
  EXPECT_TRUE(p.boundary);
}

TEST(SseParser, ParsesSeveralEventsFromOneFeed) {
  const Parsed p = parse("data: a\n\ndata: b\n\ndata: c\n\n");
  EXPECT_EQ(data_of(p), (std::vector<std::string>{"a", "b", "c"}));
}

TEST(SseParser, ParsesAnOpenAiStream) {
  const std::vector<std::string> chunks = {
      R"({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})",
      R"({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"}}]})",
      R"({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})",
      R"({"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}})",
      "[DONE]"};
  std::string stream;
  for (const std::string& c : chunks) stream += "data: " + c + "\n\n";

  const Parsed p = parse(stream);
  EXPECT_EQ(data_of(p), chunks);
  EXPECT_EQ(p.order, "eeeee");
  EXPECT_TRUE(p.boundary);
}

TEST(SseParser, GivesTheSameResultForEverySplitIntoTwoFeeds) {
  const Parsed whole = parse(kRichStream);
  ASSERT_EQ(whole.events.size(), 5u);
  for (std::size_t i = 0; i <= kRichStream.size(); ++i) {
    EXPECT_EQ(parse_chunks({kRichStream.substr(0, i), kRichStream.substr(i)}), whole) << i;
  }
}

TEST(SseParser, GivesTheSameResultForEverySplitIntoThreeFeeds) {
  const Parsed whole = parse(kRichStream);
  for (std::size_t i = 0; i <= kRichStream.size(); ++i) {
    for (std::size_t j = i; j <= kRichStream.size(); ++j) {
      const std::vector<std::string_view> chunks = {
          kRichStream.substr(0, i), kRichStream.substr(i, j - i), kRichStream.substr(j)};
      ASSERT_EQ(parse_chunks(chunks), whole) << i << ' ' << j;
    }
  }
}

TEST(SseParser, GivesTheSameResultByteByByte) {
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < kRichStream.size(); ++i) bytes.push_back(kRichStream.substr(i, 1));
  EXPECT_EQ(parse_chunks(bytes), parse(kRichStream));
}

TEST(SseParser, ReadsEveryRuleOfTheRichStream) {
  const Parsed p = parse(kRichStream);
  ASSERT_EQ(p.events.size(), 5u);
  EXPECT_EQ(p.events[0], data_event("one"));
  EXPECT_EQ(p.events[1], (SseEvent{"add", "two\n three", "7", 250}));
  EXPECT_EQ(p.events[2], (SseEvent{"", "", "7", 250}));  // "event: lost" had no data
  EXPECT_EQ(p.events[3], (SseEvent{"", R"({"id":"x","choices":[]})", "7", 250}));
  EXPECT_EQ(p.events[4], (SseEvent{"", "[DONE]", "7", 250}));
  EXPECT_EQ(p.comments, (std::vector<std::string>{"hello", "keep-alive"}));
  EXPECT_EQ(p.order, "ceeecee");
}

TEST(SseParser, AcceptsLfCrlfAndCrLineEndings) {
  const std::vector<std::string> expected = {"a\nb", "c"};
  EXPECT_EQ(data_of(parse("data: a\ndata: b\n\ndata: c\n\n")), expected);
  EXPECT_EQ(data_of(parse("data: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n")), expected);
  EXPECT_EQ(data_of(parse("data: a\rdata: b\r\rdata: c\r\r")), expected);
  EXPECT_EQ(data_of(parse("data: a\r\ndata: b\r\n\rdata: c\n\r\n")), expected);
}

TEST(SseParser, TreatsACrlfSplitAcrossFeedsAsOneLineEnding) {
  // Read as two endings, the LF would be a blank line and dispatch "a" alone.
  const Parsed p = parse_chunks({"data: a\r", "\ndata: b\r", "\n\r", "\n"});
  EXPECT_EQ(data_of(p), (std::vector<std::string>{"a\nb"}));
  EXPECT_TRUE(p.boundary);
}

TEST(SseParser, EndsALineAtACrFollowedByAnotherFeed) {
  const Parsed p = parse_chunks({"data: a\r", "data: b\r", "\r"});
  EXPECT_EQ(data_of(p), (std::vector<std::string>{"a\nb"}));
}

TEST(SseParser, SkipsAByteOrderMarkAtTheStart) {
  EXPECT_EQ(data_of(parse(with_bom("data: x\n\n"))), (std::vector<std::string>{"x"}));
  EXPECT_EQ(data_of(parse_chunks({"\xEF", "\xBB", "\xBF", "data: x\n\n"})),
            (std::vector<std::string>{"x"}));
}

TEST(SseParser, SkipsOnlyTheFirstByteOrderMark) {
  // A later BOM is part of the field name, which then is not "data".
  EXPECT_TRUE(parse(with_bom(with_bom("data: x\n\n"))).events.empty());
  EXPECT_EQ(data_of(parse("data: a\n\n" + with_bom("data: b\n\n"))),
            (std::vector<std::string>{"a"}));
}

TEST(SseParser, KeepsTheBytesOfAnIncompleteByteOrderMark) {
  // Were the two bytes dropped, these lines would read "data: x" and ":comment".
  const std::string stream = std::string("\xEF\xBB").append("data: x\n\n");
  EXPECT_TRUE(parse(stream).events.empty());
  EXPECT_TRUE(parse_chunks({"\xEF", "\xBB", "data: x\n\n"}).events.empty());
  EXPECT_TRUE(parse_chunks({"\xEF", ":comment\n"}).comments.empty());
}

TEST(SseParser, ReportsCommentsInStreamOrderWithoutDispatchingThem) {
  const Parsed p = parse(": keep-alive\n\ndata: x\n: inside\n\n:\n:no space\n:  two spaces\n");
  EXPECT_EQ(data_of(p), (std::vector<std::string>{"x"}));
  EXPECT_EQ(p.comments,
            (std::vector<std::string>{"keep-alive", "inside", "", "no space", " two spaces"}));
  EXPECT_EQ(p.order, "cceccc");
  EXPECT_TRUE(p.boundary);
}

TEST(SseParser, RemovesExactlyOneSpaceAfterTheColon) {
  EXPECT_EQ(data_of(parse("data:x\n\ndata: x\n\ndata:  x\n\ndata:x \n\n")),
            (std::vector<std::string>{"x", "x", " x", "x "}));
}

TEST(SseParser, KeepsColonsInTheValue) {
  EXPECT_EQ(data_of(parse("data: a: b:c\n\n")), (std::vector<std::string>{"a: b:c"}));
}

TEST(SseParser, JoinsDataLinesWithLineFeeds) {
  EXPECT_EQ(data_of(parse("data: a\ndata: b\ndata:\ndata: c\n\n")),
            (std::vector<std::string>{"a\nb\n\nc"}));
}

TEST(SseParser, ReadsALineWithoutColonAsAFieldWithEmptyValue) {
  EXPECT_EQ(data_of(parse("data\n\ndata\ndata\n\n")), (std::vector<std::string>{"", "\n"}));
  const Parsed p = parse("event: x\nevent\nid: 1\nid\ndata: d\n\n");
  ASSERT_EQ(p.events.size(), 1u);
  EXPECT_EQ(p.events[0], (SseEvent{"", "d", "", std::nullopt}));
}

TEST(SseParser, ReadsEventIdAndRetryFields) {
  const Parsed p = parse("event: add\nid: 42\nretry: 1500\ndata: x\n\n");
  ASSERT_EQ(p.events.size(), 1u);
  EXPECT_EQ(p.events[0], (SseEvent{"add", "x", "42", 1500}));
}

TEST(SseParser, ResetsTheEventTypeButKeepsIdAndRetryAfterEachEvent) {
  const Parsed p = parse("event: a\nid: 1\nretry: 5\ndata: x\n\ndata: y\n\nid\ndata: z\n\n");
  ASSERT_EQ(p.events.size(), 3u);
  EXPECT_EQ(p.events[0], (SseEvent{"a", "x", "1", 5}));
  EXPECT_EQ(p.events[1], (SseEvent{"", "y", "1", 5}));
  EXPECT_EQ(p.events[2], (SseEvent{"", "z", "", 5}));
}

TEST(SseParser, IgnoresAnInvalidRetry) {
  for (std::string_view bad : {"retry: 10x", "retry: -1", "retry: +1", "retry:", "retry: 1.5",
                               "retry:  5", "retry: 5 ", "retry: 99999999999999999999"}) {
    const Parsed p = parse(std::string(bad) + "\ndata: x\n\n");
    ASSERT_EQ(p.events.size(), 1u) << bad;
    EXPECT_EQ(p.events[0].retry, std::nullopt) << bad;
  }
  EXPECT_EQ(parse("retry: 7\nretry: x\ndata: x\n\n").events.at(0).retry, 7);
}

TEST(SseParser, IgnoresAnIdContainingNul) {
  using namespace std::string_literals;
  const Parsed p = parse("id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n"s);
  ASSERT_EQ(p.events.size(), 2u);
  EXPECT_EQ(p.events[1].id, "1");
  EXPECT_EQ(parse("id: \0\ndata: b\n\n"s).events.at(0).id, std::nullopt);
}

TEST(SseParser, DoesNotDispatchAnEventWithoutData) {
  const Parsed p = parse("event: x\nid: 3\nretry: 9\n\n\n\ndata: y\n\n");
  ASSERT_EQ(p.events.size(), 1u);
  // The type died with its undispatched event; id and retry are stream state and carry on.
  EXPECT_EQ(p.events[0], (SseEvent{"", "y", "3", 9}));
}

TEST(SseParser, DispatchesAnEventWhoseOnlyDataLineIsEmpty) {
  const Parsed p = parse("data:\n\n");
  ASSERT_EQ(p.events.size(), 1u);
  EXPECT_EQ(p.events[0].data, "");
}

TEST(SseParser, IgnoresUnknownFields) {
  const Parsed p = parse("foo: bar\nData: x\nDATA: x\ndata : x\ndata: y\n\n");
  EXPECT_EQ(data_of(p), (std::vector<std::string>{"y"}));
}

TEST(SseParser, DiscardsAnEventThatNoBlankLineClosed) {
  const Parsed p = parse("data: a\n\ndata: b\n");
  EXPECT_EQ(data_of(p), (std::vector<std::string>{"a"}));
  EXPECT_FALSE(p.boundary);
}

TEST(SseParser, KnowsWhenTheStreamEndsAtAnEventBoundary) {
  EXPECT_TRUE(parse("").boundary);
  EXPECT_TRUE(parse("data: a\n\n").boundary);
  EXPECT_TRUE(parse("data: a\r\n\r\n").boundary);
  EXPECT_TRUE(parse("data: a\n\r").boundary);  // a LF may follow, but the event is complete
  EXPECT_TRUE(parse(": ping\n").boundary);
  EXPECT_TRUE(parse("event: x\n\n").boundary);
  EXPECT_TRUE(parse("\xEF\xBB\xBF").boundary);

  EXPECT_FALSE(parse("data: a").boundary);  // mid-line
  EXPECT_FALSE(parse(": pi").boundary);
  EXPECT_FALSE(parse("data: a\n").boundary);  // mid-event
  EXPECT_FALSE(parse("data: a\r").boundary);
  EXPECT_FALSE(parse("data: a\n\ndata: b\ndata: c\n").boundary);
  EXPECT_FALSE(parse("foo\n").boundary);
  EXPECT_FALSE(parse("\xEF\xBB").boundary);  // maybe a BOM, maybe text
}

TEST(SseParser, TracksTheBoundaryAcrossFeeds) {
  SseParser parser;
  auto ignore_event = [](const SseEvent&) {};
  auto ignore_comment = [](std::string_view) {};
  EXPECT_TRUE(parser.at_boundary());
  parser.feed("data: {\"a\":", ignore_event, ignore_comment);
  EXPECT_FALSE(parser.at_boundary());
  parser.feed("1}\n", ignore_event, ignore_comment);
  EXPECT_FALSE(parser.at_boundary());
  parser.feed("\n", ignore_event, ignore_comment);
  EXPECT_TRUE(parser.at_boundary());
}

TEST(SseParser, FailsOnAnOversizeLineAndStaysFailed) {
  // The limit is 16: a line of 16 bytes passes, one of 17 fails, however it is split.
  const std::string_view at_limit = "data: 0123456789\n\n";
  const std::string_view over = "data: 0123456789a\n\n";
  EXPECT_TRUE(parse_chunks({at_limit}, 16).ok);
  for (std::size_t i = 0; i <= over.size(); ++i) {
    const Parsed p = parse_chunks({over.substr(0, i), over.substr(i), "data: x\n\n"}, 16);
    EXPECT_FALSE(p.ok) << i;
    EXPECT_TRUE(p.events.empty()) << i;
    EXPECT_FALSE(p.boundary) << i;
  }
  EXPECT_FALSE(parse_chunks({": 0123456789abcdef\n"}, 16).ok);
  EXPECT_FALSE(parse_chunks({"0123456789abcdefg"}, 16).ok);  // no line end ever comes
}

TEST(SseParser, FailsOnAnOversizeEventAndStaysFailed) {
  // Each "data: 0123456" adds 8 bytes (value and LF) to the event: two fit in 16, three do not.
  const Parsed fits = parse_chunks({"data: 0123456\ndata: 0123456\n\n"}, 16);
  EXPECT_TRUE(fits.ok);
  EXPECT_EQ(data_of(fits), (std::vector<std::string>{"0123456\n0123456"}));

  const Parsed over =
      parse_chunks({"data: a\n\ndata: 0123456\ndata: 0123456\ndata: 0\n\n", "data: b\n\n"}, 16);
  EXPECT_FALSE(over.ok);
  EXPECT_EQ(data_of(over), (std::vector<std::string>{"a"}));  // reported before the failure
  EXPECT_FALSE(over.boundary);
}

TEST(SseParser, StartsAfreshAfterReset) {
  SseParser parser(16);
  std::vector<SseEvent> events;
  auto keep = [&](const SseEvent& e) { events.push_back(e); };
  auto ignore_comment = [](std::string_view) {};
  EXPECT_FALSE(parser.feed("id: 1\ndata: 0123456789abcdef\n", keep, ignore_comment));
  EXPECT_TRUE(parser.failed());
  parser.reset();
  EXPECT_FALSE(parser.failed());
  EXPECT_TRUE(parser.at_boundary());
  EXPECT_TRUE(parser.feed(with_bom("data: x\n\n"), keep, ignore_comment));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], data_event("x"));  // no id: reset forgot it
}

TEST(SseParser, PullsTheSameItemsAsItFeeds) {
  SseParser parser;
  Parsed pulled;
  std::string_view bytes = kRichStream;
  for (auto item = parser.next(bytes); item != SseParser::Item::need_more;
       item = parser.next(bytes)) {
    ASSERT_NE(item, SseParser::Item::failed);
    if (item == SseParser::Item::event) {
      pulled.events.push_back(parser.event());
      pulled.order += 'e';
    } else {
      pulled.comments.emplace_back(parser.comment());
      pulled.order += 'c';
    }
  }
  EXPECT_TRUE(bytes.empty());
  pulled.boundary = parser.at_boundary();
  EXPECT_EQ(pulled, parse(kRichStream));
}

TEST(SseWriter, WritesEventsInCanonicalForm) {
  std::string out = "prefix|";
  sse_append_event(out, SseEvent{"add", "a\nb", "7", 1500});
  sse_append_event(out, data_event(""));
  EXPECT_EQ(out, "prefix|event: add\nid: 7\nretry: 1500\ndata: a\ndata: b\n\ndata: \n\n");
}

TEST(SseWriter, WritesDataAndComments) {
  std::string out;
  sse_append_data(out, R"({"choices":[]})");
  sse_append_comment(out, "keep-alive");
  sse_append_data(out, "[DONE]");
  EXPECT_EQ(out, "data: {\"choices\":[]}\n\n: keep-alive\ndata: [DONE]\n\n");
}

TEST(SseWriter, RoundTripsThroughTheParser) {
  const std::vector<SseEvent> events = {
      data_event("plain"),
      data_event(""),
      data_event("\n"),
      data_event("a\nb\n\nc\n"),
      data_event(" leading space"),
      data_event("colon: inside"),
      data_event(": looks like a comment"),
      data_event("data: looks like a field"),
      SseEvent{"update", "x", "1", std::nullopt},
      SseEvent{"", "y", "1", 3000},
      SseEvent{"", "z", "", 3000},
  };
  std::string stream;
  for (const SseEvent& e : events) sse_append_event(stream, e);
  sse_append_comment(stream, "bye");

  const Parsed p = parse(stream);
  EXPECT_EQ(p.events, events);
  EXPECT_EQ(p.comments, (std::vector<std::string>{"bye"}));
  EXPECT_TRUE(p.boundary);
}

TEST(SseWriter, TurnsEveryLineBreakInDataIntoADataLine) {
  // A CR must not end the data and let the rest be read as a field.
  std::string out;
  sse_append_data(out, "x\rid: evil\r\nevent: bad\n\rretry: 1");
  const Parsed p = parse(out);
  ASSERT_EQ(p.events.size(), 1u);
  EXPECT_EQ(p.events[0], data_event("x\nid: evil\nevent: bad\n\nretry: 1"));
}

TEST(SseWriter, LeavesOutAnEventTypeOrIdWithALineBreak) {
  std::string out;
  sse_append_event(out, SseEvent{"a\ndata: injected", "x", "1\rretry: 1", std::nullopt});
  EXPECT_EQ(out, "data: x\n\n");
}

TEST(SseWriter, WritesACommentPerLine) {
  std::string out;
  sse_append_comment(out, "one\r\ntwo\rthree");
  EXPECT_EQ(out, ": one\n: two\n: three\n");
  EXPECT_EQ(parse(out).comments, (std::vector<std::string>{"one", "two", "three"}));
}

}  // namespace
}  // namespace dynaseal
