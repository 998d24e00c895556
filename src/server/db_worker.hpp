// The thread that owns the server's database (store::ServerStore): request threads hand it
// writes and queries and never wait on SQLite themselves.
//
// Group commit: every write queued while a transaction is being committed goes into the next
// transaction, so a busy server commits thousands of outbox writes at a time and an idle one
// commits each at once. A write may carry a callback, run on this thread after its transaction
// committed (or failed); `write_durable` is the awaitable form for the request path.
//
// Failure: a transaction that fails fails every write in it that has a callback (the caller
// decides: a request refuses with store_unavailable). Writes without a callback are the
// outbox's own bookkeeping and must not be lost: they are retried, every 200 ms, until the
// database takes them or the worker stops (then they are logged as lost). `write_retried`
// is retried the same way and runs its callback once the write is committed (or, at stop,
// with store_unavailable if it never was).
//
//   DbWorker db(std::move(store));
//   auto result = co_await db.write_durable(store::outbox::Open{...});   // on a worker thread
//   auto stats = co_await db.query<Result<store::OutboxStats>>(
//       [](store::ServerStore& s) { return s.stats(); });
//   db.stop();   // flushes queued writes, runs queued tasks, joins
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "store/server_store.hpp"

namespace dynaseal::server {

namespace asio = boost::asio;

class DbWorker {
 public:
  using WriteDone = std::function<void(store::OutboxWriteResult)>;
  using Task = std::function<void(store::ServerStore&)>;

  // For a store nobody on the request path waits for (the open log keeps the records):
  // gather: after waking for a write, wait this long for more before committing, and take no
  // wake-ups meanwhile: fewer, larger transactions and one thread switch per window instead of
  // one per request.
  // hold: a held Open (write_held) waits up to this long for its Finalize, so that a request
  // that finishes in time costs one insert of its finished record instead of an insert and an
  // update (the Open goes just before its Finalize, and SQLite inserts the two as one).
  explicit DbWorker(std::unique_ptr<store::ServerStore> store,
                    std::chrono::microseconds gather = std::chrono::microseconds(0),
                    std::chrono::milliseconds hold = std::chrono::milliseconds(0));
  ~DbWorker();
  DbWorker(const DbWorker&) = delete;
  DbWorker& operator=(const DbWorker&) = delete;

  // Queues a write for the next transaction; `done` runs on this worker's thread after it.
  void write(store::OutboxWrite write, WriteDone done = {});
  // Queues a write that is retried until it is committed; `committed` runs on this worker's
  // thread then with the write's result, or at stop with store_unavailable.
  void write_retried(store::OutboxWrite write, WriteDone committed);
  // The same for an Open that is durable elsewhere (the open log): it may be held back for
  // `hold`, waiting for its Finalize (see the constructor). Queries (run) do not wait for it.
  void write_held(store::outbox::Open open, WriteDone committed);
  // Queues a task, run on this worker's thread after the pending writes are committed.
  void run(Task task);
  // Flushes, runs what is queued, and ends the thread. Idempotent.
  void stop();

  // Whether the last transaction failed (the database refuses writes). Lock-free.
  bool failing() const { return failing_.load(std::memory_order_relaxed); }

  // Completes, on the awaiting coroutine's executor, once the write is committed.
  asio::awaitable<store::OutboxWriteResult> write_durable(store::OutboxWrite write);

  // Runs `f` on this worker's thread; completes with its result on the caller's executor.
  // (Not coroutines themselves: the awaitable comes straight from async_initiate, so no
  // coroutine frame holds a lambda capture, which GCC 12 gets wrong.)
  template <class T>
  asio::awaitable<T> query(std::function<T(store::ServerStore&)> f) {
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(T)>(
        [this](auto handler, std::function<T(store::ServerStore&)> fn) {
          auto executor = asio::get_associated_executor(handler);
          // The queue holds copyable functions; the coroutine's handler is move-only.
          auto shared = std::make_shared<decltype(handler)>(std::move(handler));
          run([executor, fn = std::move(fn), shared](store::ServerStore& s) {
            asio::post(executor,
                       [shared, result = fn(s)]() mutable { (*shared)(std::move(result)); });
          });
        },
        asio::use_awaitable, std::move(f));
  }

 private:
  // Writes and their callbacks, in parallel vectors so that a batch goes to the store as it is
  // (no copy of the bodies).
  struct Batch {
    std::vector<store::OutboxWrite> writes;
    std::vector<WriteDone> dones;
    std::vector<char> retried;  // retried until committed, whether or not it has a callback
    std::vector<char> held;     // an Open that may wait for its Finalize
    bool empty() const { return writes.empty(); }
    void push(store::OutboxWrite write, WriteDone done, bool retry, bool hold = false);
    void append(Batch& other);
    void clear();
  };
  struct Held {
    store::OutboxWrite open;
    WriteDone done;
  };
  using Clock = std::chrono::steady_clock;
  void queue(store::OutboxWrite write, WriteDone done, bool retry, bool hold = false);
  // Moves `batch` into `out`: held Opens into held_, Finalizes after their held Open, and the
  // Opens held past their time (all of them when `all`) first.
  void pair_held(Batch& batch, Batch& out, Clock::time_point now, bool all);
  void loop();
  // Commits `batch`; leaves in `retry` the writes to try again (those without a callback) when
  // the transaction failed.
  void commit(Batch& batch, Batch& retry);

  std::unique_ptr<store::ServerStore> store_;
  std::chrono::microseconds gather_;
  std::chrono::milliseconds hold_;
  // Held Opens by key name, and their deadlines in arrival order (names whose Open went on
  // already are skipped). This thread's own: no lock.
  std::unordered_map<std::string, Held> held_;
  std::deque<std::pair<Clock::time_point, std::string>> held_until_;
  std::mutex mutex_;
  std::condition_variable wake_;
  Batch queued_;
  std::vector<Task> tasks_;
  bool stopping_ = false;
  bool sleeping_ = false;  // the worker waits on wake_: only then is a notify needed
  std::atomic<bool> failing_{false};
  std::thread thread_;
};

}  // namespace dynaseal::server
