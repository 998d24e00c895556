#include "server/outbox.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <unordered_set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "core/thread_name.hpp"
#include "core/webhook.hpp"
#include "net/http_client.hpp"
#include "server/gateway.hpp"
#include "server/replica_liveness.hpp"
#include "server/use_journal.hpp"

namespace dynaseal::server {
namespace {

namespace http = net::http;
constexpr std::size_t kMaxAckBody = 64 * 1024;
constexpr auto kSweepEvery = std::chrono::seconds(10);

std::int64_t ms(std::chrono::milliseconds d) { return d.count(); }

store::OutboxKey key_of(const UsageRecord& r) { return {r.iss, r.event_id, r.use}; }

store::OutboxWrite open_write(const UsageRecord& r, std::string interrupted_body,
                              const std::string& owner) {
  return store::outbox::Open{.key = key_of(r),
                             .owner = owner,
                             .interrupted_body = std::move(interrupted_body),
                             .now_ms = unix_ms()};
}

http::request<http::string_body> callback_request(const SigningKey& identity,
                                                  const store::OutboxEvent& e,
                                                  const net::UpstreamTarget& target) {
  // The pool puts the URL's path in front of this target; a bare host needs "/".
  http::request<http::string_body> req{http::verb::post, target.base_path.empty() ? "/" : "", 11};
  const std::int64_t timestamp = unix_ms() / 1000;
  req.set(http::field::content_type, "application/json");
  req.set(http::field::user_agent, "dynaseal/0.1");
  req.set("webhook-id", e.webhook_id);
  req.set("webhook-timestamp", std::to_string(timestamp));
  req.set("webhook-signature", webhook_signature(identity, e.webhook_id, timestamp, e.body));
  req.body() = e.body;
  return req;
}

// The database calls below build their lambdas outside any coroutine: GCC 12 destroys a
// closure with non-trivial captures twice when it is a temporary in a coroutine.
asio::awaitable<Result<std::vector<store::OutboxEvent>>> claim_due(DbWorker& db, std::string iss,
                                                                   std::int64_t now,
                                                                   std::size_t limit,
                                                                   std::int64_t lease) {
  return db.query<Result<std::vector<store::OutboxEvent>>>(
      [iss = std::move(iss), now, limit, lease](store::ServerStore& s) {
        return s.claim_due(iss, now, limit, lease);
      });
}

// The earliest next attempt over the pending events of `backends`.
asio::awaitable<Result<std::optional<std::int64_t>>> next_due(DbWorker& db,
                                                              std::vector<std::string> backends) {
  return db.query<Result<std::optional<std::int64_t>>>(
      [backends =
           std::move(backends)](store::ServerStore& s) -> Result<std::optional<std::int64_t>> {
        std::optional<std::int64_t> earliest;
        for (const std::string& iss : backends) {
          auto due = s.next_due_ms(iss);
          if (!due) return due;
          if (*due && (!earliest || **due < *earliest)) earliest = *due;
        }
        return earliest;
      });
}

asio::awaitable<Result<std::int64_t>> replay_dead(DbWorker& db, std::string iss,
                                                  std::string webhook_id) {
  return db.query<Result<std::int64_t>>(
      [iss = std::move(iss), id = std::move(webhook_id)](store::ServerStore& s) {
        return s.replay(iss, id, unix_ms());
      });
}

}  // namespace

std::chrono::milliseconds retry_delay(const OutboxOptions& o, std::int64_t attempt, double unit) {
  const double base = static_cast<double>(o.retry_base.count());
  const double cap = static_cast<double>(o.retry_max_delay.count());
  const double exponent = static_cast<double>(std::min<std::int64_t>(attempt - 1, 62));
  const double full = std::min(cap, base * std::pow(2.0, exponent));
  return std::chrono::milliseconds(static_cast<std::int64_t>(full / 2 + unit * full / 2));
}

UsageEventJson interrupted_event_around_use(const UsageRecord& record) {
  UsageRecord r = record;
  r.status = UsageStatus::interrupted;
  // The engine may have read the prompt before the server stopped: bill its bound, marked as
  // an estimate (a record from before prompt bounds existed has 0).
  r.usage = {record.prompt_bound, 0};
  r.usage_reported = false;
  r.estimate = record.prompt_bound > 0 ? UsageEstimate::prompt_bound : UsageEstimate::none;
  r.finished_at_ms = r.started_at_ms;
  r.response_sha256 = to_hex(sha256({}));
  return usage_event_json_around_use(r);
}

std::string interrupted_event_json(const UsageRecord& record) {
  return interrupted_event_around_use(record).with_use(record.use);
}

struct Outbox::Dispatcher {
  // Claimed events wait in `queued` until a delivery slot frees: a finished delivery starts the
  // next at once, and the database is asked for more only when the queue runs low.
  struct BackendState {
    std::size_t in_flight = 0;
    std::deque<store::OutboxEvent> queued;
    std::string url;
  };

  DbWorker& db;
  const BackendRegistry& backends;
  SigningKey identity;
  OutboxOptions options;
  Metrics& metrics;
  asio::io_context io{1};
  asio::steady_timer wake{io};
  asio::steady_timer heartbeat{io};  // replica_liveness.hpp
  asio::steady_timer journal{io};    // use_journal.hpp
  bool poked = false;
  bool stopping = false;
  std::atomic<bool> poke_posted{false};
  // Whether some backend has a callback URL (as of the loop's last turn): a finished event of
  // a backend without one has nothing to wake the dispatcher for.
  std::atomic<bool> any_deliverable{true};
  std::map<std::string, BackendState, std::less<>> state;
  std::map<std::string, std::unique_ptr<net::UpstreamPool>, std::less<>> pools;
  std::unordered_set<std::int64_t> in_flight_ids;
  std::unordered_set<net::UpstreamCall*> calls;  // cancelled at stop
  std::mt19937_64 rng{std::random_device{}()};
  std::thread thread;

  Dispatcher(DbWorker& d, const BackendRegistry& b, SigningKey k, OutboxOptions o, Metrics& m)
      : db(d), backends(b), identity(std::move(k)), options(o), metrics(m) {}

  void recovered(std::int64_t n) {
    metrics.outbox_recovered(static_cast<std::uint64_t>(n));
    wake_now();
  }
  void replayed(std::int64_t n) {
    metrics.outbox_journal_replayed(static_cast<std::uint64_t>(n));
    wake_now();
  }

  // From any thread: look for work now. Coalesced, so a burst of finishes costs one wake-up.
  void poke() {
    if (!any_deliverable.load(std::memory_order_relaxed)) return;
    if (poke_posted.exchange(true)) return;
    asio::post(io, [this] {
      poke_posted = false;
      wake_now();
    });
  }
  void wake_now() {
    poked = true;
    wake.cancel();
  }

  net::UpstreamPool* pool_for(const std::string& url) {
    auto it = pools.find(url);
    if (it != pools.end()) return it->second.get();
    auto target = net::parse_upstream_url(url);
    if (!target) return nullptr;
    net::ClientOptions client{.connect_timeout = options.delivery_timeout,
                              .first_byte_timeout = options.delivery_timeout,
                              .idle_timeout = options.delivery_timeout,
                              .total_timeout = options.delivery_timeout};
    auto pool = std::make_unique<net::UpstreamPool>(io.get_executor(), *target, client);
    return pools.emplace(url, std::move(pool)).first->second.get();
  }

  asio::awaitable<void> loop();
  asio::awaitable<bool> claim(const std::string& iss, const std::string& url);
  bool start_queued(const std::string& iss, BackendState& st);
  std::size_t window() const { return 4 * options.concurrency_per_backend; }
  asio::awaitable<void> deliver(std::string iss, std::string url, store::OutboxEvent e);
  asio::awaitable<void> sweep();
  void settle(const std::string& iss, const store::OutboxEvent& e, int status, std::string error);
};

asio::awaitable<void> Outbox::Dispatcher::loop() {
  auto next_sweep = std::chrono::steady_clock::now();
  while (!stopping) {
    bool claimed = false;
    std::vector<std::string> deliverable;
    auto snapshot = backends.snapshot();
    for (const auto& [id, backend] : snapshot->backends) {
      if (backend.callback_url.empty()) continue;
      deliverable.push_back(id);
      claimed = co_await claim(id, backend.callback_url) || claimed;
    }
    if (std::chrono::steady_clock::now() >= next_sweep) {
      co_await sweep();
      next_sweep = std::chrono::steady_clock::now() + kSweepEvery;
    }
    if (claimed || poked || stopping) {
      poked = false;
      continue;
    }
    // Only backends it can deliver to: the events of one without a callback URL wait, and
    // would otherwise be due at every turn.
    any_deliverable.store(!deliverable.empty(), std::memory_order_relaxed);
    Result<std::optional<std::int64_t>> due = std::optional<std::int64_t>{};
    if (!deliverable.empty()) due = co_await next_due(db, std::move(deliverable));
    auto sleep = options.poll;
    if (due && *due) {
      sleep = std::clamp(std::chrono::milliseconds(**due - unix_ms()), std::chrono::milliseconds(1),
                         options.poll);
    }
    wake.expires_after(sleep);
    co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
    poked = false;
  }
}

// Claims what backend `iss` has due, up to its window of queued and in-flight events, and
// starts delivering up to its concurrency.
asio::awaitable<bool> Outbox::Dispatcher::claim(const std::string& iss, const std::string& url) {
  BackendState& st = state[iss];
  st.url = url;
  const std::size_t have = st.in_flight + st.queued.size();
  if (have * 2 <= window()) {  // refill once half of the window is used up
    const std::int64_t now = unix_ms();
    auto events = co_await claim_due(db, iss, now, window() - have, ms(options.lease));
    if (!events) {
      spdlog::warn("outbox: cannot claim events for {}: {}", iss, to_string(events.error()));
      co_return false;
    }
    for (store::OutboxEvent& e : *events) {
      if (in_flight_ids.insert(e.id).second) st.queued.push_back(std::move(e));
    }
  }
  co_return start_queued(iss, st);
}

bool Outbox::Dispatcher::start_queued(const std::string& iss, BackendState& st) {
  bool started = false;
  while (st.in_flight < options.concurrency_per_backend && !st.queued.empty() && !stopping) {
    ++st.in_flight;
    started = true;
    asio::co_spawn(io, deliver(iss, st.url, std::move(st.queued.front())), asio::detached);
    st.queued.pop_front();
  }
  return started;
}

asio::awaitable<void> Outbox::Dispatcher::deliver(std::string iss, std::string url,
                                                  store::OutboxEvent e) {
  net::UpstreamPool* pool = pool_for(url);
  if (pool == nullptr) {
    settle(iss, e, 0, "callback URL unusable: " + url);
    co_return;
  }
  auto req = callback_request(identity, e, pool->target());
  net::UpstreamCall call(*pool);
  calls.insert(&call);
  auto failed = co_await call.send(req);
  int status = 0;
  Result<std::string> body;
  if (!failed) {
    status = static_cast<int>(call.head().result_int());
    body = co_await call.read_all(kMaxAckBody);
  }
  calls.erase(&call);
  if (failed) {
    settle(iss, e, 0, std::string(to_string(*failed)));
  } else if (!body) {
    settle(iss, e, status, std::string(to_string(body.error())));
  } else if (status < 200 || status > 299) {
    settle(iss, e, status, "http " + std::to_string(status));
  } else {
    settle(iss, e, status, "");
  }
}

void Outbox::Dispatcher::settle(const std::string& iss, const store::OutboxEvent& e, int status,
                                std::string error) {
  const std::int64_t now = unix_ms();
  if (stopping && !error.empty()) {
    // Cut off by our own shutdown: not the backend's failure. The lease ends at the next
    // start and the event goes out again then.
  } else if (error.empty()) {
    db.write(store::outbox::Delivered{.id = e.id, .now_ms = now, .http_status = status});
    metrics.outbox_delivered(static_cast<double>(now - e.queued_ms) / 1000.0);
  } else {
    const auto delay =
        retry_delay(options, e.attempts + 1, std::uniform_real_distribution<double>(0, 1)(rng));
    const bool dead = now + delay.count() - e.queued_ms > ms(options.max_age);
    spdlog::warn("outbox: delivery of {} to {} failed ({}){}", e.webhook_id, iss, error,
                 dead ? ", dead-lettered" : "");
    db.write(store::outbox::Failed{.id = e.id,
                                   .now_ms = now,
                                   .next_attempt_ms = now + delay.count(),
                                   .dead = dead,
                                   .error = std::move(error)});
    dead ? metrics.outbox_dead_lettered() : metrics.outbox_retried();
  }
  in_flight_ids.erase(e.id);
  BackendState& st = state[iss];
  --st.in_flight;
  start_queued(iss, st);
  if ((st.in_flight + st.queued.size()) * 2 <= window()) wake_now();
}

// Dead-letters what outlived max_age, drops old delivered events, refreshes the gauges.
asio::awaitable<void> Outbox::Dispatcher::sweep() {
  const std::int64_t now = unix_ms();
  const std::int64_t cutoff = now - ms(options.max_age);
  const std::int64_t retention = now - ms(options.retention);
  auto died = co_await db.query<Result<std::int64_t>>(
      [=](store::ServerStore& s) { return s.expire(cutoff, retention, now); });
  if (died && *died > 0) {
    spdlog::warn("outbox: {} events dead-lettered after max_age", *died);
    for (std::int64_t i = 0; i < *died; ++i) metrics.outbox_dead_lettered();
  }
  auto stats = co_await db.query<Result<store::OutboxStats>>(
      [](store::ServerStore& s) { return s.stats(); });
  if (stats) metrics.outbox_gauges(*stats);
}

Outbox::Outbox(DbWorker& db, const BackendRegistry& backends, SigningKey identity,
               std::string owner, OutboxOptions options, Metrics& metrics,
               std::unique_ptr<OpenLog> open_log)
    : db_(db), owner_(std::move(owner)), open_log_(std::move(open_log)) {
  if (open_log_) replay_open_log();
  // Before any request can open a record: last run's open records are interrupted events now.
  std::promise<Result<std::int64_t>> recovered;
  db_.run([&](store::ServerStore& s) { recovered.set_value(s.recover(owner_, unix_ms())); });
  auto n = recovered.get_future().get();
  if (!n) throw std::runtime_error("outbox: cannot recover unfinished records from the database");
  if (*n > 0)
    spdlog::warn("outbox: {} requests were cut off by a restart: reported as interrupted", *n);
  metrics.outbox_recovered(static_cast<std::uint64_t>(*n));
  dispatcher_ = std::make_unique<Dispatcher>(db, backends, std::move(identity), options, metrics);
}

Outbox::~Outbox() { stop(); }

// The records a crash left in the open log go to the database (Opens as this server's open
// records, which recover() then turns into interrupted events, and the Finalizes after them);
// the segments go once they are committed. A write the database has already is a conflict or
// not_found, which is fine: it was committed before the crash, and its segment simply had not
// gone yet.
void Outbox::replay_open_log() {
  auto recovered = OpenLog::read(open_log_->dir());
  if (!recovered) throw std::runtime_error("outbox: cannot read the open log");
  if (recovered->files.empty()) return;
  constexpr std::size_t kChunk = 1000;
  std::size_t added = 0;
  auto& writes = recovered->writes;
  for (std::size_t at = 0; at < writes.size(); at += kChunk) {
    std::vector<store::OutboxWrite> chunk;
    for (std::size_t i = at; i < std::min(at + kChunk, writes.size()); ++i) {
      if (auto* open = std::get_if<store::outbox::Open>(&writes[i])) {
        open->owner = owner_;  // one server owns a SQLite file and its log
      }
      chunk.push_back(std::move(writes[i]));
    }
    std::promise<Result<std::vector<store::OutboxWriteResult>>> applied;
    db_.run([&](store::ServerStore& s) { applied.set_value(s.apply(chunk)); });
    auto results = applied.get_future().get();
    if (!results) throw std::runtime_error("outbox: cannot replay the open log into the database");
    added += static_cast<std::size_t>(
        std::count_if(results->begin(), results->end(), [](const auto& r) { return !r; }));
  }
  if (added > 0 || recovered->damaged_bytes > 0) {
    spdlog::warn(
        "outbox: the open log held {} writes the database did not have ({} damaged "
        "bytes skipped)",
        added, recovered->damaged_bytes);
  }
  for (const auto& file : recovered->files) {
    std::error_code ec;
    std::filesystem::remove(file, ec);
    if (ec)
      throw std::runtime_error("outbox: cannot remove " + file.string() + ": " + ec.message());
  }
}

// Not a coroutine: GCC 12 destroys a closure with non-trivial captures twice when it is a
// temporary in a coroutine.
Result<void> Outbox::open_logged(const UsageRecord& record, std::string interrupted_body) {
  // Durable once appended; the database commits it in the background (see outbox.hpp).
  store::OutboxWrite write = open_write(record, std::move(interrupted_body), owner_);
  auto ticket = open_log_->append(write);
  log_failing_.store(!ticket, std::memory_order_relaxed);
  if (!ticket) {
    next_probe_ms_.store(unix_ms() + kProbeEvery.count(), std::memory_order_relaxed);
    return Unexpected(Error::store_unavailable);
  }
  db_.write_held(std::get<store::outbox::Open>(std::move(write)),
                 [ticket = std::move(*ticket), id = record.event_id,
                  use = record.use](store::OutboxWriteResult r) {
                   if (!r) return;
                   if (*r == Error::store_unavailable) return ticket.keep();
                   // Not expected: the use store was restored from these records.
                   spdlog::error("outbox: the record of event {} use {} existed before: {}", id,
                                 use, to_string(*r));
                 });
  return {};
}

asio::awaitable<Result<void>> Outbox::open(const UsageRecord& record,
                                           std::string interrupted_body) {
  if (open_log_) co_return open_logged(record, std::move(interrupted_body));
  auto result = co_await db_.write_durable(open_write(record, std::move(interrupted_body), owner_));
  if (!result) co_return Result<void>{};
  if (*result != Error::conflict) {
    next_probe_ms_.store(unix_ms() + kProbeEvery.count(), std::memory_order_relaxed);
  }
  co_return Unexpected(*result == Error::conflict ? Error::conflict : Error::store_unavailable);
}

void Outbox::finish(const UsageRecord& record) {
  Dispatcher* d = dispatcher_.get();
  store::OutboxWrite write = store::outbox::Finalize{
      .key = key_of(record), .body = usage_event_json(record), .now_ms = unix_ms()};
  // In the open log first: a kill before the commit still reports the real usage.
  std::optional<OpenLog::Ticket> ticket;
  if (open_log_) {
    if (auto appended = open_log_->append(write)) {
      ticket = std::move(*appended);
    } else {
      spdlog::error("outbox: event {} finalized in the database only: the open log refused it",
                    record.event_id);
    }
  }
  // Retried while the database refuses writes: its Open may be waiting too.
  db_.write_retried(std::move(write), [d, id = record.event_id,
                                       ticket = std::move(ticket)](store::OutboxWriteResult r) {
    if (!r) return d->poke();
    if (*r == Error::store_unavailable && ticket) ticket->keep();
    spdlog::error("outbox: cannot finalize event {}: {}", id, to_string(*r));
  });
}

bool Outbox::admit() {
  if (!db_.failing() && !log_failing_.load(std::memory_order_relaxed)) return true;
  const std::int64_t now = unix_ms();
  std::int64_t next = next_probe_ms_.load(std::memory_order_relaxed);
  return now >= next && next_probe_ms_.compare_exchange_strong(next, now + kProbeEvery.count(),
                                                               std::memory_order_relaxed);
}

void Outbox::start(bool watch_replicas, store::AsyncUseStore* uses) {
  Dispatcher& d = *dispatcher_;
  asio::co_spawn(d.io, d.loop(), asio::detached);
  if (watch_replicas) {
    asio::co_spawn(d.io,
                   keep_alive(db_, owner_, d.options, d.heartbeat, d.stopping,
                              [&d](std::int64_t n) { d.recovered(n); }),
                   asio::detached);
  }
  if (uses != nullptr && uses->journals()) {
    asio::co_spawn(d.io,
                   replay_journal(*uses, db_, d.backends, owner_, d.options, d.journal, d.stopping,
                                  [&d](std::int64_t n) { d.replayed(n); }),
                   asio::detached);
  }
  d.thread = std::thread([&d] {
    name_this_thread("outbox");
    d.io.run();
  });
}

void Outbox::drain(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Open records now belong to requests the shutdown cut off: they become interrupted events
  // at the next start, or, when this replica does not come back, through another replica's
  // recover_stale after replica_timeout. (Not here: recover() also ends leases, and deliveries
  // of this process are still under way.)
  for (;;) {
    std::promise<Result<store::OutboxStats>> stats;
    db_.run([&stats](store::ServerStore& s) { stats.set_value(s.stats()); });
    auto now = stats.get_future().get();
    if (!now || now->pending == 0) return;
    if (std::chrono::steady_clock::now() >= deadline) {
      spdlog::info("outbox: {} events still pending at shutdown; they go out at the next start",
                   now->pending);
      return;
    }
    dispatcher_->poke();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// Graceful: the loop ends, deliveries under way are cancelled, and io.run() returns once every
// coroutine has finished, so nothing is left suspended on a destroyed io_context.
void Outbox::stop() {
  Dispatcher& d = *dispatcher_;
  asio::post(d.io, [&d] {
    d.stopping = true;
    d.wake_now();
    d.heartbeat.cancel();
    d.journal.cancel();
    for (net::UpstreamCall* call : d.calls) call->cancel();
  });
  if (d.thread.joinable()) d.thread.join();
}

asio::awaitable<Result<store::OutboxStats>> Outbox::stats() {
  co_return co_await db_.query<Result<store::OutboxStats>>(
      [](store::ServerStore& s) { return s.stats(); });
}

asio::awaitable<Result<std::vector<store::DeadLetter>>> Outbox::dead_letters(std::size_t limit) {
  co_return co_await db_.query<Result<std::vector<store::DeadLetter>>>(
      [limit](store::ServerStore& s) { return s.dead_letters(limit); });
}

asio::awaitable<Result<std::int64_t>> Outbox::replay(std::string iss, std::string webhook_id) {
  auto n = co_await replay_dead(db_, std::move(iss), std::move(webhook_id));
  if (n && *n > 0) dispatcher_->poke();
  co_return n;
}

}  // namespace dynaseal::server
