// `dynaseal engine` as a real process: the listening line, a request over TCP, SIGTERM and
// SIGINT stop it with exit 0, and the exit-code contract for usage and bind errors.

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <regex>

#include <boost/asio/ip/tcp.hpp>

#include "engine/engine_harness.hpp"
#include "test_support.hpp"

extern char** environ;

namespace dynaseal::engine {
namespace {

// A running `dynaseal engine ARGS...` whose stdout is a pipe; killed if the test forgets it.
class EngineProcess {
 public:
  explicit EngineProcess(std::vector<std::string> args) {
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    posix_spawn_file_actions_addclose(&actions, out[1]);
    args.insert(args.begin(), {DYNASEAL_BINARY, "engine"});
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = posix_spawn(&pid_, DYNASEAL_BINARY, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    stdout_ = fdopen(out[0], "r");
    if (rc != 0) throw std::runtime_error("cannot start " DYNASEAL_BINARY);
  }
  ~EngineProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (stdout_ != nullptr) fclose(stdout_);
  }

  // The next line of the engine's stdout, without the newline; "" at end of file.
  std::string read_line() {
    char line[512];
    if (fgets(line, sizeof line, stdout_) == nullptr) return {};
    std::string s(line);
    if (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  }

  // Sends `sig` and returns the exit status (128 + signal when killed by one).
  int stop(int sig) {
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  FILE* stdout_ = nullptr;
};

std::uint16_t port_of(const std::string& line) {
  static const std::regex kLine(R"(engine listening on http://127\.0\.0\.1:(\d+))");
  std::smatch m;
  if (!std::regex_match(line, m, kLine)) return 0;
  return static_cast<std::uint16_t>(std::stoi(m[1]));
}

struct Outcome {
  int exit_code;
  std::string err;
};

// Runs dynaseal with `args` (at most 10 s), capturing stderr.
Outcome run(const std::string& args) {
  dynaseal::testing::TempDir dir;
  const std::string cmd =
      "timeout 10 '" DYNASEAL_BINARY "' " + args + " >/dev/null 2>'" + (dir / "err").string() + "'";
  const int status = std::system(cmd.c_str());
  return {WEXITSTATUS(status), dynaseal::testing::read_file(dir / "err")};
}

TEST(EngineProcess, PrintsItsPortServesAndExitsZeroOnSigterm) {
  EngineProcess engine({"--listen", "127.0.0.1:0", "--models", "demo,other", "--ttft-ms", "1"});
  const std::uint16_t port = port_of(engine.read_line());
  ASSERT_NE(port, 0);
  harness::Client client(port);
  const harness::Reply r = client.post(
      "/v1/chat/completions", R"({"model":"other","messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.json().at("model"), "other");
  EXPECT_EQ(client.get("/stats").json().at("completed"), 1);
  EXPECT_EQ(engine.stop(SIGTERM), 0);
}

TEST(EngineProcess, ExitsZeroOnSigintWithAStreamInFlight) {
  EngineProcess engine({"--listen", "127.0.0.1:0", "--tokens-per-second", "5"});
  const std::uint16_t port = port_of(engine.read_line());
  ASSERT_NE(port, 0);
  harness::Client client(port);
  const std::string seen = client.run(harness::read_then_leave(
      client.pool(), "/v1/completions", R"({"model":"demo","prompt":"x","stream":true})",
      "text_completion"));
  EXPECT_NE(seen.find("text_completion"), std::string::npos);
  EXPECT_EQ(engine.stop(SIGINT), 0);
}

TEST(EngineProcess, RefusesBadOptionsWithExitTwo) {
  for (const char* args : {"engine --fail-rate 2", "engine --listen nowhere",
                           "engine --listen 127.0.0.1:70000", "engine --listen example.com:80",
                           "engine --threads 0", "engine --models ''", "engine --bogus"}) {
    const Outcome o = run(args);
    EXPECT_EQ(o.exit_code, 2) << args << "\n" << o.err;
    EXPECT_TRUE(o.err.starts_with("error: usage:")) << args << "\n" << o.err;
  }
}

TEST(EngineProcess, ReportsABindFailureWithExitOne) {
  // A listener without SO_REUSEPORT keeps the engine's acceptor from binding the same port.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor taken(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const std::string addr = "127.0.0.1:" + std::to_string(taken.local_endpoint().port());
  const Outcome o = run("engine --listen " + addr);
  EXPECT_EQ(o.exit_code, 1) << o.err;
  EXPECT_TRUE(o.err.starts_with("error: io_error: cannot listen on " + addr)) << o.err;
}

}  // namespace
}  // namespace dynaseal::engine
