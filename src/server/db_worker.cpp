#include "server/db_worker.hpp"

#include <spdlog/spdlog.h>

namespace dynaseal::server {
namespace {

constexpr auto kRetryEvery = std::chrono::milliseconds(200);

}  // namespace

DbWorker::DbWorker(std::unique_ptr<store::ServerStore> store)
    : store_(std::move(store)), thread_([this] { loop(); }) {}

DbWorker::~DbWorker() { stop(); }

void DbWorker::write(store::OutboxWrite write, WriteDone done) {
  {
    std::lock_guard lock(mutex_);
    writes_.push_back({std::move(write), std::move(done)});
  }
  wake_.notify_one();
}

void DbWorker::run(Task task) {
  {
    std::lock_guard lock(mutex_);
    tasks_.push_back(std::move(task));
  }
  wake_.notify_one();
}

void DbWorker::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_one();
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
  std::vector<PendingWrite> batch;
  std::vector<PendingWrite> retry;
  std::vector<Task> tasks;
  std::unique_lock lock(mutex_);
  for (;;) {
    if (retry.empty()) {
      wake_.wait(lock, [this] { return stopping_ || !writes_.empty() || !tasks_.empty(); });
    } else {
      wake_.wait_for(lock, kRetryEvery, [this] { return stopping_; });
    }
    const bool last = stopping_;
    batch = std::move(retry);
    retry.clear();
    for (auto& w : writes_) batch.push_back(std::move(w));
    writes_.clear();
    tasks.swap(tasks_);
    lock.unlock();

    if (!batch.empty()) retry = commit(batch);
    batch.clear();
    for (Task& t : tasks) t(*store_);
    tasks.clear();

    lock.lock();
    if (last && writes_.empty() && tasks_.empty()) break;
  }
  if (!retry.empty()) {
    spdlog::error("outbox: {} bookkeeping writes could not be stored at shutdown", retry.size());
  }
}

std::vector<DbWorker::PendingWrite> DbWorker::commit(std::vector<PendingWrite>& batch) {
  std::vector<store::OutboxWrite> writes;
  writes.reserve(batch.size());
  for (const PendingWrite& p : batch) writes.push_back(p.write);
  auto results = store_->apply(writes);
  std::vector<PendingWrite> retry;
  if (!results) {
    spdlog::error("outbox: a transaction of {} writes failed: {}", batch.size(),
                  to_string(results.error()));
    for (PendingWrite& p : batch) {
      if (p.done) {
        p.done(Error::store_unavailable);
      } else {
        retry.push_back(std::move(p));
      }
    }
    return retry;
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].done) batch[i].done((*results)[i]);
  }
  return retry;
}

}  // namespace dynaseal::server
