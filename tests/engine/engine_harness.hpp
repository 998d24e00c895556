// Test harness for the stand-in engine: an engine served in-process on 127.0.0.1 (any free
// port) and a client that drives net::UpstreamCall on its own io_context, one exchange at a time.
//
//   harness::Engine engine(EngineOptions{.ttft = 10ms});
//   harness::Client client(engine.port());
//   Reply r = client.post("/v1/chat/completions", body);   // r.status, r.body, r.read_error
#pragma once

#include <chrono>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <gtest/gtest.h>

#include "engine/engine.hpp"
#include "net/http_client.hpp"
#include "net/http_server.hpp"

namespace dynaseal::engine {

namespace asio = net::asio;
namespace http = net::http;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace harness {

// What a client saw of one exchange.
struct Reply {
  std::optional<Error> send_error;  // no response head arrived
  unsigned status = 0;
  std::string content_type;
  std::string body;                 // every body byte that arrived, also when reading failed
  std::optional<Error> read_error;  // the body did not end cleanly

  json::value json() const { return json::parse(body); }
};

inline asio::awaitable<Reply> exchange(net::UpstreamPool& pool, http::verb verb, std::string target,
                                       std::string body = {}) {
  net::UpstreamCall call(pool);
  net::Request req{verb, target, 11};
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = std::move(body);
  }
  Reply r;
  if (auto e = co_await call.send(req)) {
    r.send_error = e;
    co_return r;
  }
  r.status = call.head().result_int();
  r.content_type = std::string(call.head()[http::field::content_type]);
  for (;;) {
    auto piece = co_await call.read_some();
    if (!piece) {
      r.read_error = piece.error();
      break;
    }
    if (piece->empty()) break;
    r.body.append(*piece);
  }
  co_return r;
}

// Sends a request, reads until the body contains `until`, then drops the connection. Returns
// what was read.
inline asio::awaitable<std::string> read_then_leave(net::UpstreamPool& pool, std::string target,
                                                    std::string body, std::string until) {
  net::UpstreamCall call(pool);
  net::Request req{http::verb::post, target, 11};
  req.set(http::field::content_type, "application/json");
  req.body() = std::move(body);
  std::string seen;
  if (co_await call.send(req)) co_return seen;
  while (seen.find(until) == std::string::npos) {
    auto piece = co_await call.read_some();
    if (!piece || piece->empty()) break;
    seen.append(*piece);
  }
  call.cancel();
  co_return seen;
}

// The `data:` payloads of an SSE body, split on blank lines; each event must be exactly one
// `data: ` line. Bytes after the last blank line (a cut event) come back as "partial:<bytes>".
inline std::vector<std::string> sse_data(std::string_view body) {
  std::vector<std::string> out;
  while (!body.empty()) {
    const std::size_t end = body.find("\n\n");
    if (end == std::string_view::npos) {
      out.push_back("partial:" + std::string(body));
      break;
    }
    const std::string_view event = body.substr(0, end);
    EXPECT_TRUE(event.starts_with("data: ")) << event;
    EXPECT_EQ(event.find('\n'), std::string_view::npos) << event;
    out.emplace_back(event.substr(std::min<std::size_t>(6, event.size())));
    body.remove_prefix(end + 2);
  }
  return out;
}

// One worker thread unless a test asks for more; tests adjust the rest.
inline net::ServerOptions server_options(unsigned threads = 1) {
  net::ServerOptions o;
  o.threads = threads;
  return o;
}

inline net::ClientOptions client_options(std::chrono::milliseconds first_byte_timeout) {
  net::ClientOptions o;
  o.first_byte_timeout = first_byte_timeout;
  return o;
}

// Polls `done` every 5 ms for up to 5 s; returns its last answer.
template <class Predicate>
bool eventually(Predicate done) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

class Engine {
 public:
  explicit Engine(EngineOptions options = {}, net::ServerOptions server = server_options())
      : service_(std::move(options)),
        server_(on_port_zero(std::move(server)), service_.handler(), &EngineService::reject) {
    server_.start();
  }
  ~Engine() {
    server_.stop(0ms);
    server_.wait();
  }

  std::uint16_t port() const { return server_.port(); }
  EngineService& service() { return service_; }
  net::HttpServer& server() { return server_; }

 private:
  static net::ServerOptions on_port_zero(net::ServerOptions o) {
    o.host = "127.0.0.1";
    o.port = 0;
    if (o.threads == 0) o.threads = 1;
    return o;
  }

  EngineService service_;
  net::HttpServer server_;
};

class Client {
 public:
  explicit Client(std::uint16_t port, net::ClientOptions options = {})
      : pool_(ioc_.get_executor(),
              net::UpstreamTarget{false, "127.0.0.1", std::to_string(port), ""},
              std::move(options)) {}

  // Runs `task` on this client's io_context to completion (at most 20 s).
  template <class T>
  T run(asio::awaitable<T> task) {
    std::optional<T> result;
    std::exception_ptr error;
    bool finished = false;
    asio::co_spawn(ioc_, std::move(task), [&](std::exception_ptr e, T value) {
      finished = true;
      error = e;
      if (!e) result.emplace(std::move(value));
    });
    ioc_.restart();
    ioc_.run_for(20s);
    if (!finished) throw std::runtime_error("the exchange did not finish within 20 s");
    if (error) std::rethrow_exception(error);
    return std::move(*result);
  }

  Reply post(std::string_view target, std::string body) {
    return run(exchange(pool_, http::verb::post, std::string(target), std::move(body)));
  }
  Reply get(std::string_view target) {
    return run(exchange(pool_, http::verb::get, std::string(target)));
  }

  asio::io_context& ioc() { return ioc_; }
  net::UpstreamPool& pool() { return pool_; }

 private:
  asio::io_context ioc_;
  net::UpstreamPool pool_;
};

}  // namespace harness
}  // namespace dynaseal::engine
