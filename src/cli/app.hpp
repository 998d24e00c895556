// The `dynaseal` command line: one executable, one subcommand per role (DESIGN §11).
//
// Exit codes are a contract: 0 success; 1 a refused or failed operation, with
// `error: <code>: <message>` as the first line on stderr; 2 a usage error.
#pragma once

#include <signal.h>

#include <string_view>

#include <CLI/CLI.hpp>

#include "core/error.hpp"

namespace dynaseal::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// Parses `argv`, runs the chosen subcommand and returns the process exit code.
int run(int argc, char** argv);

// Prints `error: <code>: <detail>` (or the error's description when detail is empty) to
// stderr and returns kExitFailed.
int fail(Error e, std::string_view detail = {});

// Blocks SIGINT and SIGTERM in the calling thread, and so in every thread it starts afterwards:
// construct it before starting workers, then wait() returns the signal that arrived.
class StopSignals {
 public:
  StopSignals();
  int wait();

 private:
  sigset_t set_;
};

// Each role adds its subcommands; the callback stores the exit code in `exit_code`.
void add_key_commands(CLI::App& app, int& exit_code);
void add_engine_command(CLI::App& app, int& exit_code);
void add_server_command(CLI::App& app, int& exit_code);
void add_backend_command(CLI::App& app, int& exit_code);
void add_chat_command(CLI::App& app, int& exit_code);
void add_demo_command(CLI::App& app, int& exit_code);
void add_outbox_command(CLI::App& app, int& exit_code);

}  // namespace dynaseal::cli
