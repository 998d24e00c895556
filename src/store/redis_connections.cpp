#include "store/redis_connections.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <unordered_map>

#include <boost/asio/execution_context.hpp>
#include <boost/asio/post.hpp>

namespace dynaseal::store {
namespace {

std::atomic<std::uint64_t> next_store_id{1};

// The connections living on one io_context, by store id.
class ContextConnections : public asio::execution_context::service {
 public:
  static asio::execution_context::id id;  // NOLINT: Asio's service identification

  explicit ContextConnections(asio::execution_context& context) : service(context) {}

  std::shared_ptr<RedisConnection> find_or_create(std::uint64_t store,
                                                  const asio::any_io_executor& executor,
                                                  const std::shared_ptr<RedisShared>& shared) {
    std::lock_guard lock(mutex_);
    auto& slot = by_store_[store];
    if (!slot) slot = std::make_shared<RedisConnection>(executor, shared);
    return slot;
  }

  // Runs on the io_context's thread: the store is gone.
  void forget(std::uint64_t store) {
    std::shared_ptr<RedisConnection> gone;
    {
      std::lock_guard lock(mutex_);
      auto it = by_store_.find(store);
      if (it == by_store_.end()) return;
      gone = std::move(it->second);
      by_store_.erase(it);
    }
    gone->close();
  }

 private:
  // The io_context is going: close every socket while its reactor still exists.
  void shutdown() override {
    std::unordered_map<std::uint64_t, std::shared_ptr<RedisConnection>> all;
    {
      std::lock_guard lock(mutex_);
      all.swap(by_store_);
    }
    for (auto& [store, connection] : all) connection->close();
  }

  std::mutex mutex_;
  std::unordered_map<std::uint64_t, std::shared_ptr<RedisConnection>> by_store_;
};

asio::execution_context::id ContextConnections::id;

struct CacheEntry {
  std::uint64_t store = 0;
  const asio::execution_context* context = nullptr;
  std::weak_ptr<RedisConnection> connection;
};

// The last few (store, io_context) pairs this thread used. A server thread uses one.
thread_local std::array<CacheEntry, 4> cache;
thread_local std::size_t cache_next = 0;

asio::execution_context& context_of(const asio::any_io_executor& executor) {
  return asio::query(executor, asio::execution::context);
}

}  // namespace

RedisConnections::RedisConnections(RedisConnectionOptions options)
    : id_(next_store_id.fetch_add(1)), shared_(std::make_shared<RedisShared>(std::move(options))) {}

RedisConnections::~RedisConnections() {
  std::lock_guard lock(mutex_);
  for (const auto& weak : created_) {
    auto connection = weak.lock();
    if (!connection) continue;
    asio::post(connection->executor(), [connection, store = id_] {
      asio::use_service<ContextConnections>(context_of(connection->executor())).forget(store);
    });
  }
}

std::shared_ptr<RedisConnection> RedisConnections::on(const asio::any_io_executor& executor) {
  const asio::execution_context* context = &context_of(executor);
  for (CacheEntry& entry : cache) {
    if (entry.store != id_ || entry.context != context) continue;
    if (auto connection = entry.connection.lock()) return connection;
    // That io_context is gone: this one is new at the same address.
    auto connection = create(executor);
    entry.connection = connection;
    return connection;
  }
  CacheEntry& entry = cache[cache_next++ % cache.size()];
  auto connection = create(executor);
  entry = CacheEntry{id_, context, connection};
  return connection;
}

std::shared_ptr<RedisConnection> RedisConnections::create(const asio::any_io_executor& executor) {
  // Untracked: a connection kept by the io_context must not keep its run() from returning.
  const asio::any_io_executor untracked =
      asio::prefer(executor, asio::execution::outstanding_work.untracked);
  auto connection = asio::use_service<ContextConnections>(context_of(executor))
                        .find_or_create(id_, untracked, shared_);
  std::lock_guard lock(mutex_);
  std::erase_if(created_, [](const auto& weak) { return weak.expired(); });
  const bool known = std::any_of(created_.begin(), created_.end(),
                                 [&](const auto& weak) { return weak.lock() == connection; });
  if (!known) created_.push_back(connection);
  return connection;
}

}  // namespace dynaseal::store
