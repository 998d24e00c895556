#include "backend/usage_writer.hpp"

#include <algorithm>
#include <iterator>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "core/thread_name.hpp"

namespace dynaseal::backend {

namespace asio = boost::asio;

UsageWriter::UsageWriter(std::unique_ptr<BackendStore> store)
    : store_(std::move(store)), thread_([this] {
        name_this_thread("usage-writer");
        loop();
      }) {}

UsageWriter::~UsageWriter() { stop(); }

void UsageWriter::record(NewEvent event, Done done) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      queue_.push_back({std::move(event), std::move(done)});
      wake_.notify_one();
      return;
    }
  }
  done(Unexpected(Error::store_unavailable));
}

asio::awaitable<Result<Recorded>> UsageWriter::record_durable(NewEvent&& e) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<Recorded>)>(
      [this](auto handler, NewEvent pending) {
        auto executor = asio::get_associated_executor(handler);
        // The queue holds copyable functions; the coroutine's handler is move-only.
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        record(std::move(pending), [executor, shared](Result<Recorded> r) {
          asio::post(executor, [shared, r = std::move(r)]() mutable { (*shared)(std::move(r)); });
        });
      },
      asio::use_awaitable, std::move(e));
}

void UsageWriter::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

std::size_t UsageWriter::transactions() const {
  std::lock_guard lock(mutex_);
  return transactions_;
}

void UsageWriter::loop() {
  std::vector<Pending> batch;
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) break;  // stopping, and everything is recorded
    const std::size_t n = std::min(queue_.size(), kMaxBatch);
    batch.assign(std::make_move_iterator(queue_.begin()),
                 std::make_move_iterator(queue_.begin() + static_cast<std::ptrdiff_t>(n)));
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    lock.unlock();
    commit(batch);
    batch.clear();
    lock.lock();
    ++transactions_;
  }
}

void UsageWriter::commit(std::vector<Pending>& batch) {
  std::vector<NewEvent> events;
  events.reserve(batch.size());
  for (Pending& p : batch) events.push_back(std::move(p.event));
  auto results = store_->record_events(events);
  if (!results || results->size() != batch.size()) {
    spdlog::error("callbacks: a transaction of {} events failed: {}", batch.size(),
                  to_string(results ? Error::internal : results.error()));
    for (Pending& p : batch) p.done(Unexpected(Error::store_unavailable));
    return;
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    Result<Recorded>& r = (*results)[i];
    if (!r) spdlog::error("callbacks: recording one event failed: {}", to_string(r.error()));
    batch[i].done(std::move(r));
  }
}

}  // namespace dynaseal::backend
