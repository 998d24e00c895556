// WAL checkpoints on a thread of their own, so that commits do not run them.
//
// In WAL mode every commit appends pages to the WAL; a checkpoint copies them back into the
// database file and, with synchronous=NORMAL, syncs both files to disk. By default SQLite runs
// it inside the commit that took the WAL past 1,000 pages: that commit, and every request whose
// write waits behind it, then waits for two fsyncs (milliseconds on a real disk). Here the
// connection's automatic checkpoints are off; a commit that adds `wal_pages` pages to the WAL
// since the last wake-up only wakes this thread, which checkpoints (PASSIVE: it never waits for
// readers or writers) on a second connection of its own, at a lower CPU priority than the
// request threads.
//
// Once per `wal_pages` new pages, not after every commit past `wal_pages`: a checkpoint does not
// restart the WAL itself (the next writer does, when it finds the WAL wholly copied), so the WAL
// may stay past `wal_pages` for a while, and a wake-up per commit was a checkpoint (two fsyncs)
// per commit: 140 fsyncs/s at 6,000 requests/s, 7 % of the server's CPU.
//
// Catching up: a PASSIVE pass copies the pages that were in the WAL when it began. Under steady
// writes some commit lands during it (its two fsyncs alone take longer than the DB thread's gap
// between commits on a slow disk), so the WAL is almost never wholly copied when a transaction
// begins; it then never restarts and grows to the safety valve below, whose checkpoint runs on
// the committing thread (3-4 ms of a request core every 2.3 s at half load: session 7's latency
// tail). So the bulk pass is followed by a FULL one over what was committed meanwhile: it holds
// the writers' lock while it copies those few pages, so nothing lands behind it, and the next
// transaction starts the WAL over. It only tries the lock, between transactions; a commit that
// comes while it holds the lock waits for it (SQLite's busy handler: a millisecond or two, on
// the DB thread, which no request waits for).
//
// Safety valve: should the thread fall far behind (the WAL reaches 16 × wal_pages, e.g. a
// long-lived reader holds old pages), the committing connection checkpoints itself, as SQLite
// would by default, so the WAL stays bounded.
//
// The checkpointer must be destroyed before the connection it watches (it removes its hook).
//
//   auto db = Sqlite::open(path);
//   SqliteCheckpointer checkpointer(*db, path);
#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "store/sqlite.hpp"

struct sqlite3;

namespace dynaseal::store {

class SqliteCheckpointer {
 public:
  // Throws std::runtime_error when the second connection cannot be opened.
  SqliteCheckpointer(Sqlite& db, const std::filesystem::path& path, int wal_pages = 1000);
  ~SqliteCheckpointer();
  SqliteCheckpointer(const SqliteCheckpointer&) = delete;
  SqliteCheckpointer& operator=(const SqliteCheckpointer&) = delete;

  // Checkpoints completed by the thread, and the wake-ups that asked for them (for tests).
  long completed() const;
  long wakeups() const;
  // Checkpoints the safety valve made the committing connection run, and WAL restarts seen by
  // the committing connection (for tests and benchmarks: both are read without a lock).
  long valve_checkpoints() const { return valve_.load(std::memory_order_relaxed); }
  long restarts() const { return restarts_.load(std::memory_order_relaxed); }

 private:
  static int on_commit(void* self, sqlite3* db, const char* name, int pages);
  void loop();
  // One checkpoint on the thread's connection: SQLITE_OK, _BUSY or an error.
  int pass(int mode, int& log, int& copied);
  // The FULL pass after a bulk pass that copied up to `copied` (see the header).
  int catch_up(int copied);

  Sqlite& db_;
  Sqlite own_;
  const int wal_pages_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  int woken_at_ = 0;                   // the WAL's size at the last wake-up (committing thread)
  std::atomic<int> wal_pages_now_{0};  // the WAL's size at the last commit
  std::atomic<long> valve_{0};
  std::atomic<long> restarts_{0};
  long wakeups_ = 0;
  bool due_ = false;
  bool stopping_ = false;
  long completed_ = 0;
  std::thread thread_;
};

}  // namespace dynaseal::store
