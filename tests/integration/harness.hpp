// Multi-process integration harness: the real `dynaseal` executable (engine and server) on
// loopback, a backend signing key in a temporary directory, and a small blocking HTTP/1.1
// client on raw sockets (so that tests can also misbehave: send byte by byte, send garbage,
// close mid-stream).
//
// Every port is dynamic (listen on port 0; the port is read from the process's listening line),
// so tests run in parallel with anything else. Each process's stderr goes to a log file in the
// test's temporary directory; the fixture prints the logs when a test fails and checks them for
// sanitizer reports after stopping the processes.
//
//   Stack stack;                                   // engine + server + backend key "acme"
//   stack.start();
//   auto key = stack.acme.mint(stack.acme.claims({.max_tokens = 16}));
//   HttpResponse r = stack.server_client().post("/v1/chat/completions", chat_body(), key);
//   EXPECT_EQ(r.status, 200);
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "core/claims.hpp"
#include "core/crypto.hpp"
#include "test_support.hpp"

namespace dynaseal::integration {

using namespace std::chrono_literals;

// Processes start slower under sanitizers; every wait in the harness scales with this.
std::chrono::milliseconds scaled(std::chrono::milliseconds base);

// Polls `condition` every 10 ms until it holds (true) or `timeout` passes (false). For state the
// server updates after the response is on the wire (metrics, budget settlement).
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// A child process running DYNASEAL_BINARY with `args`; stdout is a pipe the harness reads the
// listening line from, stderr goes to `log_file`. The destructor sends SIGTERM, waits, and
// sends SIGKILL after a timeout.
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

// ---- HTTP --------------------------------------------------------------------------------

struct HttpResponse {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  bool complete = false;  // the whole message was read (chunked: the last chunk arrived)

  std::string header(const std::string& name) const;
  boost::json::value json() const;  // throws when the body is not JSON
  // error.code of an OpenAI error body, or "" when there is none.
  std::string error_code() const;
};

// A blocking client connection to 127.0.0.1:port. Every read has a deadline, so a test never
// hangs on a server that does not answer.
class HttpConnection {
 public:
  explicit HttpConnection(std::uint16_t port);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Sends raw bytes; false when the peer closed or reset the connection.
  bool send_raw(std::string_view bytes);
  // Sends a request (Host, Content-Length and Content-Type added when a body is given).
  bool send_request(std::string_view method, std::string_view target, std::string_view body,
                    const std::vector<std::pair<std::string, std::string>>& headers = {});

  // Reads one whole response. On EOF / reset / timeout before the end, returns what was read
  // (status 0 when not even the head arrived) with complete == false.
  HttpResponse read_response(std::chrono::milliseconds timeout = 20s);
  // Reads the head and then body bytes until `done(body)` is true, the message ends or the
  // timeout passes. Call again to continue; body accumulates across calls.
  HttpResponse& read_until(const std::function<bool(const std::string& body)>& done,
                           std::chrono::milliseconds timeout = 20s);
  // After read_until: reads the rest of the message.
  HttpResponse& read_rest(std::chrono::milliseconds timeout = 20s);

  // True when the server closed the connection (EOF or reset) within `timeout`; bytes that
  // arrive meanwhile are appended to `received` (if given).
  bool wait_closed(std::chrono::milliseconds timeout, std::string* received = nullptr);

  void close();
  int fd() const { return fd_; }

 private:
  struct Parser;
  // Feeds bytes to the parser until `stop()`; false on EOF, error or timeout.
  bool pump(const std::function<bool()>& stop, std::chrono::milliseconds timeout);

  int fd_ = -1;
  std::unique_ptr<Parser> parser_;
  HttpResponse current_;
  std::uint16_t port_;
};

// One request per connection (Connection: close is not sent; the connection is just dropped).
HttpResponse http_request(std::uint16_t port, std::string_view method, std::string_view target,
                          std::string_view body = "", std::string_view bearer = "",
                          std::chrono::milliseconds timeout = 20s);
inline HttpResponse http_get(std::uint16_t port, std::string_view target,
                             std::string_view bearer = "") {
  return http_request(port, "GET", target, "", bearer);
}
inline HttpResponse http_post(std::uint16_t port, std::string_view target, std::string_view body,
                              std::string_view bearer = "") {
  return http_request(port, "POST", target, body, bearer);
}

// The `data:` payloads of an SSE body, in order.
std::vector<std::string> sse_data(std::string_view body);

// A metric's value in Prometheus text (`series` is the name with its labels exactly as
// rendered, e.g. dynaseal_usage_records_total{status="ok"}); 0 when absent.
double metric(std::string_view text, std::string_view series);

// ---- Keys --------------------------------------------------------------------------------

// A backend's signing keys: writes its private JWK and public JWKS into `dir`, mints tokens.
class Backend {
 public:
  Backend(std::string id, const std::filesystem::path& dir);

  const std::string& id() const { return id_; }
  const SigningKey& key() const { return key_; }
  std::filesystem::path jwks_file() const { return jwks_file_; }
  std::string jwks_json() const;  // {"keys":[<public jwk>]}
  std::string kid() const;

  // Valid claims for server "llm-1": fresh jti, iat now, exp now + 300, model "demo",
  // max_tokens 16, one use. Adjust the returned struct before minting.
  Claims claims() const;
  std::string mint(const Claims& claims) const;  // fails the test when mint_key refuses
  std::string mint() const { return mint(claims()); }
  // Signs arbitrary header and payload JSON (for tokens mint_key would refuse to make).
  std::string sign_raw(std::string_view header_json, std::string_view payload_json) const;

  // Replaces the signing key by a new one (the old one stays retrievable as the return value).
  SigningKey rotate();

 private:
  std::string id_;
  SigningKey key_;
  std::filesystem::path jwks_file_;
};

std::int64_t unix_now();

// ---- Processes ---------------------------------------------------------------------------

struct EngineOptions {
  std::vector<std::string> models{"demo", "other", "strict"};
  int ttft_ms = 0;
  double tokens_per_second = 0;
};

// `dynaseal engine` on 127.0.0.1:0.
class Engine {
 public:
  Engine(const std::filesystem::path& dir, EngineOptions options = {});
  std::uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  Process& process() { return *process_; }
  // GET /stats as JSON.
  boost::json::object stats() const;

 private:
  std::unique_ptr<Process> process_;
  std::uint16_t port_ = 0;
};

struct ServerOptions {
  std::size_t max_body_bytes = 1 << 20;
  int header_timeout_s = 10;
  // Upstream "local" serves models demo and other; upstream "strict" (same engine) serves model
  // "strict" with this first_byte_timeout, so timeouts are testable without slowing the rest.
  int strict_first_byte_timeout_s = 1;
  int grace_s = 3;
  std::string extra_top;  // more top-level TOML lines
};

// `dynaseal server --config DIR/server.toml`, its config written from `options`, with backend
// acme registered statically.
class Server {
 public:
  Server(const std::filesystem::path& dir, const std::string& engine_url, const Backend& acme,
         ServerOptions options = {});
  std::uint16_t port() const { return port_; }
  Process& process() { return *process_; }
  const std::filesystem::path& dir() const { return dir_; }
  std::string admin_token() const;  // read from the admin token file
  std::string metrics() const;      // GET /metrics body

 private:
  std::filesystem::path dir_;
  std::unique_ptr<Process> process_;
  std::uint16_t port_ = 0;
};

// ---- Request bodies ----------------------------------------------------------------------

std::string chat_body(std::string_view model = "demo", std::string_view prompt = "hello there",
                      std::optional<int> max_tokens = std::nullopt, bool stream = false,
                      std::optional<bool> include_usage = std::nullopt);
std::string completion_body(std::string_view model = "demo",
                            std::string_view prompt = "hello there",
                            std::optional<int> max_tokens = std::nullopt, bool stream = false);

// ---- Fixture -----------------------------------------------------------------------------

// Engine + server + backend acme in a fresh temporary directory. Tests call start() (after
// adjusting engine_options / server_options). TearDown stops the processes, checks they
// exited 0 with no sanitizer report, and prints their logs when the test failed.
class IntegrationTest : public ::testing::Test {
 protected:
  IntegrationTest();
  void start();
  void TearDown() override;

  std::uint16_t port() const { return server->port(); }
  // A chat completion with `token`, one connection.
  HttpResponse chat(const std::string& token, const std::string& body = chat_body()) const {
    return http_post(port(), "/v1/chat/completions", body, token);
  }

  testing::TempDir dir;
  Backend acme;
  EngineOptions engine_options;
  ServerOptions server_options;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Server> server;
};

}  // namespace dynaseal::integration
