#include "harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <thread>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/base64url.hpp"
#include "core/dynamic_key.hpp"
#include "core/jwk.hpp"
#include "store/key_file.hpp"

namespace dynaseal::integration {
namespace {

namespace http = boost::beast::http;
namespace json = boost::json;
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

// The markers sanitizer runtimes print; any of them in a process's stderr is a finding.
constexpr std::string_view kSanitizerMarkers[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                                 "runtime error:", "WARNING: ThreadSanitizer"};

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

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
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

// ---- HTTP --------------------------------------------------------------------------------

std::string HttpResponse::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

json::value HttpResponse::json() const { return json::parse(body); }

std::string HttpResponse::error_code() const {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return "";
  const json::value* error = v.get_object().if_contains("error");
  if (error == nullptr || !error->is_object()) return "";
  const json::value* code = error->get_object().if_contains("code");
  if (code == nullptr || !code->is_string()) return "";
  return std::string(code->get_string());
}

struct HttpConnection::Parser {
  std::optional<http::response_parser<http::string_body>> message;
  boost::beast::flat_buffer buffer;

  void begin() {
    message.emplace();
    message->eager(true);
    message->body_limit(boost::none);
  }
};

HttpConnection::HttpConnection(std::uint16_t port) : parser_(std::make_unique<Parser>()), port_(port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error("connect to port " + std::to_string(port) + ": " + std::strerror(err));
  }
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

HttpConnection::~HttpConnection() { close(); }

void HttpConnection::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool HttpConnection::send_raw(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool HttpConnection::send_request(std::string_view method, std::string_view target,
                                  std::string_view body,
                                  const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string req;
  req.reserve(256 + body.size());
  req.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  req.append("Host: 127.0.0.1:").append(std::to_string(port_)).append("\r\n");
  for (const auto& [name, value] : headers) req.append(name).append(": ").append(value).append("\r\n");
  if (!body.empty() || method == "POST" || method == "PUT") {
    req.append("Content-Type: application/json\r\n");
    req.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  req.append("\r\n").append(body);
  return send_raw(req);
}

bool HttpConnection::pump(const std::function<bool()>& stop, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Parser& p = *parser_;
  auto sync = [&] {
    if (!p.message->is_header_done()) return;
    const auto& m = p.message->get();
    current_.status = m.result_int();
    current_.headers.clear();
    for (const auto& field : m) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      current_.headers[name] = std::string(field.value());
    }
    current_.body = m.body();
    current_.complete = p.message->is_done();
  };
  for (;;) {
    while (p.buffer.size() > 0 && !p.message->is_done()) {
      boost::system::error_code ec;
      const std::size_t n = p.message->put(p.buffer.data(), ec);
      p.buffer.consume(n);
      if (ec == http::error::need_more) break;
      if (ec) {
        sync();
        return false;
      }
      if (n == 0) break;
    }
    sync();
    if (stop() || p.message->is_done()) return stop();
    if (fd_ < 0) return false;
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, remaining_ms(deadline)) <= 0) return false;
    auto space = p.buffer.prepare(64 * 1024);
    const ssize_t n = ::recv(fd_, space.data(), space.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      boost::system::error_code ec;
      if (n == 0 && p.message->is_header_done()) p.message->put_eof(ec);
      sync();
      return stop();
    }
    p.buffer.commit(static_cast<std::size_t>(n));
  }
}

HttpResponse HttpConnection::read_response(std::chrono::milliseconds timeout) {
  parser_->begin();
  current_ = HttpResponse{};
  pump([] { return false; }, timeout);
  return current_;
}

HttpResponse& HttpConnection::read_until(const std::function<bool(const std::string&)>& done,
                                         std::chrono::milliseconds timeout) {
  if (!parser_->message) {
    parser_->begin();
    current_ = HttpResponse{};
  }
  pump([&] { return parser_->message->is_header_done() && done(parser_->message->get().body()); },
       timeout);
  return current_;
}

HttpResponse& HttpConnection::read_rest(std::chrono::milliseconds timeout) {
  if (!parser_->message) parser_->begin();
  pump([] { return false; }, timeout);
  return current_;
}

bool HttpConnection::wait_closed(std::chrono::milliseconds timeout, std::string* received) {
  const auto deadline = Clock::now() + timeout;
  if (parser_->buffer.size() > 0 && received != nullptr) {
    const auto data = parser_->buffer.data();
    received->append(static_cast<const char*>(data.data()), data.size());
    parser_->buffer.consume(data.size());
  }
  for (;;) {
    pollfd pfd{fd_, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, remaining_ms(deadline));
    if (ready <= 0) return false;
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return true;
    if (received != nullptr) received->append(buf, static_cast<std::size_t>(n));
  }
}

HttpResponse http_request(std::uint16_t port, std::string_view method, std::string_view target,
                          std::string_view body, std::string_view bearer,
                          std::chrono::milliseconds timeout) {
  HttpConnection c(port);
  std::vector<std::pair<std::string, std::string>> headers;
  if (!bearer.empty()) headers.emplace_back("Authorization", "Bearer " + std::string(bearer));
  c.send_request(method, target, body, headers);
  return c.read_response(timeout);
}

std::vector<std::string> sse_data(std::string_view body) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < body.size()) {
    std::size_t nl = body.find('\n', start);
    if (nl == std::string_view::npos) nl = body.size();
    std::string_view line = body.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.starts_with("data:")) {
      line.remove_prefix(5);
      if (line.starts_with(' ')) line.remove_prefix(1);
      out.emplace_back(line);
    }
    start = nl + 1;
  }
  return out;
}

double metric(std::string_view text, std::string_view series) {
  std::size_t at = 0;
  while ((at = text.find(series, at)) != std::string_view::npos) {
    const bool line_start = at == 0 || text[at - 1] == '\n';
    const std::size_t after = at + series.size();
    if (line_start && after < text.size() && text[after] == ' ') {
      return std::strtod(std::string(text.substr(after + 1, 40)).c_str(), nullptr);
    }
    at = after;
  }
  return 0;
}

// ---- Keys --------------------------------------------------------------------------------

Backend::Backend(std::string id, const std::filesystem::path& dir)
    : id_(std::move(id)), key_(SigningKey::generate()), jwks_file_(dir / (id_ + ".jwks.json")) {
  if (!store::write_private_key_file(dir / (id_ + ".jwk"), key_)) {
    throw std::runtime_error("cannot write the private key of " + id_);
  }
  std::ofstream(jwks_file_) << jwks_json();
}

std::string Backend::jwks_json() const {
  return dynaseal::jwks_json({make_public_jwk(key_.public_key())});
}

std::string Backend::kid() const { return jwk_thumbprint(key_.public_key()); }

Claims Backend::claims() const {
  Claims c;
  c.iss = id_;
  c.aud = {"llm-1"};
  c.sub = "user-42";
  c.jti = random_jti();
  c.iat = unix_now();
  c.exp = c.iat + 300;
  c.dks.models = {"demo"};
  c.dks.max_tokens = 16;
  c.dks.uses = 1;
  return c;
}

std::string Backend::mint(const Claims& claims) const {
  auto token = mint_key(claims, key_);
  if (!token) {
    ADD_FAILURE() << "mint_key refused: " << to_string(token.error());
    return "";
  }
  return *token;
}

std::string Backend::sign_raw(std::string_view header_json, std::string_view payload_json) const {
  std::string token = base64url_encode(header_json) + "." + base64url_encode(payload_json);
  const Signature sig = key_.sign(as_bytes(token));
  return token + "." + base64url_encode(sig);
}

SigningKey Backend::rotate() {
  SigningKey old = key_;
  key_ = SigningKey::generate();
  return old;
}

// ---- Processes ---------------------------------------------------------------------------

Engine::Engine(const std::filesystem::path& dir, EngineOptions options) {
  std::string models;
  for (const std::string& m : options.models) models += (models.empty() ? "" : ",") + m;
  process_ = std::make_unique<Process>(
      std::vector<std::string>{"engine", "--listen", "127.0.0.1:0", "--models", models,
                               "--ttft-ms", std::to_string(options.ttft_ms),
                               "--tokens-per-second", std::to_string(options.tokens_per_second),
                               "--threads", "2"},
      dir / "engine.log");
  const std::string url = process_->wait_for_line("engine listening on http://", scaled(10s));
  port_ = static_cast<std::uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
}

json::object Engine::stats() const {
  HttpResponse r = http_get(port_, "/stats");
  if (r.status != 200) throw std::runtime_error("engine /stats: " + std::to_string(r.status));
  return r.json().as_object();
}

Server::Server(const std::filesystem::path& dir, const std::string& engine_url,
               const Backend& acme, ServerOptions o)
    : dir_(dir) {
  std::ofstream toml(dir / "server.toml");
  toml << "id = \"llm-1\"\n"
       << "listen = \"127.0.0.1:0\"\n"
       << "identity_key = \"server.jwk\"\n"
       << "admin_token_file = \"admin.token\"\n"
       << "max_body_bytes = " << o.max_body_bytes << "\n"
       << "header_timeout = " << o.header_timeout_s << "\n"
       << "access_log = true\n"
       << "threads = 2\n"
       << o.extra_top << "\n"
       << "[[upstream]]\nname = \"local\"\nurl = \"" << engine_url << "\"\n"
       << "models = [\"demo\", \"other\"]\n\n"
       << "[[upstream]]\nname = \"strict\"\nurl = \"" << engine_url << "\"\n"
       << "models = [\"strict\"]\nfirst_byte_timeout = " << o.strict_first_byte_timeout_s
       << "\n\n"
       << "[[backend]]\nid = \"" << acme.id() << "\"\njwks = \""
       << acme.jwks_file().filename().string() << "\"\n";
  toml.close();
  process_ = std::make_unique<Process>(
      std::vector<std::string>{"server", "--config", (dir / "server.toml").string(), "--grace",
                               std::to_string(o.grace_s)},
      dir / "server.log");
  port_ = static_cast<std::uint16_t>(
      std::stoi(process_->wait_for_line("server listening on port ", scaled(10s))));
}

std::string Server::admin_token() const {
  std::string token = testing::read_file(dir_ / "admin.token");
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  return token;
}

std::string Server::metrics() const { return http_get(port_, "/metrics").body; }

// ---- Request bodies ----------------------------------------------------------------------

std::string chat_body(std::string_view model, std::string_view prompt,
                      std::optional<int> max_tokens, bool stream,
                      std::optional<bool> include_usage) {
  json::object body;
  body["model"] = model;
  body["messages"] = json::array{json::object{{"role", "user"}, {"content", prompt}}};
  if (max_tokens) body["max_tokens"] = *max_tokens;
  if (stream) body["stream"] = true;
  if (include_usage) body["stream_options"] = json::object{{"include_usage", *include_usage}};
  return json::serialize(body);
}

std::string completion_body(std::string_view model, std::string_view prompt,
                            std::optional<int> max_tokens, bool stream) {
  json::object body;
  body["model"] = model;
  body["prompt"] = prompt;
  if (max_tokens) body["max_tokens"] = *max_tokens;
  if (stream) body["stream"] = true;
  return json::serialize(body);
}

// ---- Fixture -----------------------------------------------------------------------------

IntegrationTest::IntegrationTest() : acme("acme", dir.path()) {}

void IntegrationTest::start() {
  engine = std::make_unique<Engine>(dir.path(), engine_options);
  server = std::make_unique<Server>(dir.path(), engine->url(), acme, server_options);
}

void IntegrationTest::TearDown() {
  struct Stopped {
    const char* name;
    Process* process;
    int exit_code;
  };
  std::vector<Stopped> stopped;
  // The server first: it may hold engine connections that the engine would wait for.
  if (server) stopped.push_back({"server", &server->process(), server->process().stop(scaled(15s))});
  if (engine) stopped.push_back({"engine", &engine->process(), engine->process().stop(scaled(15s))});
  for (const Stopped& s : stopped) {
    const std::string log = s.process->log();
    EXPECT_EQ(s.exit_code, 0) << s.name << " did not exit cleanly";
    for (std::string_view marker : kSanitizerMarkers) {
      EXPECT_EQ(log.find(marker), std::string::npos)
          << "sanitizer report in the " << s.name << " log (" << s.process->log_file() << ")";
    }
  }
  // DYNASEAL_INTEGRATION_LOGS=DIR keeps every process log (the temporary directory goes).
  if (const char* keep = std::getenv("DYNASEAL_INTEGRATION_LOGS"); keep != nullptr && *keep) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::filesystem::create_directories(keep);
    for (const Stopped& s : stopped) {
      std::error_code ignored;
      std::filesystem::copy_file(s.process->log_file(),
                                 std::filesystem::path(keep) / (std::string(info->test_suite_name()) +
                                                                "." + info->name() + "." + s.name +
                                                                ".log"),
                                 std::filesystem::copy_options::overwrite_existing, ignored);
    }
  }
  if (HasFailure()) {
    for (const Stopped& s : stopped) {
      std::cerr << "----- " << s.name << " stderr (" << s.process->log_file() << ") -----\n"
                << tail(s.process->log(), 16 * 1024) << "\n";
    }
  }
}

}  // namespace dynaseal::integration
