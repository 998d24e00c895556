// Deterministic faults of the stand-in engine, requested per request by a marker in the prompt.
//
// A prompt text (a chat message's content or a completions prompt) that contains
// `[[fault:MODE]]` makes the engine misbehave in that way for that request only, so tests of the
// gateway can provoke each upstream failure on demand. The marker is an ordinary word for token
// counting. What each mode does is described in docs/engine.md and at the values below.
#pragma once

#include <optional>
#include <string_view>

namespace dynaseal::engine {

enum class Fault {
  none,              // behave normally
  status500,         // 500 with an OpenAI error body (also what --fail-rate injects)
  status503,         // 503 with an OpenAI error body
  reset,             // reset the connection (TCP RST) before any response byte
  reset_mid_stream,  // send the head and a few tokens, then reset the connection
  truncate,          // send a few tokens, then end the HTTP response cleanly, without [DONE]
  garbage,           // 200 with a body that is not JSON (streams: an event whose data is not JSON)
  hang,              // never answer; give up only when the client goes away
  slow_first_byte,   // wait 10x --ttft-ms (5 s when that is 0), then answer normally
};

// The marker's spelling of a mode, e.g. "reset-mid-stream"; "none" for Fault::none.
std::string_view to_string(Fault f);

// The first `[[fault:MODE]]` marker in `text`: Fault::none when there is none, nullopt when
// MODE is not one of the modes above (the engine answers 400 fault_unknown).
std::optional<Fault> find_fault(std::string_view text);

}  // namespace dynaseal::engine
