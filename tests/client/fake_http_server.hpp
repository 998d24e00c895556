// An in-process HTTP server that plays a peer of the edge client: a business backend or an LLM
// server that answers whatever the test scripts, including answers that break the contract.
// Every request goes to a plain function that returns the reply; requests are recorded.
//
// The server runs one worker thread of net::HttpServer on 127.0.0.1:0 (or TLS, given files);
// the script runs on that thread, so it must be thread-safe with the test's own thread.
//
//   FakeHttpServer backend([](const net::Request& req) {
//     return FakeReply{.status = 402, .body =
//     R"({"error":{"message":"m","code":"quota_exhausted"}})"};
//   });
//   auto grant = client.request_key(backend.url(), "token", {.model = "demo"});
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "net/http_server.hpp"

namespace dynaseal::testing {

struct FakeReply {
  int status = 200;
  std::string body{};
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers{};
  // When not empty: a chunked response, each piece written (and flushed) on its own.
  std::vector<std::string> chunks{};
  // Polled every 2 ms before chunk i is written, for up to 10 s: lets a test hold the stream.
  std::function<bool(std::size_t i)> may_send{};
  std::chrono::milliseconds delay{0};  // before anything is sent
  bool reset = false;                  // reset the connection: at once, or after the chunks
};

class FakeHttpServer {
 public:
  using Script = std::function<FakeReply(const net::Request&)>;

  explicit FakeHttpServer(Script script, std::optional<net::TlsFiles> tls = std::nullopt)
      : script_(std::move(script)) {
    net::ServerOptions options;
    options.threads = 1;
    options.tls = std::move(tls);
    server_ = std::make_unique<net::HttpServer>(
        options, [this](net::Exchange& ex) { return serve(ex); },
        [](Error, net::http::status s) {
          return net::Response{s, 11};
        });
    server_->start();
  }
  ~FakeHttpServer() {
    server_->stop(std::chrono::milliseconds(100));
    server_->wait();
  }
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  std::uint16_t port() const { return server_->port(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }

  std::vector<net::Request> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  net::asio::awaitable<void> serve(net::Exchange& ex) {
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(ex.request());
    }
    const FakeReply reply = script_(ex.request());
    net::asio::steady_timer timer(co_await net::asio::this_coro::executor);
    if (reply.delay.count() > 0) {
      timer.expires_after(reply.delay);
      co_await timer.async_wait(net::asio::use_awaitable);
    }
    const auto status = static_cast<net::http::status>(reply.status);
    if (reply.reset && reply.chunks.empty()) {
      ex.abort();  // a peer that crashes before answering
    } else if (reply.chunks.empty()) {
      net::Response res = net::make_response(ex.request(), status, reply.body, reply.content_type);
      for (const auto& [name, value] : reply.headers) res.set(name, value);
      co_await ex.respond(std::move(res));
    } else {
      net::ResponseHead head{status, 11};
      head.set(net::http::field::content_type, reply.content_type);
      for (const auto& [name, value] : reply.headers) head.set(name, value);
      co_await ex.begin_stream(std::move(head));
      for (std::size_t i = 0; i < reply.chunks.size(); ++i) {
        for (int wait = 0; reply.may_send && !reply.may_send(i) && wait < 5000; ++wait) {
          timer.expires_after(std::chrono::milliseconds(2));
          co_await timer.async_wait(net::asio::use_awaitable);
        }
        if (!co_await ex.write(reply.chunks[i])) co_return;
      }
      if (reply.reset) {
        ex.abort();
      } else {
        co_await ex.end_stream();
      }
    }
  }

  Script script_;
  mutable std::mutex mutex_;
  std::vector<net::Request> requests_;
  std::unique_ptr<net::HttpServer> server_;
};

}  // namespace dynaseal::testing
