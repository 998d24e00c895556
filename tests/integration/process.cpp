#include "process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <thread>

#include "test_support.hpp"

namespace dynaseal::integration {
namespace {

using Clock = std::chrono::steady_clock;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int kTimeScale = 4;
#else
constexpr int kTimeScale = 1;
#endif

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

std::string tail(const std::string& text, std::size_t max) {
  return text.size() <= max ? text : "...\n" + text.substr(text.size() - max);
}

}  // namespace

std::chrono::milliseconds scaled(std::chrono::milliseconds base) { return base * kTimeScale; }

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// ---- Process -----------------------------------------------------------------------------

Process::Process(std::vector<std::string> args, std::filesystem::path log_file)
    : log_file_(std::move(log_file)) {
  // DYNASEAL_BIN overrides the executable under test (e.g. a patched or sanitized build).
  const char* bin = std::getenv("DYNASEAL_BIN");
  args.insert(args.begin(), bin != nullptr && *bin != '\0' ? bin : DYNASEAL_BINARY);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  const int log = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log < 0 || null < 0) throw std::runtime_error("cannot open " + log_file_.string());
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    // Only async-signal-safe calls between fork and exec: the test process has threads.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a crashed test
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
  stdout_fd_ = out[0];
}

Process::~Process() {
  stop(scaled(10s));
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
}

std::string Process::wait_for_line(std::string_view prefix, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    std::size_t start = 0;
    for (std::size_t nl; (nl = stdout_buffer_.find('\n', start)) != std::string::npos;
         start = nl + 1) {
      const std::string_view line(stdout_buffer_.data() + start, nl - start);
      if (line.starts_with(prefix)) {
        std::string rest(line.substr(prefix.size()));
        stdout_buffer_.erase(0, nl + 1);
        return rest;
      }
    }
    pollfd p{stdout_fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, remaining_ms(deadline));
    char buf[4096];
    const ssize_t n = ready > 0 ? ::read(stdout_fd_, buf, sizeof buf) : -1;
    if (ready == 0 || n <= 0) {
      throw std::runtime_error(std::string(ready == 0 ? "timed out" : "stdout closed") +
                               " waiting for '" + std::string(prefix) + "'; stderr:\n" +
                               tail(log(), 8192));
    }
    stdout_buffer_.append(buf, static_cast<std::size_t>(n));
  }
}

void Process::signal(int sig) const {
  if (pid_ > 0 && !exit_code_) ::kill(pid_, sig);
}

std::optional<int> Process::wait_exit(std::chrono::milliseconds timeout) {
  if (exit_code_) return exit_code_;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return exit_code_;
    }
    if (r < 0) {
      exit_code_ = -1;
      return exit_code_;
    }
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
}

int Process::stop(std::chrono::milliseconds timeout) {
  if (exit_code_) return *exit_code_;
  signal(SIGTERM);
  if (auto code = wait_exit(timeout)) return *code;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  exit_code_ = 128 + SIGKILL;
  return *exit_code_;
}

std::string Process::log() const { return testing::read_file(log_file_); }

}  // namespace dynaseal::integration
