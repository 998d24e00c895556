#include "server/refusal_log.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

namespace dynaseal::server {

bool RefusalLog::admit(Error code, std::int64_t now_s) {
  std::int64_t second = second_.load(std::memory_order_relaxed);
  if (second != now_s && second_.compare_exchange_strong(second, now_s)) {
    flush();
    in_second_.store(0, std::memory_order_relaxed);
  }
  if (in_second_.fetch_add(1, std::memory_order_relaxed) < per_second_) return true;
  suppressed_[static_cast<std::size_t>(code)].fetch_add(1, std::memory_order_relaxed);
  return false;
}

void RefusalLog::flush() {
  const std::string summary = take_summary();
  if (!summary.empty()) spdlog::info("access {}", summary);
}

std::string RefusalLog::take_summary() {
  boost::json::object counts;
  for (std::size_t i = 0; i < kCodes; ++i) {
    const std::uint64_t n = suppressed_[i].exchange(0, std::memory_order_relaxed);
    if (n != 0) counts[to_string(static_cast<Error>(i))] = n;
  }
  if (counts.empty()) return {};
  return boost::json::serialize(boost::json::object{{"suppressed", std::move(counts)}});
}

}  // namespace dynaseal::server
