// An HTTP/1.1 client for upstream engines: keep-alive connection pools, deadlines, HTTPS with
// certificate verification and SNI, response bodies read piece by piece (never buffered whole
// unless asked), and cancellation from outside (a client that went away).
//
// A pool belongs to one worker thread (one io_context) and is not thread-safe: each worker has
// its own pools, so no lock is taken on the request path.
//
//   UpstreamPool& pool = ...;                 // this thread's pool for the upstream
//   UpstreamCall call(pool);
//   if (auto e = co_await call.send(request)) return fail(*e);   // upstream_error / _timeout
//   while (true) {
//     auto piece = co_await call.read_some();   // empty view at the end of the body
//     if (!piece) return fail(piece.error());
//     if (piece->empty()) break;
//     relay(*piece);
//   }
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "core/error.hpp"

namespace dynaseal::net {

namespace asio = boost::asio;
namespace http = boost::beast::http;

struct UpstreamTarget {
  bool tls = false;
  std::string host;
  std::string port;       // "80" / "443" when the URL gives none
  std::string base_path;  // URL path without a trailing '/', e.g. "" or "/openai"
};

// http://host[:port][/base] or https://host[:port][/base]. Anything else (another scheme,
// credentials, a query or fragment) is nullopt; the caller reports it as a configuration error.
std::optional<UpstreamTarget> parse_upstream_url(std::string_view url);

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds first_byte_timeout{120000};  // request sent -> response head
  std::chrono::milliseconds idle_timeout{60000};         // between two pieces of the body
  std::chrono::milliseconds total_timeout{600000};       // whole exchange
  std::size_t max_idle_connections = 256;                // kept per pool
  bool verify_tls = true;
  std::string ca_file{};  // PEM bundle; empty: the system's default paths
};

class UpstreamPool;

// One request/response exchange on a pooled connection.
class UpstreamCall {
 public:
  explicit UpstreamCall(UpstreamPool& pool);
  ~UpstreamCall();  // returns the connection to the pool if the exchange ended cleanly
  UpstreamCall(const UpstreamCall&) = delete;
  UpstreamCall& operator=(const UpstreamCall&) = delete;

  // Sends `req` (target relative to the base path; Host is set here) and reads the response
  // head. Returns nothing on success, else upstream_error or upstream_timeout.
  asio::awaitable<std::optional<Error>> send(http::request<http::string_body>& req);
  const http::response_header<>& head() const;

  // The next piece of the (de-chunked) body, valid until the next call; empty at the end.
  asio::awaitable<Result<std::string_view>> read_some();
  // The whole remaining body, at most `max_bytes` (else upstream_error).
  asio::awaitable<Result<std::string>> read_all(std::size_t max_bytes);

  // Closes the connection now: a pending read completes with upstream_error. Safe to call
  // from a handler on the same thread while this call awaits.
  void cancel();
  bool cancelled() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class UpstreamPool {
 public:
  UpstreamPool(asio::any_io_executor executor, UpstreamTarget target, ClientOptions options);
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  const UpstreamTarget& target() const { return target_; }
  std::size_t idle_connections() const;

 private:
  friend class UpstreamCall;
  struct Connection;
  std::unique_ptr<Connection> take_idle();
  void put_idle(std::unique_ptr<Connection> c);

  asio::any_io_executor executor_;
  UpstreamTarget target_;
  ClientOptions options_;
  std::unique_ptr<asio::ssl::context> tls_;
  std::deque<std::unique_ptr<Connection>> idle_;
};

}  // namespace dynaseal::net
