#include "server/usage.hpp"

#include <unistd.h>

#include <cerrno>
#include <ctime>

#include <boost/json/serialize.hpp>

#include "core/json.hpp"

namespace dynaseal::server {

namespace json = boost::json;

std::optional<TokenUsage> read_usage(const json::object& response) {
  const json::value* usage = member(response, "usage");
  if (usage == nullptr || !usage->is_object()) return std::nullopt;
  auto prompt = int_member(usage->get_object(), "prompt_tokens");
  auto completion = int_member(usage->get_object(), "completion_tokens");
  if (!prompt || !completion || *prompt < 0 || *completion < 0) return std::nullopt;
  return TokenUsage{*prompt, *completion};
}

std::string_view to_string(UsageStatus s) {
  switch (s) {
    case UsageStatus::ok: return "ok";
    case UsageStatus::upstream_error: return "upstream_error";
    case UsageStatus::client_disconnected: return "client_disconnected";
    case UsageStatus::interrupted: return "interrupted";
  }
  return "ok";
}

std::string rfc3339(std::int64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(unix_ms % 1000));
  return buf;
}

std::string usage_event_json(const UsageRecord& r) {
  json::object o;
  o["type"] = "usage";
  o["event_id"] = r.event_id;
  o["use"] = r.use;
  o["server"] = r.server;
  o["iss"] = r.iss;
  o["sub"] = r.sub;
  o["model"] = r.model;
  o["endpoint"] = to_string(r.endpoint);
  o["stream"] = r.stream;
  o["status"] = to_string(r.status);
  o["usage"] = {{"prompt_tokens", r.usage.prompt},
                {"completion_tokens", r.usage.completion},
                {"total_tokens", r.usage.total()}};
  o["started_at"] = rfc3339(r.started_at_ms);
  o["finished_at"] = rfc3339(r.finished_at_ms);
  o["request_sha256"] = r.request_sha256;
  o["response_sha256"] = r.response_sha256;
  if (r.ctx) o["ctx"] = *r.ctx;
  return json::serialize(o);
}

namespace {

constexpr std::size_t kFlushBytes = 64 * 1024;
constexpr std::size_t kMaxWrite = 4096;  // PIPE_BUF: atomic on pipes
constexpr auto kFlushEvery = std::chrono::milliseconds(50);

}  // namespace

LogUsageSink::LogUsageSink(int fd) : fd_(fd), writer_([this] { write_loop(); }) {}

LogUsageSink::~LogUsageSink() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  writer_.join();
}

void LogUsageSink::submit(UsageRecord record) {
  std::string line = "usage " + usage_event_json(record) + "\n";
  submitted_.fetch_add(1, std::memory_order_relaxed);
  bool full = false;
  {
    std::lock_guard lock(mutex_);
    pending_ += line;
    full = pending_.size() >= kFlushBytes;
  }
  if (full) wake_.notify_one();
}

void LogUsageSink::write_loop() {
  std::string batch;
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait_for(lock, kFlushEvery,
                   [this] { return stopping_ || pending_.size() >= kFlushBytes; });
    batch.swap(pending_);
    const bool last = stopping_;
    lock.unlock();
    write_out(batch);
    batch.clear();
    lock.lock();
    if (last && pending_.empty()) return;
  }
}

void LogUsageSink::write_out(const std::string& lines) {
  std::string_view rest = lines;
  while (!rest.empty()) {
    std::size_t n = rest.size();
    if (n > kMaxWrite) {
      const std::size_t cut = rest.rfind('\n', kMaxWrite - 1);
      n = cut == std::string_view::npos ? kMaxWrite : cut + 1;  // a line over 4 KiB goes as is
    }
    const ssize_t written = ::write(fd_, rest.data(), n);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return;  // stderr is gone: nothing better to do with the lines
    rest.remove_prefix(static_cast<std::size_t>(written));
  }
}

}  // namespace dynaseal::server
