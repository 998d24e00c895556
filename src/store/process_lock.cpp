#include "store/process_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "store/key_file.hpp"

namespace dynaseal::store {

ProcessLock ProcessLock::acquire(const std::filesystem::path& db) {
  const std::string path = db.string() + ".lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    char holder[32] = {};
    const ssize_t n = ::pread(fd, holder, sizeof holder - 1, 0);
    ::close(fd);
    if (error == EWOULDBLOCK) {
      throw std::runtime_error(db.string() + " is in use by another process (pid " +
                               std::string(holder, n > 0 ? static_cast<std::size_t>(n) : 0) +
                               ", lock " + path + "): one server or backend per database");
    }
    throw std::runtime_error("cannot lock " + path + ": " + std::strerror(error));
  }
  // The pid is only for the message above: the lock is held whether or not it is written.
  const std::string pid = std::to_string(::getpid());
  [[maybe_unused]] const bool noted =
      ::ftruncate(fd, 0) == 0 && ::pwrite(fd, pid.data(), pid.size(), 0) >= 0;
  return ProcessLock(fd);
}

std::optional<ProcessLock> ProcessLock::acquire_sqlite(const std::filesystem::path& db) {
  if (db.empty() || db == ":memory:") return std::nullopt;
  // A database others may write is state others may rewrite (registry, outbox, ledger).
  if (auto safe = check_not_shared_writable(db); !safe) {
    throw std::runtime_error(safe.error() == Error::key_file_unsafe
                                 ? db.string() + " can be written by group or others: chmod 600 it"
                                 : "cannot check the mode of " + db.string());
  }
  return acquire(db);
}

ProcessLock::~ProcessLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

}  // namespace dynaseal::store
