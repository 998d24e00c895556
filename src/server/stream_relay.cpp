#include "server/stream_relay.hpp"

#include <limits>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/serialize.hpp>

#include "core/json.hpp"
#include "net/http_errors.hpp"

namespace dynaseal::server {

namespace json = boost::json;

StreamRelay::StreamRelay(bool client_wants_usage, std::int64_t cap)
    : client_wants_usage_(client_wants_usage),
      max_chunks_(cap > std::numeric_limits<std::int64_t>::max() - 2 ? cap : cap + 2) {}

bool StreamRelay::feed(std::string_view upstream, std::string& out) {
  if (failed_) return false;
  const bool ok = parser_.feed(
      upstream, [&](const SseEvent& e) { failed_ = failed_ || !relay(e, out); },
      [&](std::string_view comment) { sse_append_comment(out, comment); });
  failed_ = failed_ || !ok;
  return !failed_;
}

bool StreamRelay::relay(const SseEvent& event, std::string& out) {
  if (done_) return true;  // nothing after [DONE] is relayed
  if (event.data == "[DONE]") {
    done_ = true;
    sse_append_data(out, event.data);
    return true;
  }
  unsigned char arena[2048];
  json::monotonic_resource memory(arena, sizeof arena);
  auto chunk = parse_json(event.data, {.max_bytes = 1 << 20, .max_depth = 64}, &memory);
  if (!chunk || !chunk->is_object()) return false;
  json::object& obj = chunk->get_object();
  const json::value* choices = member(obj, "choices");
  const bool has_choices =
      choices != nullptr && choices->is_array() && !choices->get_array().empty();
  if (has_choices && content_chunks_ == max_chunks_) {
    cut_ = done_ = true;
    sse_append_data(out, "[DONE]");
    return true;
  }
  if (has_choices) ++content_chunks_;
  // With include_usage forced on, engines put "usage": null on every chunk and the totals on a
  // last chunk without choices; a client that did not ask sees neither.
  if (member(obj, "usage") != nullptr) {
    if (auto usage = read_usage(obj)) usage_ = usage;
    if (!client_wants_usage_) {
      if (!has_choices) return true;  // a usage-only chunk the client did not ask for
      obj.erase("usage");
      sse_append_data(out, json::serialize(obj));
      return true;
    }
  }
  if (!event.event.empty()) {
    sse_append_event(out, event);
  } else {
    sse_append_data(out, event.data);
  }
  return true;
}

bool StreamRelay::complete() const { return done_ && !failed_ && parser_.at_boundary(); }

void StreamRelay::append_error(std::string& out, Error e) {
  sse_append_data(out, net::error_body(e));
}

}  // namespace dynaseal::server
