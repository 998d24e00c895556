#include "server/replica_liveness.hpp"

#include <chrono>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <spdlog/spdlog.h>

namespace dynaseal::server {
namespace {

using Clock = std::chrono::steady_clock;

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Plain functions, not lambdas in the coroutine: GCC 12 destroys coroutine temporaries with
// non-trivial captures twice.
std::function<Result<void>(store::ServerStore&)> heartbeat_task(std::string replica) {
  return [replica = std::move(replica)](store::ServerStore& s) {
    return s.heartbeat(replica, unix_ms());
  };
}

std::function<Result<std::int64_t>(store::ServerStore&)> recover_task(std::int64_t timeout_ms) {
  return [timeout_ms](store::ServerStore& s) {
    const std::int64_t now = unix_ms();
    return s.recover_stale(now - timeout_ms, now);
  };
}

}  // namespace

asio::awaitable<void> keep_alive(DbWorker& db, std::string replica, OutboxOptions options,
                                 asio::steady_timer& timer, const bool& stopping,
                                 std::function<void(std::int64_t)> recovered) {
  const std::int64_t timeout_ms = options.replica_timeout.count();
  std::optional<Clock::time_point> alive_since;  // first heartbeat of the current unbroken run
  while (!stopping) {
    auto beat = co_await db.query<Result<void>>(heartbeat_task(replica));
    if (stopping) co_return;
    if (!beat) {
      if (alive_since) spdlog::warn("outbox: cannot record this replica's heartbeat");
      alive_since.reset();
    } else if (!alive_since) {
      alive_since = Clock::now();
    } else if (Clock::now() - *alive_since >= options.replica_timeout) {
      auto taken = co_await db.query<Result<std::int64_t>>(recover_task(timeout_ms));
      if (stopping) co_return;
      if (taken && *taken > 0) {
        spdlog::warn("outbox: {} requests of silent replicas reported as interrupted", *taken);
        recovered(*taken);
      }
    }
    timer.expires_after(options.heartbeat);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;  // cancelled: stopping
  }
}

}  // namespace dynaseal::server
