// dynaseal server --config FILE: the LLM server, until SIGTERM or SIGINT.

#include <signal.h>

#include <iostream>
#include <memory>

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "cli/app.hpp"
#include "server/server_app.hpp"

namespace dynaseal::cli {
namespace {

struct ServerArgs {
  std::string config;
  unsigned grace_seconds = 10;
};

int serve(const ServerArgs& args) {
  // First of all: every thread started later (the log writer too) inherits the blocked mask,
  // so SIGTERM reaches only the sigwait below and never kills the process outright.
  StopSignals signals;
  // Logs (one JSON access line per request, usage records) go to stderr; stdout carries only
  // the listening line that scripts wait for. Workers format a line and queue it; one thread
  // writes. A full queue blocks rather than drops: usage lines must not be lost.
  spdlog::init_thread_pool(16384, 1);
  spdlog::set_default_logger(std::make_shared<spdlog::async_logger>(
      "dynaseal", std::make_shared<spdlog::sinks::stderr_sink_mt>(), spdlog::thread_pool(),
      spdlog::async_overflow_policy::block));
  std::unique_ptr<server::ServerApp> app;
  try {
    app = std::make_unique<server::ServerApp>(server::load_server_config(args.config));
  } catch (const server::ConfigError& e) {
    return fail(Error::io_error, std::string("configuration: ") + e.what());
  } catch (const std::exception& e) {
    return fail(Error::io_error, std::string("cannot start: ") + e.what());
  }
  app->start();
  std::cout << "server listening on port " << app->port() << std::endl;
  const int received = signals.wait();
  spdlog::info("signal {}: stopping (grace {} s)", received, args.grace_seconds);
  app->stop(std::chrono::seconds(args.grace_seconds));
  app->wait();
  spdlog::shutdown();  // flushes the queue
  return kExitOk;
}

}  // namespace

void add_server_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ServerArgs>();
  auto* cmd = app.add_subcommand("server", "Run the LLM server (gateway) from a TOML config");
  cmd->add_option("--config", args->config, "configuration file (docs/server.md)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--grace", args->grace_seconds, "seconds in-flight requests get on shutdown")
      ->capture_default_str()
      ->check(CLI::Range(0u, 3600u));
  cmd->callback([&exit_code, args] { exit_code = serve(*args); });
  cmd->footer(
      "Stops on SIGTERM or SIGINT: stops accepting, lets in-flight requests finish within the\n"
      "grace period. Prints 'server listening on port N' once it accepts connections.");
}

}  // namespace dynaseal::cli
