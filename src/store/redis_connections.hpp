// The connections of one RedisUseStore (redis_use_store.hpp), per io_context that calls it: one
// to the Redis of the URL, and, when that Redis is a node of a Redis Cluster, one to each other
// node its redirections name.
//
// A connection belongs to its io_context: it is kept by an Asio service of that io_context, so
// it is closed and destroyed when the io_context is (its socket never outlives its reactor),
// or earlier, when the store goes (the close is posted to the io_context's own thread). Finding
// an io_context's routes is a thread-local cache hit on the request path: the store's id and
// the io_context's address, checked against a weak reference (a destroyed io_context's routes
// are expired, so a new io_context at the same address gets routes of its own).
//
// Cluster: each io_context's routes learn the slot → node map from MOVED replies (one redirect
// per slot and io_context, then the command goes straight to its node); until the first one, and
// against a single Redis always, every command goes to the URL's Redis.
//
// Thread-safe (RedisRoutes: only on its own io_context's thread). The store must not be
// destroyed while one of its io_contexts is being destroyed on another thread.
//
//   RedisConnections connections(options);
//   RedisRoutes& routes = *connections.on(co_await asio::this_coro::executor);
//   auto conn = routes.for_slot(redis_slot(key));
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "store/redis_connection.hpp"

namespace dynaseal::store {

// One store's connections on one io_context.
class RedisRoutes {
 public:
  RedisRoutes(asio::any_io_executor executor, std::shared_ptr<RedisShared> shared);

  // The connection to the URL's Redis. Never null.
  const std::shared_ptr<RedisConnection>& seed() const { return seed_; }
  // Where a command on `slot` goes: the node a MOVED named for it, or the seed.
  const std::shared_ptr<RedisConnection>& for_slot(std::uint16_t slot) const;
  // The connection to node host:port, created on first use; null once kMaxNodes other nodes
  // are known (a cluster has far fewer; more would be a misbehaving server's redirections).
  std::shared_ptr<RedisConnection> node(const std::string& host, std::uint16_t port);
  static constexpr std::size_t kMaxNodes = 256;
  // From now on, `slot` lives on `connection` (a MOVED reply; from node()).
  void learn(std::uint16_t slot, const std::shared_ptr<RedisConnection>& connection);
  // The node learnt for `slot` cannot be reached: ask the seed again (after a failover, it
  // answers MOVED to the slot's new node).
  void unlearn(std::uint16_t slot);
  // Closes every connection (they reconnect on their next call).
  void close_all();

  const asio::any_io_executor& executor() const { return executor_; }

 private:
  asio::any_io_executor executor_;
  std::shared_ptr<RedisShared> shared_;
  std::shared_ptr<RedisConnection> seed_;
  std::vector<std::pair<std::string, std::shared_ptr<RedisConnection>>> nodes_;  // "host:port"
  std::vector<std::uint16_t> slots_;  // empty until the first MOVED; 0 = seed, i = nodes_[i-1]
};

class RedisConnections {
 public:
  explicit RedisConnections(RedisConnectionOptions options);
  ~RedisConnections();
  RedisConnections(const RedisConnections&) = delete;
  RedisConnections& operator=(const RedisConnections&) = delete;

  // The routes of the io_context behind `executor`, created on first use. Never null.
  std::shared_ptr<RedisRoutes> on(const asio::any_io_executor& executor);

  RedisShared& shared() { return *shared_; }
  const RedisShared& shared() const { return *shared_; }

 private:
  std::shared_ptr<RedisRoutes> create(const asio::any_io_executor& executor);

  const std::uint64_t id_;  // unique in the process, never reused
  std::shared_ptr<RedisShared> shared_;
  std::mutex mutex_;                                 // guards created_ (first calls only)
  std::vector<std::weak_ptr<RedisRoutes>> created_;  // to retire them with the store
};

}  // namespace dynaseal::store
