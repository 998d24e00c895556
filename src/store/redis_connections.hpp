// The connections of one RedisUseStore: one per io_context that calls it (redis_use_store.hpp).
//
// A connection belongs to its io_context: it is kept by an Asio service of that io_context, so
// it is closed and destroyed when the io_context is (its socket never outlives its reactor),
// or earlier, when the store goes (the close is posted to the io_context's own thread). Finding
// it is a thread-local cache hit on the request path: the store's id and the io_context's
// address, checked against a weak reference (a destroyed io_context's connection is expired,
// so a new io_context at the same address gets a connection of its own).
//
// Thread-safe. The store must not be destroyed while one of its io_contexts is being
// destroyed on another thread.
//
//   RedisConnections connections(options);
//   auto conn = connections.on(co_await asio::this_coro::executor);
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "store/redis_connection.hpp"

namespace dynaseal::store {

class RedisConnections {
 public:
  explicit RedisConnections(RedisConnectionOptions options);
  ~RedisConnections();
  RedisConnections(const RedisConnections&) = delete;
  RedisConnections& operator=(const RedisConnections&) = delete;

  // The connection of the io_context behind `executor`, created on first use. Never null.
  std::shared_ptr<RedisConnection> on(const asio::any_io_executor& executor);

  RedisShared& shared() { return *shared_; }
  const RedisShared& shared() const { return *shared_; }

 private:
  std::shared_ptr<RedisConnection> create(const asio::any_io_executor& executor);

  const std::uint64_t id_;  // unique in the process, never reused
  std::shared_ptr<RedisShared> shared_;
  std::mutex mutex_;                                     // guards created_ (first calls only)
  std::vector<std::weak_ptr<RedisConnection>> created_;  // to retire them with the store
};

}  // namespace dynaseal::store
