#include "store/sqlite_checkpointer.hpp"

#include <sqlite3.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "core/thread_name.hpp"

namespace dynaseal::store {
namespace {

constexpr int kBehindFactor = 16;  // the safety valve: see the header
// The catch-up pass (see the header) tries for the writers' lock this many times, this far
// apart, before it leaves the rest to the next wake-up.
constexpr int kCatchUpAttempts = 10;
constexpr auto kCatchUpRetry = std::chrono::milliseconds(1);
constexpr int kBackgroundNice = 10;

Sqlite open_second(const std::filesystem::path& path) {
  auto own = Sqlite::open(path, {.busy_timeout_ms = 5000, .create = false});
  if (!own) throw std::runtime_error("cannot open a checkpoint connection to " + path.string());
  // Opened; from now on no busy handler: the catch-up pass only tries the writers' lock.
  sqlite3_busy_timeout(own->handle(), 0);
  return std::move(*own);
}

}  // namespace

SqliteCheckpointer::SqliteCheckpointer(Sqlite& db, const std::filesystem::path& path, int wal_pages)
    : db_(db), own_(open_second(path)), wal_pages_(wal_pages) {
  thread_ = std::thread([this] {
    name_this_thread("sqlite-ckpt");
    loop();
  });
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
  if (pages < c->wal_pages_now_.exchange(pages, std::memory_order_relaxed)) {
    c->restarts_.fetch_add(1, std::memory_order_relaxed);  // this commit started the WAL over
    c->woken_at_ = 0;
  }
  if (pages >= kBehindFactor * c->wal_pages_) {
    c->valve_.fetch_add(1, std::memory_order_relaxed);
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    return SQLITE_OK;
  }
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
    int rc = pass(SQLITE_CHECKPOINT_PASSIVE, log, copied);
    if (rc == SQLITE_OK) rc = catch_up(copied);
    lock.lock();
    if (rc == SQLITE_OK) ++completed_;
  }
}

// What was committed during the bulk pass, copied in FULL mode: with the writers' lock held,
// so no commit lands behind it, and the next transaction finds the WAL wholly copied. The lock
// is only tried (no busy handler): a transaction under way is left alone, and tried again.
int SqliteCheckpointer::catch_up(int copied) {
  int rc = SQLITE_OK;
  for (int attempt = 0; attempt < kCatchUpAttempts; ++attempt) {
    if (wal_pages_now_.load(std::memory_order_relaxed) <= copied) break;  // nothing behind
    if (attempt > 0) std::this_thread::sleep_for(kCatchUpRetry);
    int log = 0;
    rc = pass(SQLITE_CHECKPOINT_FULL, log, copied);
    if (rc != SQLITE_BUSY) break;
  }
  return rc;
}

int SqliteCheckpointer::pass(int mode, int& log, int& copied) {
  const int rc = sqlite3_wal_checkpoint_v2(own_.handle(), nullptr, mode, &log, &copied);
  if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
    spdlog::warn("sqlite checkpoint failed: {}", own_.error_message());
  }
  return rc;
}

}  // namespace dynaseal::store
