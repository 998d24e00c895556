// A child process of the integration tests: the `dynaseal` executable started with fork/execv,
// its stdout read for the listening line, its stderr kept in a log file; and the time helpers
// every multi-process wait uses (scaled for sanitizer builds).
//
//   Process engine({"engine", "--listen", "127.0.0.1:0"}, dir / "engine.log");
//   std::string url = engine.wait_for_line("engine listening on http://", scaled(10s));
//   ...; EXPECT_EQ(engine.stop(scaled(10s)), 0);   // SIGTERM, SIGKILL after the timeout
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dynaseal::integration {

using namespace std::chrono_literals;

// Processes start slower under sanitizers; every wait in the harness scales with this.
std::chrono::milliseconds scaled(std::chrono::milliseconds base);

// Polls `condition` every 10 ms until it holds (true) or `timeout` passes (false). For state the
// server updates after the response is on the wire (metrics, budget settlement).
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// A child process running DYNASEAL_BINARY (or $DYNASEAL_BIN) with `args`; stdout is a pipe the
// harness reads the listening line from, stderr goes to `log_file`. The destructor sends SIGTERM,
// waits, and sends SIGKILL after a timeout.
class Process {
 public:
  Process(std::vector<std::string> args, std::filesystem::path log_file);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Reads stdout until a line starting with `prefix`; returns the rest of that line. Throws
  // std::runtime_error (with the log) when the process exits or the timeout passes first.
  std::string wait_for_line(std::string_view prefix, std::chrono::milliseconds timeout);

  void signal(int sig) const;
  // SIGTERM, then waits up to `timeout` (SIGKILL after it). Returns the exit code, or 128 +
  // signal number when it was killed by a signal. Idempotent: later calls return the same.
  int stop(std::chrono::milliseconds timeout);
  // Waits up to `timeout` for the process to exit on its own; nullopt if it did not.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  bool running() const { return !exit_code_.has_value(); }

  std::string log() const;
  const std::filesystem::path& log_file() const { return log_file_; }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string stdout_buffer_;
  std::optional<int> exit_code_;
  std::filesystem::path log_file_;
};

}  // namespace dynaseal::integration
