// `dynaseal demo`: the whole Dynaseal loop on loopback, in one command (DESIGN §2).
//
// Starts the stand-in engine, the LLM server and the backend as child processes of this same
// executable, with their configuration and SQLite files in a fresh temporary directory; registers
// the backend with the server; adds a user; then plays the edge client with the client library:
// gets a dynamic key, streams a chat through the server, shows that the single-use key is spent,
// and waits for the signed usage callback to be stored by the backend. Every step is checked;
// the first failure ends the demo with exit 1, the logs' tails and the directory kept.

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <netinet/in.h>

#include "cli/app.hpp"
#include "cli/child_process.hpp"
#include "client/client.hpp"
#include "core/dynamic_key.hpp"

namespace dynaseal::cli {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;
namespace fs = std::filesystem;

constexpr const char* kModel = "demo";
constexpr const char* kPrompt = "Why should an app never ship a long-lived API key?";
constexpr std::int64_t kMaxTokens = 48;

// A step failed: what the user sees, then the logs.
struct DemoFailure {
  std::string what;
};

void step(int n, std::string_view text) { std::cout << "\n" << n << ". " << text << "\n"; }

void pretty(std::ostream& out, const json::value& v, int indent) {
  const std::string pad(static_cast<std::size_t>(indent) * 2, ' ');
  if (v.is_object() && !v.get_object().empty()) {
    out << "{\n";
    bool first = true;
    for (const auto& [k, child] : v.get_object()) {
      out << (first ? "" : ",\n") << pad << "  " << json::serialize(json::value(k)) << ": ";
      pretty(out, child, indent + 1);
      first = false;
    }
    out << "\n" << pad << "}";
  } else {
    out << json::serialize(v);
  }
}

std::string indented(const json::value& v, std::string_view prefix) {
  std::ostringstream raw;
  pretty(raw, v, 0);
  std::string out;
  std::istringstream lines(raw.str());
  for (std::string line; std::getline(lines, line);) out.append(prefix).append(line) += "\n";
  return out;
}

// A port that was free a moment ago (the backend's callback URL must be known before it runs).
std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw DemoFailure{"no free loopback port"};
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) throw DemoFailure{"cannot write " + path.string()};
}

std::string tail(const fs::path& log, std::size_t max = 2000) {
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.size() <= max ? text : "..." + text.substr(text.size() - max);
}

class Demo {
 public:
  explicit Demo(fs::path dir) : dir_(std::move(dir)) {}

  void run() {
    std::cout << "Dynaseal demo: engine, LLM server, backend and an edge client on loopback.\n"
              << "State and logs: " << dir_.string() << "\n";
    start_engine();
    start_server();
    start_backend();
    register_backend();
    const std::string token = add_user();
    const client::KeyGrant grant = get_key(token);
    chat(grant);
    reuse(grant);
    show_event(grant);
    show_usage();
    std::cout << "\nDone: the key was minted, verified, used once, refused after, and its use "
                 "reported back, signed and stored.\n";
  }

  void print_logs() const {
    for (const char* name : {"engine", "server", "backend", "cli"}) {
      const fs::path log = dir_ / (std::string(name) + ".log");
      if (fs::exists(log) && fs::file_size(log) > 0) {
        std::cerr << "----- " << log.string() << " (tail) -----\n" << tail(log) << "\n";
      }
    }
  }

 private:
  std::string cli(const std::vector<std::string>& args) {
    auto r = run_to_end(args, dir_ / "cli.log", 30s);
    if (!r) throw DemoFailure{"dynaseal " + args[0] + " " + args[1] + " did not finish"};
    if (r->first != 0) {
      throw DemoFailure{"dynaseal " + args[0] + " " + args[1] + " exited " +
                        std::to_string(r->first) + "; see cli.log"};
    }
    return r->second;
  }

  void start_engine() {
    engine_.emplace(std::vector<std::string>{"engine", "--listen", "127.0.0.1:0", "--models",
                                             kModel, "--tokens-per-second", "60"},
                    dir_ / "engine.log");
    auto url = engine_->wait_for_line("engine listening on ", 10s);
    if (!url) throw DemoFailure{"the engine did not start"};
    engine_url_ = *url;
    step(1, "engine   " + engine_url_ + "  (dynaseal engine: a deterministic stand-in model)");
  }

  void start_server() {
    write_file(dir_ / "server.toml",
               "id = \"llm-1\"\nlisten = \"127.0.0.1:0\"\n"
               "db = \"sqlite:server.db\"\n\n[[upstream]]\nname = \"local\"\n"
               "url = \"" +
                   engine_url_ + "\"\nmodels = [\"" + kModel + "\"]\n");
    server_.emplace(std::vector<std::string>{"server", "--config", (dir_ / "server.toml").string()},
                    dir_ / "server.log");
    auto port = server_->wait_for_line("server listening on port ", 10s);
    if (!port) throw DemoFailure{"the server did not start"};
    server_url_ = "http://127.0.0.1:" + *port;
    step(2, "server   " + server_url_ + "  (dynaseal server: verifies keys, proxies, reports use)");
  }

  void start_backend() {
    backend_url_ = "http://127.0.0.1:" + std::to_string(free_port());
    write_file(dir_ / "backend.toml",
               "id = \"acme\"\nlisten = \"" + backend_url_.substr(7) + "\"\npublic_url = \"" +
                   backend_url_ +
                   "\"\nsigning_key = \"acme.jwk\"\ndb = \"sqlite:backend.db\"\n\n"
                   "[server]\nid = \"llm-1\"\nurl = \"" +
                   server_url_ +
                   "\"\n\n"
                   "[[plan]]\nname = \"free\"\nmodels = [\"" +
                   kModel + "\"]\nmax_tokens = " + std::to_string(kMaxTokens) +
                   "\nuses = 1\nkey_ttl = 60\n"
                   "mints_per_minute = 60\ndaily_tokens = 100000\n");
    backend_.emplace(
        std::vector<std::string>{"backend", "--config", (dir_ / "backend.toml").string()},
        dir_ / "backend.log");
    if (!backend_->wait_for_line("backend listening on port ", 10s)) {
      throw DemoFailure{"the backend did not start"};
    }
    step(3, "backend  " + backend_url_ + "  (dynaseal backend \"acme\": users, plans, minting)");
  }

  void register_backend() {
    cli({"backend", "register", "--config", (dir_ / "backend.toml").string(), "--admin-token-file",
         (dir_ / "admin.token").string()});
    std::cout << "   registered with the server (its keys and callback URL); the server's "
                 "identity key pinned\n";
  }

  std::string add_user() {
    std::string token = cli({"backend", "user", "add", "alice", "--plan", "free", "--config",
                             (dir_ / "backend.toml").string()});
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) {
      token.pop_back();
    }
    if (token.empty()) throw DemoFailure{"user add printed no token"};
    step(4, "user alice on plan \"free\": a 256-bit token, shown once (stored only hashed)");
    return token;
  }

  client::KeyGrant get_key(const std::string& token) {
    step(5, "the edge client asks the backend for a key: POST /v1/keys {\"model\":\"demo\"}");
    auto grant = client_.request_key(backend_url_, token, {.model = kModel});
    if (!grant) throw DemoFailure{"no key: " + grant.error().code + ": " + grant.error().message};
    std::cout << "   dynamic key for " << grant->server_id << " (" << grant->key.size()
              << " characters): " << grant->key.substr(0, 48) << "...\n";
    auto decoded = decode_key_unverified(grant->key);
    if (!decoded) throw DemoFailure{"the key does not decode"};
    std::cout << "   header:\n"
              << indented(decoded->header, "     ") << "   claims:\n"
              << indented(decoded->payload, "     ");
    return *grant;
  }

  void chat(const client::KeyGrant& grant) {
    step(6, "a streamed chat through the server, with that key as the bearer token");
    std::cout << "   > " << kPrompt << "\n   < " << std::flush;
    client::ChatRequest req{.model = kModel, .messages = {{"user", kPrompt}}, .stream = true};
    auto answer =
        client_.chat(grant, req, [](std::string_view delta) { std::cout << delta << std::flush; });
    std::cout << "\n";
    if (!answer) {
      throw DemoFailure{"chat failed: " + answer.error().code + ": " + answer.error().message};
    }
    if (answer->usage) {
      std::cout << "   event " << answer->event_id << ": " << answer->usage->prompt_tokens
                << " prompt + " << answer->usage->completion_tokens << " completion tokens\n";
    }
  }

  void reuse(const client::KeyGrant& grant) {
    step(7, "the same key once more");
    client::ChatRequest req{.model = kModel, .messages = {{"user", "again"}}};
    auto again = client_.chat(grant, req);
    if (again || again.error().code != "uses_exhausted") {
      throw DemoFailure{"a spent single-use key was not refused with uses_exhausted"};
    }
    std::cout << "   refused: " << again.error().http_status << " " << again.error().code
              << " (a single-use key serves exactly once)\n";
  }

  void show_event(const client::KeyGrant& grant) {
    step(8, "the usage event as the backend stored it (signed callback, webhook-id " +
                grant.event_id + ".1)");
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    for (;;) {
      const std::string lines = cli({"backend", "usage", "--json", "--user", "alice", "--config",
                                     (dir_ / "backend.toml").string()});
      if (!lines.empty()) {
        std::cout << indented(json::parse(lines.substr(0, lines.find('\n'))), "   ");
        return;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        throw DemoFailure{"the usage callback did not reach the backend within 15 s"};
      }
      std::this_thread::sleep_for(100ms);
    }
  }

  void show_usage() {
    step(9, "alice's usage at the backend (dynaseal backend usage --user alice)");
    const std::string table =
        cli({"backend", "usage", "--user", "alice", "--config", (dir_ / "backend.toml").string()});
    std::istringstream lines(table);
    for (std::string line; std::getline(lines, line);) std::cout << "   " << line << "\n";
  }

  fs::path dir_;
  client::Client client_ = client::Client::create({.read_timeout = 30s}).value();
  std::optional<ChildProcess> engine_, server_, backend_;
  std::string engine_url_, server_url_, backend_url_;
};

fs::path make_temp_dir() {
  std::string tmpl = (fs::temp_directory_path() / "dynaseal-demo-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw DemoFailure{"cannot create a temporary directory"};
  return tmpl;
}

int run_demo(bool keep) {
  fs::path dir;
  try {
    dir = make_temp_dir();
    Demo demo(dir);
    try {
      demo.run();
    } catch (const DemoFailure& f) {
      demo.print_logs();
      std::cerr << "state kept in " << dir.string() << "\n";
      return fail(Error::internal, "demo failed: " + f.what);
    }
  } catch (const DemoFailure& f) {
    return fail(Error::internal, "demo failed: " + f.what);
  } catch (const std::exception& e) {
    return fail(Error::internal, std::string("demo failed: ") + e.what());
  }
  if (keep) {
    std::cout << "State kept in " << dir.string() << "\n";
  } else {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }
  return kExitOk;
}

}  // namespace

void add_demo_command(CLI::App& app, int& exit_code) {
  auto keep = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "demo", "Run engine, server and backend on loopback and show the whole loop end to end");
  cmd->footer(
      "Starts `dynaseal engine`, `dynaseal server` and `dynaseal backend` as child processes on\n"
      "free loopback ports, with their configuration and SQLite files in a new temporary\n"
      "directory; registers the backend with the server; adds a user; gets a dynamic key as\n"
      "an edge client would, streams a chat with it, shows the spent key refused, then shows\n"
      "the signed usage event as the backend stored it and the user's usage table.\n"
      "Exit 0 when every step succeeded, 1 (with the logs' tails) when one failed.");
  cmd->add_flag("--keep", *keep, "keep the temporary directory (configs, databases, logs)");
  cmd->callback([keep, &exit_code] { exit_code = run_demo(*keep); });
}

}  // namespace dynaseal::cli
