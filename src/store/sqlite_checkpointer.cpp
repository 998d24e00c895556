#include "store/sqlite_checkpointer.hpp"

#include <sqlite3.h>
#include <sys/resource.h>
#include <unistd.h>

#include <stdexcept>

#include <spdlog/spdlog.h>

namespace dynaseal::store {
namespace {

constexpr int kBehindFactor = 16;  // the safety valve: see the header
constexpr int kBackgroundNice = 10;

Sqlite open_second(const std::filesystem::path& path) {
  auto own = Sqlite::open(path, {.busy_timeout_ms = 5000, .create = false});
  if (!own) throw std::runtime_error("cannot open a checkpoint connection to " + path.string());
  return std::move(*own);
}

}  // namespace

SqliteCheckpointer::SqliteCheckpointer(Sqlite& db, const std::filesystem::path& path, int wal_pages)
    : db_(db), own_(open_second(path)), wal_pages_(wal_pages) {
  thread_ = std::thread([this] { loop(); });
  sqlite3_wal_hook(db_.handle(), &SqliteCheckpointer::on_commit, this);  // auto-checkpoint off
}

SqliteCheckpointer::~SqliteCheckpointer() {
  sqlite3_wal_autocheckpoint(db_.handle(), 1000);  // back to SQLite's own hook
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

long SqliteCheckpointer::completed() const {
  std::lock_guard lock(mutex_);
  return completed_;
}

long SqliteCheckpointer::wakeups() const {
  std::lock_guard lock(mutex_);
  return wakeups_;
}

// Runs on the committing thread, after each commit, with the WAL's size in pages.
int SqliteCheckpointer::on_commit(void* self, sqlite3* db, const char* name, int pages) {
  auto* c = static_cast<SqliteCheckpointer*>(self);
  if (pages >= kBehindFactor * c->wal_pages_) {
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    return SQLITE_OK;
  }
  if (pages < c->woken_at_) c->woken_at_ = 0;  // the WAL was restarted
  if (pages - c->woken_at_ >= c->wal_pages_) {
    c->woken_at_ = pages;
    bool wake = false;
    {
      std::lock_guard lock(c->mutex_);
      ++c->wakeups_;
      wake = !c->due_;
      c->due_ = true;
    }
    if (wake) c->wake_.notify_one();
  }
  return SQLITE_OK;
}

void SqliteCheckpointer::loop() {
  // Background work: the request threads go first when they compete for a core.
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kBackgroundNice);
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return due_ || stopping_; });
    if (stopping_) return;
    due_ = false;
    lock.unlock();
    int log = 0, copied = 0;
    const int rc =
        sqlite3_wal_checkpoint_v2(own_.handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
      spdlog::warn("sqlite checkpoint failed: {}", own_.error_message());
    }
    lock.lock();
    if (rc == SQLITE_OK) ++completed_;
  }
}

}  // namespace dynaseal::store
