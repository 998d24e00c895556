// One long-running process per database file: the server and the backend hold an exclusive
// lock on "<db>.lock" for as long as they run, so a second server or backend started on the
// same SQLite file (or the same open log beside it) refuses to start instead of serving with
// state of its own (a single-use key served twice). CLI commands that read or change the
// database next to a running process do not take it. The lock is flock(2): the kernel drops it
// when the process dies, however it dies, so a crash never leaves a stale lock behind.
//
//   auto lock = ProcessLock::acquire("server.db");   // throws std::runtime_error when held
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace dynaseal::store {

class ProcessLock {
 public:
  // Locks "<db>.lock" (created 0600 with this process's pid in it). Throws std::runtime_error
  // naming the file and the holder's pid when another process holds it, or when it cannot be
  // opened.
  static ProcessLock acquire(const std::filesystem::path& db);
  // acquire() for a SQLite database path; nothing for none (PostgreSQL) or ":memory:". Also
  // refuses (std::runtime_error) a database file that group or others may write.
  static std::optional<ProcessLock> acquire_sqlite(const std::filesystem::path& db);

  ProcessLock(ProcessLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  ProcessLock& operator=(ProcessLock&&) = delete;
  ProcessLock(const ProcessLock&) = delete;
  ~ProcessLock();

 private:
  explicit ProcessLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace dynaseal::store
