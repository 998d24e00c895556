// The use store on Redis (DESIGN §8 "scale-out"): uses, budgets and revocations shared by every
// server replica that points at the same Redis, so a single-use key is served once across all.
//
// Each operation is one Lua script (store/redis_scripts.hpp), atomic in Redis, with the checks
// and error order of the UseStore contract. Keys: store/redis_keys.hpp (one hash tag per
// issuer, so Redis Cluster runs each script on one node; hostile iss/jti/sub bytes cannot
// collide or reach another issuer's keys).
//
// Redis Cluster: the URL may name any node. Commands go to the node that owns their slot, as
// learnt from MOVED replies; ASK sends one command to the importing node after ASKING; TRYAGAIN
// (a migration splits a script's keys) is retried every 20 ms until the timeout.
//
// Connections: one per calling io_context, created on its first call from that io_context and
// driven by it (store/redis_connection.hpp): the coroutines of one worker thread pipeline their
// scripts over it, with no thread and no lock on the request path (a thread-local cache finds
// the connection; the first call of a thread takes a mutex once). The connection lives as long
// as its io_context or the store, whichever ends first. io_contexts must be run by one thread.
//
// Failure (fail closed): an operation whose reply does not come within `timeout`, or whose
// connection breaks, or that Redis refuses (an error reply: out of memory, read-only replica,
// corrupt state...), completes with store_unavailable; it may or may not have taken effect
// (for consume: the use may be counted, never served). While a connection backs off after a
// failure (50 ms doubling to 1 s), calls on it fail at once; then the next call reconnects.
// NOSCRIPT (Redis restarted, SCRIPT FLUSH) is answered by sending the script itself (EVAL).
//
// healthy(): the last contact of any connection of this store succeeded (a reply that was not
// an error); false before the first contact. check() contacts Redis (PING) from the calling
// io_context first. size(): 0 always: the store does not count Redis's keys (`SCAN 0 MATCH
// <prefix>:*` or INFO keyspace do).
//
//   RedisUseStore uses({.url = *parse_redis_url("redis://127.0.0.1:6379/0")});
//   auto grant = co_await uses.consume(request, now);   // from a coroutine on an io_context
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "store/async_use_store.hpp"
#include "store/redis_url.hpp"

namespace dynaseal::store {

struct RedisUseStoreOptions {
  RedisUrl url;
  std::string key_prefix = "dks";          // see redis_keys.hpp: [A-Za-z0-9_.-]{1,64}
  std::chrono::milliseconds timeout{250};  // per operation, from call to Redis's reply
  std::chrono::milliseconds min_backoff{50};
  std::chrono::milliseconds max_backoff{1000};
};

class RedisConnections;

class RedisUseStore final : public AsyncUseStore {
 public:
  // Connects nothing yet. Throws std::invalid_argument for a bad key_prefix or a timeout or
  // back-off below 1 ms (start-up configuration errors).
  explicit RedisUseStore(RedisUseStoreOptions options);
  ~RedisUseStore() override;
  RedisUseStore(const RedisUseStore&) = delete;
  RedisUseStore& operator=(const RedisUseStore&) = delete;

  asio::awaitable<Result<UseGrant>> consume(const ConsumeRequest& req, std::int64_t now) override;
  asio::awaitable<Result<void>> settle(std::string_view iss, std::string_view jti, std::int64_t use,
                                       std::int64_t granted_tokens, std::int64_t actual_tokens,
                                       std::int64_t now) override;
  asio::awaitable<Result<void>> revoke_jti(std::string_view iss, std::string_view jti,
                                           std::int64_t until, std::int64_t now) override;
  asio::awaitable<Result<void>> revoke_sub(std::string_view iss, std::string_view sub,
                                           std::int64_t revoked_at, std::int64_t until,
                                           std::int64_t now) override;
  asio::awaitable<Result<JournalPage>> journal(std::string_view iss, std::uint64_t cursor) override;
  asio::awaitable<Result<void>> forget(std::string_view iss, std::string_view jti,
                                       std::int64_t use) override;
  bool journals() const override { return true; }
  asio::awaitable<void> release() override;
  asio::awaitable<bool> check() override;
  bool healthy() const override;
  std::size_t size() const override { return 0; }  // not counted: see above

 private:
  std::string prefix_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<RedisConnections> connections_;
};

}  // namespace dynaseal::store
