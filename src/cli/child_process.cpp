#include "cli/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>
#include <thread>

namespace dynaseal::cli {
namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

int exit_status(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 255;
}

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& args,
                           const std::filesystem::path& log_file) {
  std::vector<std::string> owned = args;
  owned.insert(owned.begin(), "/proc/self/exe");
  std::vector<char*> argv;
  for (std::string& a : owned) argv.push_back(a.data());
  argv.push_back(nullptr);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  const int log = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log < 0 || null < 0) throw std::runtime_error("cannot open " + log_file.string());
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    // Only async-signal-safe calls between fork and exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(null, 0);
    ::dup2(out[1], 1);
    ::dup2(log, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(log);
  ::close(null);
  out_ = out[0];
}

ChildProcess::~ChildProcess() {
  if (!status_) stop(std::chrono::seconds(5));
  if (out_ >= 0) ::close(out_);
}

std::optional<std::string> ChildProcess::wait_for_line(std::string_view prefix,
                                                       std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    std::size_t start = 0;
    for (std::size_t nl; (nl = buffer_.find('\n', start)) != std::string::npos; start = nl + 1) {
      const std::string_view line(buffer_.data() + start, nl - start);
      if (line.starts_with(prefix)) {
        std::string rest(line.substr(prefix.size()));
        buffer_.erase(0, nl + 1);
        return rest;
      }
    }
    buffer_.erase(0, start);
    pollfd p{out_, POLLIN, 0};
    if (::poll(&p, 1, remaining_ms(deadline)) <= 0) return std::nullopt;
    char chunk[4096];
    const ssize_t n = ::read(out_, chunk, sizeof chunk);
    if (n <= 0) return std::nullopt;  // the child closed stdout: it is gone
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
}

std::optional<std::pair<int, std::string>> ChildProcess::read_to_end(
    std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string out = std::move(buffer_);
  for (;;) {
    pollfd p{out_, POLLIN, 0};
    if (::poll(&p, 1, remaining_ms(deadline)) <= 0) {
      stop(std::chrono::seconds(1));
      return std::nullopt;
    }
    char chunk[4096];
    const ssize_t n = ::read(out_, chunk, sizeof chunk);
    if (n <= 0) break;
    out.append(chunk, static_cast<std::size_t>(n));
  }
  auto status = reap(std::chrono::milliseconds(remaining_ms(deadline)));
  if (!status) return std::nullopt;
  return std::pair{*status, std::move(out)};
}

int ChildProcess::stop(std::chrono::milliseconds grace) {
  if (status_) return *status_;
  ::kill(pid_, SIGTERM);
  if (auto s = reap(grace)) return *s;
  ::kill(pid_, SIGKILL);
  return reap(std::chrono::seconds(5)).value_or(255);
}

std::optional<int> ChildProcess::reap(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int ws = 0;
    const pid_t r = ::waitpid(pid_, &ws, WNOHANG);
    if (r == pid_) return status_ = exit_status(ws);
    if (r < 0) return status_ = 255;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::optional<std::pair<int, std::string>> run_to_end(const std::vector<std::string>& args,
                                                      const std::filesystem::path& log_file,
                                                      std::chrono::milliseconds timeout) {
  ChildProcess child(args, log_file);
  return child.read_to_end(timeout);
}

}  // namespace dynaseal::cli
