// The usage-callback outbox (DESIGN §5): every consumed use becomes exactly one signed event at
// its backend, also when the engine fails, the client leaves or the server is killed.
//
// Request path: open() makes the record durable (group-committed, see db_worker.hpp) before
// the engine is called, with the body to send should the request never finish ("interrupted");
// finish() replaces it with the real body once the request is over and wakes the dispatcher.
//
// Dispatcher: one thread with its own io_context. For each registered backend with a callback
// URL it claims due events (leased, so no event is sent twice at once), at most
// `concurrency_per_backend` in flight per backend, and POSTs each with Standard Webhooks
// headers and a v1a Ed25519 signature by the server's identity key (core/webhook.hpp). A 2xx
// marks it delivered; anything else schedules a retry with exponential backoff and jitter
// (retry_base doubling up to retry_max_delay); an event still undelivered `max_age` after it
// was queued is dead-lettered, visible in the admin API and replayable.
//
// Restart: the constructor turns this server's open records into pending `interrupted` events
// before anything else runs, so they are delivered like any other.
//
// With an open log (server/open_log.hpp; one server on SQLite with the memory use store), open()
// appends the record to the log on the request's thread and returns: the database commits it in
// the background, retried until it does. The constructor first replays what the log holds into
// the database, so the records of a crash are recovered like the others. A use the database
// already holds is then never taken again (the memory store is restored from the outbox at
// start, server_app.cpp), so open() has no conflict to report.
//
//   Outbox outbox(db, registry, identity, options, metrics);
//   outbox.start(/*watch_replicas=*/false, &uses);
//   if (auto opened = co_await outbox.open(record, interrupted_event_json(record)); !opened)
//     refuse(opened.error());
//   ... call the engine ...
//   outbox.finish(record);
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/awaitable.hpp>

#include "core/crypto.hpp"
#include "server/backend_registry.hpp"
#include "server/config.hpp"
#include "server/db_worker.hpp"
#include "server/metrics.hpp"
#include "server/open_log.hpp"
#include "server/usage.hpp"
#include "store/async_use_store.hpp"

namespace dynaseal::server {

// The delay before retry number `attempt` (1 = the first retry): retry_base * 2^(attempt-1)
// capped at retry_max_delay, then "equal jitter": half of it fixed, half uniformly random, so
// retries of events that failed together spread out. `unit` in [0, 1) is the random part.
std::chrono::milliseconds retry_delay(const OutboxOptions& o, std::int64_t attempt, double unit);

class Outbox {
 public:
  // Recovers this server's open records (see above); throws std::runtime_error when the
  // database cannot be read at start, or the open log cannot be replayed into it.
  Outbox(DbWorker& db, const BackendRegistry& backends, SigningKey identity, std::string owner,
         OutboxOptions options, Metrics& metrics, std::unique_ptr<OpenLog> open_log = nullptr);
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Durable before it completes, with `interrupted_body` (interrupted_event_json(record)) as
  // the body to send should the request never finish. conflict: this (iss, jti, use) was
  // opened before (the use was consumed before a restart, or its record was written from the
  // use store's journal: refuse as uses_exhausted); store_unavailable otherwise.
  asio::awaitable<Result<void>> open(const UsageRecord& record, std::string interrupted_body);
  // The final record; never blocks, durable within one commit.
  void finish(const UsageRecord& record);

  // Whether a request may take a use now. While the database (or the open log) refuses
  // writes, a request that took a use could not record it (it would be refused, and its use
  // reported as interrupted only later, from the use store's journal, or never with the memory
  // store): so from a failed open on, one request every kProbeEvery goes ahead, to find out
  // whether the database is back, and the others are refused before they spend anything.
  // Lock-free.
  bool admit();
  static constexpr std::chrono::milliseconds kProbeEvery{250};

  // watch_replicas: heartbeat and take over silent replicas' records (replica_liveness.hpp);
  // only where replicas share the database. `uses`: replay its journal (use_journal.hpp) when
  // it keeps one; it must outlive stop().
  void start(bool watch_replicas, store::AsyncUseStore* uses = nullptr);
  // Before stopping, once requests are over: waits until every finished event is delivered
  // (nothing pending), at most `timeout`. Events still pending then go out at the next start.
  void drain(std::chrono::milliseconds timeout);
  void stop();  // stops delivering; queued writes are flushed by the DbWorker's stop()

  // For the admin API (complete on the caller's executor).
  asio::awaitable<Result<store::OutboxStats>> stats();
  asio::awaitable<Result<std::vector<store::DeadLetter>>> dead_letters(std::size_t limit);
  asio::awaitable<Result<std::int64_t>> replay(std::string iss, std::string webhook_id);

 private:
  struct Dispatcher;
  void replay_open_log();
  Result<void> open_logged(const UsageRecord& record, std::string interrupted_body);

  DbWorker& db_;
  std::string owner_;
  std::unique_ptr<OpenLog> open_log_;
  std::atomic<std::int64_t> next_probe_ms_{0};
  std::atomic<bool> log_failing_{false};  // the last append to the open log failed
  std::unique_ptr<Dispatcher> dispatcher_;
};

// The body sent when a request never finished: status "interrupted", no usage, finished_at
// equal to started_at and the response hash of nothing (what was sent is unknown). The first
// form is cut around the use (usage.hpp), for the use store's journal.
UsageEventJson interrupted_event_around_use(const UsageRecord& record);
std::string interrupted_event_json(const UsageRecord& record);

}  // namespace dynaseal::server
