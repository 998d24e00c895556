#include "store/redis_connections.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <unordered_map>

#include <boost/asio/execution_context.hpp>
#include <boost/asio/post.hpp>

#include "store/redis_cluster.hpp"

namespace dynaseal::store {
namespace {

std::atomic<std::uint64_t> next_store_id{1};

// The routes living on one io_context, by store id.
class ContextConnections : public asio::execution_context::service {
 public:
  static asio::execution_context::id id;  // NOLINT: Asio's service identification

  explicit ContextConnections(asio::execution_context& context) : service(context) {}

  std::shared_ptr<RedisRoutes> find_or_create(std::uint64_t store,
                                              const asio::any_io_executor& executor,
                                              const std::shared_ptr<RedisShared>& shared) {
    std::lock_guard lock(mutex_);
    auto& routes = by_store_[store];
    if (!routes) routes = std::make_shared<RedisRoutes>(executor, shared);
    return routes;
  }

  // Runs on the io_context's thread: the store is gone.
  void forget(std::uint64_t store) {
    std::shared_ptr<RedisRoutes> gone;
    {
      std::lock_guard lock(mutex_);
      auto it = by_store_.find(store);
      if (it == by_store_.end()) return;
      gone = std::move(it->second);
      by_store_.erase(it);
    }
    gone->close_all();
  }

 private:
  // The io_context is going: close every socket while its reactor still exists.
  void shutdown() override {
    std::unordered_map<std::uint64_t, std::shared_ptr<RedisRoutes>> all;
    {
      std::lock_guard lock(mutex_);
      all.swap(by_store_);
    }
    for (auto& [store, routes] : all) routes->close_all();
  }

  std::mutex mutex_;
  std::unordered_map<std::uint64_t, std::shared_ptr<RedisRoutes>> by_store_;
};

asio::execution_context::id ContextConnections::id;

struct CacheEntry {
  std::uint64_t store = 0;
  const asio::execution_context* context = nullptr;
  std::weak_ptr<RedisRoutes> routes;
};

// The last few (store, io_context) pairs this thread used. A server thread uses one.
thread_local std::array<CacheEntry, 4> cache;
thread_local std::size_t cache_next = 0;

asio::execution_context& context_of(const asio::any_io_executor& executor) {
  return asio::query(executor, asio::execution::context);
}

}  // namespace

RedisRoutes::RedisRoutes(asio::any_io_executor executor, std::shared_ptr<RedisShared> shared)
    : executor_(std::move(executor)),
      shared_(std::move(shared)),
      seed_(std::make_shared<RedisConnection>(executor_, shared_)) {}

const std::shared_ptr<RedisConnection>& RedisRoutes::for_slot(std::uint16_t slot) const {
  if (slots_.empty() || slots_[slot] == 0) return seed_;
  return nodes_[slots_[slot] - 1].second;
}

std::shared_ptr<RedisConnection> RedisRoutes::node(const std::string& host, std::uint16_t port) {
  std::string name = host + ":" + std::to_string(port);
  for (const auto& [known, connection] : nodes_) {
    if (known == name) return connection;
  }
  if (nodes_.size() >= kMaxNodes) return nullptr;
  auto connection = std::make_shared<RedisConnection>(executor_, shared_, host, port);
  nodes_.emplace_back(std::move(name), connection);
  return connection;
}

void RedisRoutes::learn(std::uint16_t slot, const std::shared_ptr<RedisConnection>& connection) {
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].second != connection) continue;
    if (slots_.empty()) slots_.assign(kRedisSlots, 0);
    slots_[slot] = static_cast<std::uint16_t>(i + 1);
  }
}

void RedisRoutes::unlearn(std::uint16_t slot) {
  if (!slots_.empty()) slots_[slot] = 0;
}

void RedisRoutes::close_all() {
  seed_->close();
  for (auto& [name, connection] : nodes_) connection->close();
}

RedisConnections::RedisConnections(RedisConnectionOptions options)
    : id_(next_store_id.fetch_add(1)), shared_(std::make_shared<RedisShared>(std::move(options))) {}

RedisConnections::~RedisConnections() {
  std::lock_guard lock(mutex_);
  for (const auto& weak : created_) {
    auto routes = weak.lock();
    if (!routes) continue;
    asio::post(routes->executor(), [routes, store = id_] {
      asio::use_service<ContextConnections>(context_of(routes->executor())).forget(store);
    });
  }
}

std::shared_ptr<RedisRoutes> RedisConnections::on(const asio::any_io_executor& executor) {
  const asio::execution_context* context = &context_of(executor);
  for (CacheEntry& entry : cache) {
    if (entry.store != id_ || entry.context != context) continue;
    if (auto routes = entry.routes.lock()) return routes;
    // That io_context is gone: this one is new at the same address.
    auto routes = create(executor);
    entry.routes = routes;
    return routes;
  }
  CacheEntry& entry = cache[cache_next++ % cache.size()];
  auto routes = create(executor);
  entry = CacheEntry{id_, context, routes};
  return routes;
}

std::shared_ptr<RedisRoutes> RedisConnections::create(const asio::any_io_executor& executor) {
  // Untracked: a connection kept by the io_context must not keep its run() from returning.
  const asio::any_io_executor untracked =
      asio::prefer(executor, asio::execution::outstanding_work.untracked);
  auto routes = asio::use_service<ContextConnections>(context_of(executor))
                    .find_or_create(id_, untracked, shared_);
  std::lock_guard lock(mutex_);
  std::erase_if(created_, [](const auto& weak) { return weak.expired(); });
  const bool known = std::any_of(created_.begin(), created_.end(),
                                 [&](const auto& weak) { return weak.lock() == routes; });
  if (!known) created_.push_back(routes);
  return routes;
}

}  // namespace dynaseal::store
