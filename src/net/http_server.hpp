// An HTTP/1.1 server for Dynaseal's roles (the LLM server, the stand-in engine, the backend).
//
// Threading: one io_context per worker thread, each with its own acceptor on the same listening
// socket (or, with reuse_port, on its own SO_REUSEPORT socket), so a connection lives on one thread
// from accept to close and nothing on the request path is shared between threads. A connection is
// one coroutine: read a request, call the handler, repeat while keep-alive.
//
// Protection against slow or idle clients: a request head must arrive within header_timeout
// (idle_timeout between requests on a kept-alive connection), a body within body_timeout, and
// each write must complete within write_timeout. Heads above max_header_bytes get 431 and
// bodies above max_body_bytes 413, from `reject`, and the connection is closed.
//
// Shutdown: stop() closes the acceptors, closes idle connections, lets in-flight requests
// finish for up to `grace`, then closes everything; wait() returns when all threads are done.
//
//   HttpServer server(options, [](Exchange& ex) -> asio::awaitable<void> {
//     co_await ex.respond(make_response(ex.request(), http::status::ok, "hi"));
//   }, reject);
//   server.start();          // returns once listening; server.port() is the bound port
//   ...; server.stop(std::chrono::seconds(10)); server.wait();
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "core/error.hpp"

namespace dynaseal::net {

namespace asio = boost::asio;
namespace http = boost::beast::http;

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;
using ResponseHead = http::response<http::empty_body>;

struct TlsFiles {
  std::string certificate_chain;  // PEM
  std::string private_key;        // PEM
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: any free port (see HttpServer::port)
  unsigned threads = 0;    // 0: one per core
  std::size_t max_body_bytes = 1 << 20;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_connections = 100000;  // beyond this, new connections are closed at once
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds body_timeout{30000};
  std::chrono::milliseconds write_timeout{30000};
  std::optional<TlsFiles> tls{};
  // false: one listening socket, shared by the worker threads; binding a port that another
  // socket listens on fails. true: one SO_REUSEPORT socket per thread (the kernel spreads
  // connections over them), and any process of the same user may bind the port too.
  bool reuse_port = false;
};

// One request and its response on one connection. The handler must either respond() once, or
// begin_stream(), write() any number of times and end_stream(). Every write returns false when
// the client is gone; the handler should then stop producing.
class Exchange {
 public:
  virtual ~Exchange() = default;

  virtual const Request& request() const = 0;

  virtual asio::awaitable<bool> respond(Response response) = 0;
  // Sends the head of a chunked response (Transfer-Encoding is set here).
  virtual asio::awaitable<bool> begin_stream(ResponseHead head) = 0;
  virtual asio::awaitable<bool> write(std::string_view chunk) = 0;
  virtual asio::awaitable<bool> end_stream() = 0;
  // Resets the connection at once (TCP RST), with or without a response begun: for test
  // doubles that play a crashing peer. Counts as responded; every later write returns false.
  virtual void abort() = 0;

  // While the handler waits on something else (an upstream engine), notices the client going
  // away: `on_gone` runs once, on this connection's thread, when the peer closes or resets.
  // stop_watching() must be awaited before the exchange ends.
  virtual void watch_disconnect(std::function<void()> on_gone) = 0;
  virtual asio::awaitable<void> stop_watching() = 0;
  virtual bool client_gone() const = 0;
};

using Handler = std::function<asio::awaitable<void>(Exchange&)>;

// The listening address cannot be bound (another process listens there); what() says which.
class ListenError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// Builds the response for a request the server refuses itself: body_too_large (413),
// body_malformed (400, or 431 for an oversized head). `version` and `keep_alive` are set after.
using Rejecter = std::function<Response(Error code, http::status status)>;

class HttpServer {
 public:
  // Binds the listening sockets; throws ListenError ("cannot listen on HOST:PORT: Address
  // already in use") when the address cannot be bound, and boost::system::system_error for
  // other socket failures.
  HttpServer(ServerOptions options, Handler handler, Rejecter reject);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  std::uint16_t port() const;
  void start();
  // Thread-safe, idempotent; returns at once. In-flight requests get up to `grace`.
  void stop(std::chrono::milliseconds grace);
  void wait();

  std::size_t open_connections() const;
  std::size_t in_flight() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The token of an `Authorization: Bearer <token>` header (scheme in any case, surrounding spaces
// ignored), or nothing when there is none or it is empty.
std::optional<std::string_view> bearer_token(const Request& req);

// A response to `req` with the request's version and keep-alive, and a body.
Response make_response(const Request& req, http::status status, std::string body,
                       std::string_view content_type = "application/json");

}  // namespace dynaseal::net
