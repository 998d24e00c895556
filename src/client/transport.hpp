// The client's HTTP/1.1 transport: one request and its response over a fresh connection,
// blocking the calling thread, with deadlines, and HTTPS with certificate verification (the
// system's CA paths or a given PEM bundle), host name checking and SNI. Boost.Beast lives in
// transport.cpp alone; nothing here names it.
//
// Why blocking calls run async operations inside: Beast's stream timeouts apply only to
// asynchronous operations, so each exchange owns a private io_context and runs every step to
// completion on the calling thread. No thread is started. Name resolution uses the system
// resolver (getaddrinfo) and its own timeouts; connect and TLS handshake share
// connect_timeout; writing the request, waiting for the response head and each wait for more
// body bytes are bounded by read_timeout.
//
// Connections are not reused (Connection: close): an edge app makes a few calls per user
// action, and a fresh connection has no state that could go stale between them.
//
//   auto transport = HttpTransport::create({});
//   HttpExchange ex(*transport);
//   if (auto e = ex.post("http://127.0.0.1:9000", "/v1/keys", token, body, "application/json"))
//     return fail(*e);
//   auto body = ex.read_all(64 * 1024);
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "client/client_error.hpp"

namespace dynaseal::client {

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{10000};  // TCP connect plus TLS handshake
  std::chrono::milliseconds read_timeout{120000};    // per write, head, and gap in a body
  std::string ca_file{};                      // PEM bundle for https; empty: the system's CA paths
  std::size_t max_response_bytes = 16 << 20;  // a non-streamed body, or a streamed answer
  std::string user_agent = "dynaseal-client/0.1.0";
};

// The options and the TLS context, shared by copies; safe to use from several threads at once
// (each exchange makes its own connection; the TLS context is only read after create).
class HttpTransport {
 public:
  // Fails with tls_failed when the CA bundle cannot be loaded.
  static ClientResult<HttpTransport> create(ClientOptions options);

  const ClientOptions& options() const { return options_; }

 private:
  friend class HttpExchange;
  struct Tls;
  HttpTransport(ClientOptions options, std::shared_ptr<Tls> tls);

  ClientOptions options_;
  std::shared_ptr<Tls> tls_;
};

// One POST and its response. Not thread-safe; the transport must outlive it.
class HttpExchange {
 public:
  explicit HttpExchange(const HttpTransport& transport);
  ~HttpExchange();
  HttpExchange(const HttpExchange&) = delete;
  HttpExchange& operator=(const HttpExchange&) = delete;

  // Connects to `base_url` (http(s)://host[:port][/base]), sends POST base + `path` with the
  // JSON `body` and `Authorization: Bearer <bearer>`, and reads the response head. Returns a
  // transport error (url_invalid, request_invalid, connect_failed, timeout, tls_failed,
  // connection_lost) or a protocol error (a head that is not HTTP/1.1).
  std::optional<ClientError> post(std::string_view base_url, std::string_view path,
                                  std::string_view bearer, std::string_view body,
                                  std::string_view accept);

  // After a successful post: the status and a header's value ("" when absent).
  int status() const;
  std::string header(std::string_view name) const;

  // The next piece of the (de-chunked) body, valid until the next call; empty at the end.
  ClientResult<std::string_view> read_some();
  // The rest of the body; response_too_large above `max_bytes`.
  ClientResult<std::string> read_all(std::size_t max_bytes);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// True for a URL post() accepts: http://host[:port][/base] or https://...
bool valid_base_url(std::string_view url);

}  // namespace dynaseal::client
