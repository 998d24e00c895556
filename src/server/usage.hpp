// What the server reports for every consumed use (DESIGN §5): the usage record, and the sink
// it is handed to. Until the durable callback outbox exists, the sink logs and counts.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <boost/json/object.hpp>

#include "core/scope.hpp"

namespace dynaseal::server {

struct TokenUsage {
  std::int64_t prompt = 0;
  std::int64_t completion = 0;
  std::int64_t total() const { return prompt + completion; }
};

// Reads {"usage":{"prompt_tokens":..,"completion_tokens":..}} from an OpenAI response or
// chunk; nothing when absent, null or malformed.
std::optional<TokenUsage> read_usage(const boost::json::object& response);

enum class UsageStatus { ok, upstream_error, client_disconnected, interrupted };
std::string_view to_string(UsageStatus s);

struct UsageRecord {
  std::string event_id{};  // the key's jti
  std::int64_t use = 0;
  std::string server{};
  std::string iss{};
  std::string sub{};
  std::string model{};
  Endpoint endpoint = Endpoint::chat_completions;
  bool stream = false;
  UsageStatus status = UsageStatus::ok;
  TokenUsage usage{};
  bool usage_reported = false;  // false: counted by the gateway (engine cut off before usage)
  std::int64_t started_at_ms = 0;
  std::int64_t finished_at_ms = 0;
  std::string request_sha256{};   // hex, of the client's request body
  std::string response_sha256{};  // hex, of the body bytes sent to the client
  std::optional<std::string> ctx{};
};

// The DESIGN §5 callback body for a record.
std::string usage_event_json(const UsageRecord& r);

// RFC 3339 UTC with milliseconds: 2026-11-21T05:36:48.123Z
std::string rfc3339(std::int64_t unix_ms);

// Receives every record exactly once, from any worker thread. Must not block.
class UsageSink {
 public:
  virtual ~UsageSink() = default;
  virtual void submit(UsageRecord record) = 0;
};

// Writes each record as one line `usage {json}` to a file descriptor (stderr by default) and
// counts them: the sink until the durable outbox lands. Workers only append to a buffer under a
// short lock; a writer thread flushes it every 50 ms or at 64 KiB, so a record costs neither a
// system call nor a thread wake-up on the request path. Lines go out in writes of at most
// 4 KiB cut at line ends, which a pipe keeps whole among other writers. Destruction flushes.
class LogUsageSink final : public UsageSink {
 public:
  explicit LogUsageSink(int fd = 2);
  ~LogUsageSink() override;
  LogUsageSink(const LogUsageSink&) = delete;
  LogUsageSink& operator=(const LogUsageSink&) = delete;

  void submit(UsageRecord record) override;
  std::uint64_t submitted() const { return submitted_.load(std::memory_order_relaxed); }

 private:
  void write_loop();
  void write_out(const std::string& lines);

  int fd_;
  std::atomic<std::uint64_t> submitted_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::string pending_;
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace dynaseal::server
