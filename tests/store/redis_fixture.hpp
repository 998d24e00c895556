// Helpers for tests of the Redis use store on real servers (support/services.hpp).
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "store/redis_url.hpp"

namespace dynaseal::testing {

inline std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A key prefix that no other test, process or earlier run uses on a shared Redis.
inline std::string unique_redis_prefix() {
  static std::atomic<int> next{0};
  return "t" + std::to_string(::getpid()) + "-" + std::to_string(unix_now()) + "-" +
         std::to_string(next++);
}

inline store::RedisUrl redis_url_of(const std::string& text) {
  auto url = store::parse_redis_url(text);
  if (!url) throw std::runtime_error("bad Redis URL " + text + ": " + url.error());
  return *url;
}

}  // namespace dynaseal::testing
