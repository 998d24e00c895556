#include "server/db_worker.hpp"

#include <spdlog/spdlog.h>

#include "core/thread_name.hpp"

namespace dynaseal::server {
namespace {

constexpr auto kRetryEvery = std::chrono::milliseconds(200);

}  // namespace

DbWorker::DbWorker(std::unique_ptr<store::ServerStore> store, std::chrono::microseconds gather,
                   std::chrono::milliseconds hold)
    : store_(std::move(store)), gather_(gather), hold_(hold), thread_([this] {
        name_this_thread("db");
        loop();
      }) {}

DbWorker::~DbWorker() { stop(); }

void DbWorker::Batch::push(store::OutboxWrite write, WriteDone done, bool retry, bool hold) {
  writes.push_back(std::move(write));
  dones.push_back(std::move(done));
  retried.push_back(retry ? 1 : 0);
  held.push_back(hold ? 1 : 0);
}

void DbWorker::Batch::append(Batch& other) {
  for (std::size_t i = 0; i < other.writes.size(); ++i) {
    push(std::move(other.writes[i]), std::move(other.dones[i]), other.retried[i] != 0,
         other.held[i] != 0);
  }
  other.clear();
}

void DbWorker::Batch::clear() {
  writes.clear();
  dones.clear();
  retried.clear();
  held.clear();
}

void DbWorker::write(store::OutboxWrite write, WriteDone done) {
  const bool retry = !done;
  queue(std::move(write), std::move(done), retry);
}

void DbWorker::write_retried(store::OutboxWrite write, WriteDone committed) {
  queue(std::move(write), std::move(committed), true);
}

void DbWorker::write_held(store::outbox::Open open, WriteDone committed) {
  queue(std::move(open), std::move(committed), true, hold_.count() > 0);
}

// A busy worker looks at the queue again before it sleeps, so a notify (a futex call) is needed
// only when it is asleep: most writes under load cost no system call.
void DbWorker::queue(store::OutboxWrite write, WriteDone done, bool retry, bool hold) {
  bool asleep = false;
  {
    std::lock_guard lock(mutex_);
    queued_.push(std::move(write), std::move(done), retry, hold);
    asleep = sleeping_;
  }
  if (asleep) wake_.notify_one();
}

void DbWorker::run(Task task) {
  bool asleep = false;
  {
    std::lock_guard lock(mutex_);
    tasks_.push_back(std::move(task));
    asleep = sleeping_;
  }
  if (asleep) wake_.notify_one();
}

void DbWorker::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_one();  // unconditionally: the worker may be in its retry wait
  if (thread_.joinable()) thread_.join();
}

asio::awaitable<store::OutboxWriteResult> DbWorker::write_durable(store::OutboxWrite w) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(store::OutboxWriteResult)>(
      [this](auto handler, store::OutboxWrite pending) {
        auto executor = asio::get_associated_executor(handler);
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        write(std::move(pending), [executor, shared](store::OutboxWriteResult r) {
          asio::post(executor, [shared, r] { (*shared)(r); });
        });
      },
      asio::use_awaitable, std::move(w));
}

void DbWorker::loop() {
  Batch batch;
  Batch retry;
  std::vector<Task> tasks;
  std::unique_lock lock(mutex_);
  Batch incoming;
  for (;;) {
    sleeping_ = true;
    auto work = [this] { return stopping_ || !queued_.empty() || !tasks_.empty(); };
    if (!retry.empty()) {
      wake_.wait_for(lock, kRetryEvery, [this] { return stopping_; });
    } else if (!held_until_.empty()) {
      wake_.wait_until(lock, held_until_.front().first, work);
    } else {
      wake_.wait(lock, work);
    }
    sleeping_ = false;
    // Writers do not notify while sleeping_ is false: the window costs them nothing.
    if (gather_.count() > 0 && !stopping_ && tasks_.empty()) {
      wake_.wait_for(lock, gather_, [this] { return stopping_; });
    }
    const bool last = stopping_;
    batch.append(retry);
    incoming.append(queued_);
    tasks.swap(tasks_);
    lock.unlock();

    pair_held(incoming, batch, Clock::now(), last);
    if (!batch.empty()) commit(batch, retry);
    batch.clear();
    for (Task& t : tasks) t(*store_);
    tasks.clear();

    lock.lock();
    if (last && queued_.empty() && tasks_.empty() && held_.empty()) break;
  }
  if (!retry.empty()) {
    spdlog::error("outbox: {} writes could not be stored at shutdown", retry.writes.size());
    for (WriteDone& done : retry.dones) {
      if (done) done(Error::store_unavailable);
    }
  }
}

void DbWorker::pair_held(Batch& batch, Batch& out, Clock::time_point now, bool all) {
  auto release = [&](const std::string& name) {
    auto it = held_.find(name);
    if (it == held_.end()) return;
    out.push(std::move(it->second.open), std::move(it->second.done), true);
    held_.erase(it);
  };
  while (!held_until_.empty() && (all || held_until_.front().first <= now)) {
    release(held_until_.front().second);
    held_until_.pop_front();
  }
  for (std::size_t i = 0; i < batch.writes.size(); ++i) {
    store::OutboxWrite& w = batch.writes[i];
    if (batch.held[i] != 0 && !all) {
      std::string name = std::get<store::outbox::Open>(w).key.name();
      if (!held_.contains(name)) {  // a second Open of one key goes on, to conflict
        held_until_.emplace_back(now + hold_, name);
        held_.emplace(std::move(name), Held{std::move(w), std::move(batch.dones[i])});
        continue;
      }
    }
    if (const auto* fin = std::get_if<store::outbox::Finalize>(&w); fin && !held_.empty()) {
      release(fin->key.name());  // just before it: one finished record
    }
    out.push(std::move(w), std::move(batch.dones[i]), batch.retried[i] != 0);
  }
  batch.clear();
}

void DbWorker::commit(Batch& batch, Batch& retry) {
  auto results = store_->apply(batch.writes);
  failing_.store(!results, std::memory_order_relaxed);
  if (results) {
    for (std::size_t i = 0; i < batch.writes.size(); ++i) {
      if (batch.dones[i]) batch.dones[i]((*results)[i]);
    }
    return;
  }
  spdlog::error("outbox: a transaction of {} writes failed: {}", batch.writes.size(),
                to_string(results.error()));
  for (std::size_t i = 0; i < batch.writes.size(); ++i) {
    if (batch.retried[i] != 0) {
      retry.push(std::move(batch.writes[i]), std::move(batch.dones[i]), true);
    } else {
      batch.dones[i](Error::store_unavailable);
    }
  }
}

}  // namespace dynaseal::server
