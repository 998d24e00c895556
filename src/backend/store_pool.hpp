// One BackendStore per thread: SQLite connections belong to one thread, and the HTTP server runs
// several worker threads. A worker's store is opened on its first request and kept until the
// pool dies (after the server's threads have stopped). Looking one up takes a short lock over a
// small map; the store's own work (a transaction) costs far more.
//
//   StorePool pool([&] { return open_sqlite_store(path); });
//   auto store = pool.local();                       // in a worker thread
//   if (!store) return reject(store.error());        // store_unavailable: could not open
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "backend/store.hpp"

namespace dynaseal::backend {

class StorePool {
 public:
  using Opener = std::function<Result<std::unique_ptr<BackendStore>>()>;

  explicit StorePool(Opener open) : open_(std::move(open)) {}

  // This thread's store, opened on first use. An open that fails is retried on the next call.
  Result<BackendStore*> local() {
    std::lock_guard lock(mutex_);
    auto& slot = stores_[std::this_thread::get_id()];
    if (!slot) {
      auto opened = open_();
      if (!opened) return Unexpected(opened.error());
      slot = std::move(*opened);
    }
    return slot.get();
  }

 private:
  Opener open_;
  std::mutex mutex_;
  std::unordered_map<std::thread::id, std::unique_ptr<BackendStore>> stores_;
};

}  // namespace dynaseal::backend
