// dynaseal engine: the stand-in OpenAI-compatible engine (DESIGN §11), a test double for demos,
// tests and benchmarks. See docs/engine.md.

#include <pthread.h>

#include <charconv>
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <boost/system/system_error.hpp>

#include "cli/app.hpp"
#include "engine/engine.hpp"
#include "net/http_server.hpp"

namespace dynaseal::cli {
namespace {

// In-flight requests get this long after SIGTERM / SIGINT; then connections are closed.
constexpr std::chrono::seconds kStopGrace{3};

struct EngineArgs {
  std::string listen = "127.0.0.1:8100";
  std::vector<std::string> models{"demo"};
  std::int64_t ttft_ms = 0;
  double tokens_per_second = 0;
  double fail_rate = 0;
  unsigned threads = 1;
  std::uint64_t seed = 0;
  std::string flavor = "generic";
};

struct ListenAddress {
  std::string host;
  std::uint16_t port = 0;
};

// HOST:PORT where HOST is an IP address (IPv6 in brackets) or localhost and PORT is 0..65535.
std::optional<ListenAddress> parse_listen(std::string_view addr) {
  const std::size_t colon = addr.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = addr.substr(0, colon);
  const std::string_view port = addr.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return std::nullopt;  // a bare IPv6 address is ambiguous
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    return std::nullopt;
  }
  if (host != "localhost") {
    boost::system::error_code bad;
    boost::asio::ip::make_address(std::string(host), bad);
    if (bad) return std::nullopt;
  }
  return ListenAddress{std::string(host), static_cast<std::uint16_t>(value)};
}

std::string url_host(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

int run_engine(const EngineArgs& a) {
  const ListenAddress addr = *parse_listen(a.listen);  // the option's check accepted it
  engine::EngineService service(engine::EngineOptions{
      .models = a.models,
      .ttft = std::chrono::milliseconds(a.ttft_ms),
      .tokens_per_second = a.tokens_per_second,
      .fail_rate = a.fail_rate,
      .seed = a.seed,
      .flavor = *engine::parse_flavor(a.flavor),
  });
  net::ServerOptions options;
  options.host = addr.host;
  options.port = addr.port;
  options.threads = a.threads;
  StopSignals signals;  // before any worker thread exists
  std::unique_ptr<net::HttpServer> server;
  try {
    server = std::make_unique<net::HttpServer>(options, service.handler(),
                                               &engine::EngineService::reject);
  } catch (const net::ListenError& e) {
    return fail(Error::io_error, e.what());
  } catch (const boost::system::system_error& e) {
    return fail(Error::io_error, "cannot listen on " + a.listen + ": " + e.code().message());
  }
  server->start();
  std::cout << "engine listening on http://" << url_host(addr.host) << ':' << server->port()
            << std::endl;  // flushed: tests and scripts read the port from this line
  signals.wait();
  server->stop(kStopGrace);
  server->wait();
  return kExitOk;
}

}  // namespace

void add_engine_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<EngineArgs>();
  auto* cmd = app.add_subcommand(
      "engine", "Run the stand-in OpenAI-compatible engine (a test double, not a model)");
  const CLI::Validator listen_address(
      [](std::string& value) -> std::string {
        return parse_listen(value) ? "" : "expected HOST:PORT (an IP address or localhost)";
      },
      "", "listen address");
  const CLI::Validator non_empty(
      [](std::string& value) -> std::string { return value.empty() ? "empty model name" : ""; }, "",
      "model name");
  cmd->add_option("--listen", a->listen, "address to listen on; port 0 picks a free port")
      ->type_name("HOST:PORT")
      ->capture_default_str()
      ->check(listen_address);
  cmd->add_option("--models", a->models, "models served, comma separated")
      ->delimiter(',')
      ->type_name("NAME,...")
      ->capture_default_str()
      ->check(non_empty);
  cmd->add_option("--ttft-ms", a->ttft_ms, "delay before the first token (all responses)")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{3600} * 1000));
  cmd->add_option("--tokens-per-second", a->tokens_per_second,
                  "pace of streamed tokens; 0: as fast as possible")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e9));
  cmd->add_option("--fail-rate", a->fail_rate, "fraction of requests answered 500 (0..1)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--threads", a->threads, "worker threads")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));
  cmd->add_option("--seed", a->seed, "changes every generated text and the fail-rate sequence")
      ->capture_default_str();
  cmd->add_option("--flavor", a->flavor,
                  "whose length knobs to honour: generic, openai, vllm, llamacpp, ollama, tgi, "
                  "or reckless (ignores every cap)")
      ->capture_default_str()
      ->check(
          CLI::IsMember({"generic", "openai", "vllm", "llamacpp", "ollama", "tgi", "reckless"}));
  cmd->footer(
      "Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /healthz,\n"
      "GET /stats (request counters as JSON). Prints `engine listening on http://HOST:PORT` once\n"
      "listening; SIGTERM or SIGINT stops it (exit 0). Text is deterministic for (model, prompt,\n"
      "seed); one token is one whitespace-separated word, so usage is exact.\n"
      "A prompt containing [[fault:MODE]] misbehaves on purpose, MODE one of: status500,\n"
      "status503, reset, reset-mid-stream, truncate, garbage, hang, slow-first-byte.\n"
      "Details: docs/engine.md.");
  cmd->callback([&exit_code, a] { exit_code = run_engine(*a); });
}

}  // namespace dynaseal::cli
