#include "cli/app.hpp"

#include <iostream>

namespace dynaseal::cli {

int fail(Error e, std::string_view detail) {
  std::cerr << "error: " << to_string(e) << ": " << (detail.empty() ? describe(e) : detail) << '\n';
  return kExitFailed;
}

StopSignals::StopSignals() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
}

int StopSignals::wait() {
  int received = 0;
  sigwait(&set_, &received);
  return received;
}

int run(int argc, char** argv) {
  CLI::App app{
      "Dynaseal: short-lived, scoped, signed keys for calling LLMs from edge devices.\n"
      "Docs: README.md and docs/ in the source tree."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "dynaseal 0.1.0");
  int exit_code = kExitOk;
  add_key_commands(app, exit_code);
  add_engine_command(app, exit_code);
  add_server_command(app, exit_code);
  add_backend_command(app, exit_code);
  add_chat_command(app, exit_code);
  add_demo_command(app, exit_code);
  add_outbox_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: usage: " << e.what() << "\nRun with --help for more information.\n";
    return kExitUsage;
  }
  return exit_code;
}

}  // namespace dynaseal::cli
