// The thread that stores usage callbacks (BackendStore::record_events): HTTP worker threads check
// a callback's signature and body themselves, in parallel, and hand the checked event here.
//
// Group commit: every event queued while a transaction is being committed goes into the next
// transaction (at most kMaxBatch events each), so a busy backend commits hundreds of callbacks
// at a time and an idle one commits each at once. The pattern of the server's outbox writer
// (src/server/db_worker.hpp), for the backend's store.
//
// Results: each event gets its own (recorded, duplicate, or its error); a transaction that fails
// fails every event in it with store_unavailable, and the server retries them. A callback is
// answered only once its result is known, so a 200 always means committed.
//
//   UsageWriter writer(std::move(*open_sqlite_store(path)));   // its own connection
//   Result<Recorded> r = co_await writer.record_durable(std::move(new_event));
//   writer.stop();   // records what is queued, then ends the thread
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>

#include "backend/store.hpp"

namespace dynaseal::backend {

class UsageWriter {
 public:
  static constexpr std::size_t kMaxBatch = 512;
  using Done = std::function<void(Result<Recorded>)>;

  explicit UsageWriter(std::unique_ptr<BackendStore> store);
  ~UsageWriter();
  UsageWriter(const UsageWriter&) = delete;
  UsageWriter& operator=(const UsageWriter&) = delete;

  // Queues an event for the next transaction; `done` runs on this writer's thread after it.
  // After stop(), `done` runs at once with store_unavailable.
  void record(NewEvent event, Done done);
  // Completes, on the awaiting coroutine's executor, once the event's transaction is over.
  // (Not a coroutine itself: the awaitable comes straight from async_initiate, so no coroutine
  // frame holds a lambda capture, which GCC 12 gets wrong; `event` is moved from at once, so
  // the caller's coroutine holds no temporary across the co_await either.)
  boost::asio::awaitable<Result<Recorded>> record_durable(NewEvent&& event);
  // Records what is queued and ends the thread. Idempotent.
  void stop();

  // Transactions committed or failed so far, for tests and diagnostics.
  std::size_t transactions() const;

 private:
  struct Pending {
    NewEvent event;
    Done done;
  };
  void loop();
  void commit(std::vector<Pending>& batch);

  std::unique_ptr<BackendStore> store_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Pending> queue_;
  std::size_t transactions_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace dynaseal::backend
