// A bound on the access-log lines of refused requests: a flood of garbage (bad keys, bad
// bodies, unknown paths) must not grow the log without bound. Up to `per_second` refusals a
// second are logged one line each; the rest are counted by code, and one summary line a
// second says how many of each were not logged (flush(), called by the first refusal of the
// next second and by the server's once-a-second sweep). Served requests are always logged.
// Thread-safe, lock-free on the request path.
//
//   RefusalLog log(100);
//   if (log.admit(Error::token_malformed, now_s)) spdlog::info("access ...");
//   log.flush();        // once a second: "access {"suppressed":{"token_malformed":912}}"
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "core/error.hpp"

namespace dynaseal::server {

class RefusalLog {
 public:
  explicit RefusalLog(std::int64_t per_second) : per_second_(per_second) {}

  // Whether this refusal gets its own line; counts it as suppressed otherwise.
  bool admit(Error code, std::int64_t now_s);

  // Logs the counts suppressed so far in one line, if any, and resets them.
  void flush();

  // The summary line's JSON for the counts suppressed so far, taking them ("" when none).
  std::string take_summary();

 private:
  static constexpr std::size_t kCodes = static_cast<std::size_t>(Error::internal) + 1;
  std::int64_t per_second_;
  std::atomic<std::int64_t> second_{0};
  std::atomic<std::int64_t> in_second_{0};
  std::array<std::atomic<std::uint64_t>, kCodes> suppressed_{};
};

}  // namespace dynaseal::server
