// Child processes for `dynaseal demo`: the same executable started with other arguments, its
// stdout read line by line (for the "listening on" line and for output to show), its stderr
// appended to a log file. A child still running when its object dies gets SIGTERM, then
// SIGKILL after five seconds, and dies with the parent in any case (PR_SET_PDEATHSIG).
//
//   ChildProcess server({"server", "--config", "server.toml"}, dir / "server.log");
//   auto port = server.wait_for_line("server listening on port ", 10s);   // the rest of it
//   auto out = run_to_end({"backend", "user", "add", "alice", ...}, log, 30s);
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace dynaseal::cli {

class ChildProcess {
 public:
  // Starts /proc/self/exe with `args`; throws std::runtime_error when it cannot.
  ChildProcess(const std::vector<std::string>& args, const std::filesystem::path& log_file);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Reads stdout until a line starting with `prefix`; returns the rest of that line, or nothing
  // when the child exits or `timeout` passes first.
  std::optional<std::string> wait_for_line(std::string_view prefix,
                                           std::chrono::milliseconds timeout);
  // Everything the child writes to stdout until it exits, and its exit status (the signal
  // number + 128 when killed). Nothing when `timeout` passes first (the child is then killed).
  std::optional<std::pair<int, std::string>> read_to_end(std::chrono::milliseconds timeout);
  // SIGTERM, SIGKILL after `grace`; returns the exit status.
  int stop(std::chrono::milliseconds grace);

 private:
  std::optional<int> reap(std::chrono::milliseconds timeout);

  int pid_ = -1;
  int out_ = -1;
  std::string buffer_;
  std::optional<int> status_;
};

// The exit status and stdout of `dynaseal ARGS`, run to its end (stderr to `log_file`).
std::optional<std::pair<int, std::string>> run_to_end(const std::vector<std::string>& args,
                                                      const std::filesystem::path& log_file,
                                                      std::chrono::milliseconds timeout);

}  // namespace dynaseal::cli
