#include "store/key_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace dynaseal::store {
namespace {

// Closes a descriptor on every path out of a function.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

Result<std::string> read_fd(int fd, std::size_t max_bytes) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Unexpected(Error::io_error);
    if (n == 0) return out;
    if (out.size() + static_cast<std::size_t>(n) > max_bytes) return Unexpected(Error::io_error);
    out.append(buf, static_cast<std::size_t>(n));
  }
}

}  // namespace

Result<void> write_new_secret_file(const std::filesystem::path& path, std::string_view content) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) return Unexpected(Error::io_error);
  // The umask can only narrow 0600, but make the mode explicit whatever it is.
  if (::fchmod(fd.get(), 0600) != 0 || !write_all(fd.get(), content) || ::fsync(fd.get()) != 0) {
    ::unlink(path.c_str());
    return Unexpected(Error::io_error);
  }
  return {};
}

Result<void> write_private_key_file(const std::filesystem::path& path, const SigningKey& key) {
  std::string jwk = private_jwk_json(key) + "\n";
  auto written = write_new_secret_file(path, jwk);
  std::fill(jwk.begin(), jwk.end(), '\0');
  return written;
}

Result<SigningKey> read_private_key_file(const std::filesystem::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Unexpected(Error::io_error);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return Unexpected(Error::io_error);
  if ((st.st_mode & 077) != 0) return Unexpected(Error::key_file_unsafe);
  auto text = read_fd(fd.get(), kMaxKeyFileBytes);
  if (!text) return Unexpected(text.error());
  auto key = parse_private_jwk(*text);
  std::fill(text->begin(), text->end(), '\0');
  return key;
}

Result<std::vector<PublicJwk>> read_jwks_file(const std::filesystem::path& path) {
  auto text = read_small_file(path, kMaxKeyFileBytes);
  if (!text) return Unexpected(text.error());
  return parse_jwks(*text);
}

Result<std::string> read_small_file(const std::filesystem::path& path, std::size_t max_bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Unexpected(Error::io_error);
  return read_fd(fd.get(), max_bytes);
}

Result<std::string> read_secret_file(const std::filesystem::path& path, std::size_t max_bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Unexpected(Error::io_error);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return Unexpected(Error::io_error);
  if ((st.st_mode & 077) != 0) return Unexpected(Error::key_file_unsafe);
  return read_fd(fd.get(), max_bytes);
}

Result<void> check_not_shared_writable(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return errno == ENOENT ? Result<void>() : Unexpected(Error::io_error);
  if ((st.st_mode & 022) != 0) return Unexpected(Error::key_file_unsafe);
  return {};
}

}  // namespace dynaseal::store
