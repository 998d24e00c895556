// One pipelined connection to Redis, driven by one io_context (DESIGN §8, §10).
//
// Any number of coroutines of that io_context's thread share it: each call appends its
// command (encoded with hiredis's redisFormatCommandArgv) to the output buffer, one write at a
// time sends whatever has accumulated, and replies (parsed with a hiredis redisReader) are
// matched to calls in order. No thread of its own, no lock: every member runs on the
// io_context's thread, so the io_context must be run by one thread (as net::HttpServer's are).
//
// Connecting: lazily, on the first call, and again on a call after a failure. AUTH and SELECT
// (from the URL) go first; calls queued meanwhile are written only once both answered OK, so no
// command can ever run on the wrong database. A host name is resolved with Asio's resolver
// (which has a helper thread of its own inside Asio); an IP address needs no resolution.
//
// Failure: every call has a deadline. When one passes without its reply, or the connection
// breaks, or Redis sends something that is not RESP, or AUTH/SELECT is refused, the connection
// is dropped: every call in flight completes with store_unavailable (the replies still due can
// no longer be matched to anything), and calls fail fast (available() is false) during a
// back-off of min_backoff, doubling up to max_backoff per failure in a row, before the next
// call connects again. A reply is never invented: success comes only from Redis's answer.
// Error replies (-ERR ...) are replies: they go to the caller, and the connection stays.
//
//   auto conn = std::make_shared<RedisConnection>(executor, shared);
//   if (!conn->available()) co_return Unexpected(Error::store_unavailable);
//   std::vector<std::string> ping{"PING"};
//   auto reply = co_await conn->call(ping, RedisConnection::Clock::now() + 250ms);
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/error.hpp"
#include "store/redis_url.hpp"

struct redisReply;
struct redisReader;

namespace dynaseal::store {

namespace asio = boost::asio;

struct RedisReplyFree {
  void operator()(redisReply* reply) const;
};
using RedisReply = std::unique_ptr<redisReply, RedisReplyFree>;

struct RedisConnectionOptions {
  RedisUrl url;
  std::chrono::milliseconds timeout{250};  // of each call, from call to reply
  std::chrono::milliseconds min_backoff{50};
  std::chrono::milliseconds max_backoff{1000};
};

// What every connection of one store shares: its options and the last contact's outcome.
struct RedisShared {
  explicit RedisShared(RedisConnectionOptions o) : options(std::move(o)) {}
  const RedisConnectionOptions options;
  std::atomic<bool> healthy{false};  // the last contact succeeded (false before any)
  std::atomic<std::int64_t> last_warning_ms{std::numeric_limits<std::int64_t>::min() / 2};
  void set_healthy(bool ok) {
    if (healthy.load(std::memory_order_relaxed) != ok) healthy.store(ok, std::memory_order_relaxed);
  }
};

class RedisConnection : public std::enable_shared_from_this<RedisConnection> {
 public:
  using Clock = std::chrono::steady_clock;

  // To the URL's host and port, or to another node of the same Redis Cluster (same password).
  RedisConnection(asio::any_io_executor executor, std::shared_ptr<RedisShared> shared);
  RedisConnection(asio::any_io_executor executor, std::shared_ptr<RedisShared> shared,
                  std::string host, std::uint16_t port);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // False while backing off after a failure: a call now would fail, so callers fail fast.
  bool available() const;

  // Sends `args` as one command; completes with Redis's reply (an error reply too) or with
  // store_unavailable. `args` must stay valid until the awaitable starts (it is encoded then).
  // `asking`: ASKING goes right before it, with nothing between (a Cluster ASK redirection);
  // its reply is not looked at (a refused ASKING shows in the command's own reply).
  asio::awaitable<Result<RedisReply>> call(std::span<const std::string> args,
                                           Clock::time_point deadline, bool asking = false);

  // Drops the connection without a back-off (the owner retires it). Calls in flight fail.
  void close();

  const asio::any_io_executor& executor() const { return executor_; }
  const std::string& host() const { return host_; }

 private:
  // The awaiting coroutine's completion handler, type-erased (move-only). Called on this
  // io_context's thread, which is the coroutine's own.
  class Done {
   public:
    Done() = default;
    template <class Handler>
    explicit Done(Handler handler) : impl_(std::make_unique<Impl<Handler>>(std::move(handler))) {}
    explicit operator bool() const { return impl_ != nullptr; }
    void operator()(Result<RedisReply> result) {
      std::exchange(impl_, {})->call(std::move(result));
    }

   private:
    struct Base {
      virtual ~Base() = default;
      virtual void call(Result<RedisReply> result) = 0;
    };
    template <class Handler>
    struct Impl final : Base {
      explicit Impl(Handler h) : handler(std::move(h)) {}
      void call(Result<RedisReply> result) override { std::move(handler)(std::move(result)); }
      Handler handler;
    };
    std::unique_ptr<Base> impl_;
  };
  enum class State { closed, connecting, handshake, ready };
  struct Pending {
    Done done;  // empty for AUTH and SELECT, whose reply must be +OK
    Clock::time_point deadline;
  };

  void start(std::span<const std::string> args, Clock::time_point deadline, bool asking, Done done);
  void complete_later(Done done, Result<RedisReply> result);  // posted: never re-entrant
  void connect();
  void on_connected(std::uint64_t epoch, const boost::system::error_code& ec);
  void write_more();
  void read_more();
  void on_read(const boost::system::error_code& ec, std::size_t n);
  bool on_reply(RedisReply reply);  // false when the connection was dropped
  void watch(Clock::time_point deadline);
  void on_timer();
  void fail(std::string_view why, bool back_off = true);

  asio::any_io_executor executor_;
  std::shared_ptr<RedisShared> shared_;
  std::string host_;
  std::uint16_t port_;
  asio::ip::tcp::socket socket_;
  asio::ip::tcp::resolver resolver_;
  asio::steady_timer timer_;
  State state_ = State::closed;
  std::uint64_t epoch_ = 0;  // bumped by every drop: completions of older sockets are stale
  Clock::time_point retry_at_{};
  std::chrono::milliseconds backoff_;
  bool reported_down_ = false;   // the failure was logged; further ones are quiet until up
  std::deque<Pending> pending_;  // in reply order: AUTH/SELECT first while handshaking
  std::size_t handshake_left_ = 0;
  std::string hello_;    // AUTH and SELECT, written first on a new connection
  std::string out_;      // commands waiting for the next write
  std::string writing_;  // the write in progress
  bool write_busy_ = false;
  bool read_busy_ = false;
  bool timer_armed_ = false;
  Clock::time_point timer_at_{};
  redisReader* reader_;
  std::array<char, 16384> in_;
};

}  // namespace dynaseal::store
