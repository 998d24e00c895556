// WAL checkpoints on a thread of their own, so that no commit waits for one.
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
// Once per `wal_pages` new pages, not after every commit past `wal_pages`: a PASSIVE checkpoint
// does not restart the WAL (only a writer that finds it wholly copied does), and under steady
// writes the writer rarely does, so the WAL stays past `wal_pages` and a wake-up per commit was a
// checkpoint (two fsyncs) per commit: 140 fsyncs/s at 6,000 requests/s, 7 % of the server's CPU.
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

 private:
  static int on_commit(void* self, sqlite3* db, const char* name, int pages);
  void loop();

  Sqlite& db_;
  Sqlite own_;
  const int wal_pages_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  int woken_at_ = 0;  // the WAL's size at the last wake-up (committing thread only)
  long wakeups_ = 0;
  bool due_ = false;
  bool stopping_ = false;
  long completed_ = 0;
  std::thread thread_;
};

}  // namespace dynaseal::store
