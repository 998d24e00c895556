#include "net/http_server.hpp"

#include <unistd.h>

#include <cerrno>
#include <list>
#include <system_error>
#include <thread>
#include <tuple>
#include <unordered_set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "core/thread_name.hpp"

namespace dynaseal::net {
namespace {

namespace beast = boost::beast;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kWatchReadBytes = 512;

// What a worker needs to know of a connection to shut it down.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual void close_if_idle() = 0;
  virtual void close_now() = 0;
};

struct Shared {
  ServerOptions options;
  Handler handler;
  Rejecter reject;
  std::optional<ssl::context> tls;
  std::atomic<std::size_t> open{0};
  std::atomic<std::size_t> in_flight{0};
};

// One thread's share of the server: an io_context, an acceptor, the connections it owns.
struct Worker {
  Shared& shared;
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  std::unordered_set<Connection*> connections;
  bool draining = false;
  asio::steady_timer grace_timer{ioc};

  explicit Worker(Shared& s) : shared(s) {}

  void forget(Connection* c) {
    connections.erase(c);
    if (draining && connections.empty()) ioc.stop();
  }
};

tcp::endpoint resolve_listen(const std::string& host, std::uint16_t port) {
  if (host == "localhost") return {asio::ip::address_v4::loopback(), port};
  return {asio::ip::make_address(host), port};
}

// No Transfer-Encoding, or exactly "chunked".
bool plain_transfer_coding(const http::request_parser<http::string_body>::value_type& head) {
  const auto field = head.find(http::field::transfer_encoding);
  if (field == head.end()) return true;
  if (head.count(http::field::transfer_encoding) != 1) return false;
  std::size_t codings = 0;
  bool chunked = false;
  for (const auto& coding : http::token_list(field->value())) {
    ++codings;
    chunked = beast::iequals(coding, "chunked");
  }
  return codings == 1 && chunked;
}

template <class Stream>
class Session final : public Exchange, public Connection {
 public:
  Session(Worker& worker, Stream stream)
      : worker_(worker), stream_(std::move(stream)), watch_done_(stream_.get_executor()) {
    worker_.connections.insert(this);
    ++worker_.shared.open;
  }
  ~Session() override {
    --worker_.shared.open;
    worker_.forget(this);
  }

  static asio::awaitable<void> serve(std::unique_ptr<Session> self) { co_await self->run(); }

  const Request& request() const override { return request_; }

  asio::awaitable<bool> respond(Response res) override {
    responded_ = true;
    res.version(request_.version());
    res.keep_alive(keep_alive_);
    res.prepare_payload();
    co_return co_await send(res);
  }

  asio::awaitable<bool> begin_stream(ResponseHead head) override {
    responded_ = true;
    streaming_ = true;
    head.version(request_.version());
    head.keep_alive(keep_alive_);
    head.chunked(true);
    http::response_serializer<http::empty_body> sr{head};
    lowest().expires_after(options().write_timeout);
    auto [ec, n] = co_await http::async_write_header(stream_, sr, kNoThrow);
    co_return ok(ec);
  }

  asio::awaitable<bool> write(std::string_view chunk) override {
    if (broken_ || chunk.empty()) co_return !broken_;
    lowest().expires_after(options().write_timeout);
    auto [ec, n] =
        co_await asio::async_write(stream_, http::make_chunk(asio::buffer(chunk)), kNoThrow);
    co_return ok(ec);
  }

  asio::awaitable<bool> end_stream() override {
    streaming_ = false;
    if (broken_) co_return false;
    lowest().expires_after(options().write_timeout);
    auto [ec, n] = co_await asio::async_write(stream_, http::make_chunk_last(), kNoThrow);
    co_return ok(ec);
  }

  void abort() override {
    responded_ = true;
    broken_ = true;
    beast::error_code ignored;
    lowest().socket().set_option(asio::socket_base::linger(true, 0), ignored);
    lowest().socket().close(ignored);
  }

  void watch_disconnect(std::function<void()> on_gone) override {
    on_gone_ = std::move(on_gone);
    watching_ = true;
    watch_started_ = true;
    watch_done_.expires_at(asio::steady_timer::time_point::max());
    // No deadline on the watch itself: writes set their own, and a write timeout closes the
    // socket, which ends the watch too.
    lowest().expires_never();
    watch_next();
  }

  asio::awaitable<void> stop_watching() override {
    if (!watch_started_) co_return;
    watching_ = false;
    if (!watch_finished_) {
      // Cancels the pending watch wait or read; writes are not in flight while the handler
      // awaits this. The socket may already be closed (abort, shutdown): cancel must not throw.
      beast::error_code ignored;
      lowest().socket().cancel(ignored);
      co_await watch_done_.async_wait(kNoThrow);
    }
    watch_started_ = false;
    watch_finished_ = false;
    on_gone_ = nullptr;
  }

  bool client_gone() const override { return gone_; }

  void close_if_idle() override {
    if (idle_) close_now();
  }
  void close_now() override {
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close();
  }

 private:
  const ServerOptions& options() const { return worker_.shared.options; }
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  bool ok(const beast::error_code& ec) {
    if (ec) broken_ = true;
    return !ec;
  }

  asio::awaitable<bool> send(Response& res) {
    lowest().expires_after(options().write_timeout);
    auto [ec, n] = co_await http::async_write(stream_, res, kNoThrow);
    co_return ok(ec);
  }

  asio::awaitable<void> refuse(Error code, http::status status) {
    Response res = worker_.shared.reject(code, status);
    res.version(11);
    res.keep_alive(false);
    res.prepare_payload();
    co_await send(res);
  }

  // Reads into the session buffer while the handler is busy: data is kept for the next
  // request (pipelining); EOF or an error other than our own cancel means the client left.
  // Plain completion handlers, not a coroutine: one wait (no system call) and, only when the
  // socket turns readable, one read. stop_watching waits for the chain to end (watch_done_),
  // so no handler outlives the session.
  void watch_next() {
    if (!watching_ || buffer_.size() >= options().max_header_bytes) return watch_ended({});
    lowest().socket().async_wait(tcp::socket::wait_read,
                                 [this](beast::error_code ec) { watch_readable(ec); });
  }

  void watch_readable(beast::error_code ec) {
    if (ec || !watching_) return watch_ended(ec);
    // Through the stream itself: under TLS, raw TCP bytes belong to the TLS layer.
    stream_.async_read_some(buffer_.prepare(kWatchReadBytes),
                            [this](beast::error_code read_ec, std::size_t n) {
                              buffer_.commit(n);
                              if (read_ec) return watch_ended(read_ec);
                              watch_next();
                            });
  }

  void watch_ended(beast::error_code ec) {
    if (ec && ec != asio::error::operation_aborted && watching_) {
      gone_ = true;
      broken_ = true;
      if (on_gone_) on_gone_();
    }
    watch_finished_ = true;
    watch_done_.cancel();
  }

  asio::awaitable<bool> handshake() {
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      lowest().expires_after(options().header_timeout);
      auto [ec, n] =
          co_await stream_.async_handshake(ssl::stream_base::server, buffer_.data(), kNoThrow);
      buffer_.consume(n);
      co_return !ec;
    }
    co_return true;
  }

  // Reads one request into request_. Returns false when the connection should close.
  asio::awaitable<bool> read_request(bool first) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options().max_header_bytes));
    parser.body_limit(options().max_body_bytes);
    idle_ = buffer_.size() == 0;
    if (worker_.draining && idle_) co_return false;
    if (!first && idle_) {
      // Between requests a kept-alive connection may stay quiet for idle_timeout; once the next
      // request's first byte is in, its head must arrive within header_timeout like the first
      // one's, or a client could drip a head for idle_timeout per request.
      lowest().expires_after(options().idle_timeout);
      auto [quiet, got] = co_await stream_.async_read_some(buffer_.prepare(4096), kNoThrow);
      if (quiet) co_return false;
      buffer_.commit(got);
    }
    lowest().expires_after(options().header_timeout);
    auto [ec, n] = co_await http::async_read_header(stream_, buffer_, parser, kNoThrow);
    idle_ = false;
    if (!ec && !plain_transfer_coding(parser.get())) {
      // Only "chunked" is a transfer coding we can read; any other (gzip, chunked; identity;
      // an unknown one) leaves the body's framing or bytes uncertain: 400, and the connection
      // closes (RFC 9112 6.1).
      co_await refuse(Error::body_malformed, http::status::bad_request);
      co_return false;
    }
    if (!ec && !parser.is_done()) {
      if (http::token_list(parser.get()[http::field::expect]).exists("100-continue")) {
        Response cont{http::status::continue_, parser.get().version()};
        co_await send(cont);
      }
      lowest().expires_after(options().body_timeout);
      std::tie(ec, n) = co_await http::async_read(stream_, buffer_, parser, kNoThrow);
    }
    if (ec == http::error::body_limit) {
      co_await refuse(Error::body_too_large, http::status::payload_too_large);
    } else if (ec == http::error::header_limit) {
      co_await refuse(Error::body_malformed, http::status::request_header_fields_too_large);
    } else if (ec && ec.category() == http::make_error_code(http::error::bad_target).category() &&
               ec != http::error::end_of_stream && ec != http::error::partial_message) {
      co_await refuse(Error::body_malformed, http::status::bad_request);
    }
    if (ec) co_return false;
    request_ = parser.release();
    co_return true;
  }

  asio::awaitable<void> run() {
    if (!co_await handshake()) co_return;
    for (bool first = true;; first = false) {
      if (!co_await read_request(first)) break;
      keep_alive_ = request_.keep_alive() && !worker_.draining;
      responded_ = streaming_ = false;
      ++worker_.shared.in_flight;
      co_await call_handler();
      --worker_.shared.in_flight;
      if (watch_started_) co_await stop_watching();
      if (!responded_ && !broken_) {
        co_await refuse(Error::internal, http::status::internal_server_error);
        break;
      }
      if (broken_ || streaming_ || !keep_alive_ || worker_.draining) break;
    }
    co_await close();
  }

  asio::awaitable<void> call_handler() {
    try {
      co_await worker_.shared.handler(*this);
    } catch (const std::exception&) {
      // A handler bug: the connection is closed below, the server goes on.
      keep_alive_ = false;
    }
  }

  asio::awaitable<void> close() {
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      if (!broken_) {
        lowest().expires_after(std::chrono::seconds(2));
        co_await stream_.async_shutdown(kNoThrow);
      }
    }
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    lowest().close();
  }

  Worker& worker_;
  Stream stream_;
  beast::flat_buffer buffer_;
  Request request_;
  bool keep_alive_ = false;
  bool responded_ = false;
  bool streaming_ = false;
  bool broken_ = false;
  bool idle_ = true;
  bool gone_ = false;
  bool watching_ = false;
  bool watch_started_ = false;
  bool watch_finished_ = false;
  std::function<void()> on_gone_;
  asio::steady_timer watch_done_;  // cancelled when the watch's handler chain has ended
};

asio::awaitable<void> accept_loop(Worker& w) {
  for (;;) {
    auto [ec, socket] = co_await w.acceptor.async_accept(kNoThrow);
    if (!w.acceptor.is_open()) co_return;
    if (ec) {
      // Out of descriptors or similar: back off briefly instead of spinning.
      asio::steady_timer pause(w.ioc, std::chrono::milliseconds(10));
      co_await pause.async_wait(kNoThrow);
      continue;
    }
    if (w.shared.open >= w.shared.options.max_connections) continue;  // socket closes here
    socket.set_option(tcp::no_delay(true));
    beast::tcp_stream stream(std::move(socket));
    if (w.shared.tls) {
      using TlsSession = Session<beast::ssl_stream<beast::tcp_stream>>;
      auto s = std::make_unique<TlsSession>(
          w, beast::ssl_stream<beast::tcp_stream>(std::move(stream), *w.shared.tls));
      asio::co_spawn(w.ioc, TlsSession::serve(std::move(s)), asio::detached);
    } else {
      auto s = std::make_unique<Session<beast::tcp_stream>>(w, std::move(stream));
      asio::co_spawn(w.ioc, Session<beast::tcp_stream>::serve(std::move(s)), asio::detached);
    }
  }
}

ssl::context make_tls_context(const TlsFiles& files) {
  ssl::context ctx(ssl::context::tls_server);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  ctx.use_certificate_chain_file(files.certificate_chain);
  ctx.use_private_key_file(files.private_key, ssl::context::pem);
  return ctx;
}

}  // namespace

struct HttpServer::Impl {
  Shared shared;
  std::list<Worker> workers;
  std::vector<std::thread> threads;
  std::uint16_t port = 0;
  std::atomic<bool> stopping{false};
};

HttpServer::HttpServer(ServerOptions options, Handler handler, Rejecter reject)
    : impl_(std::make_unique<Impl>()) {
  Shared& s = impl_->shared;
  s.options = std::move(options);
  s.handler = std::move(handler);
  s.reject = std::move(reject);
  if (s.options.tls) s.tls.emplace(make_tls_context(*s.options.tls));
  unsigned threads = s.options.threads ? s.options.threads : std::thread::hardware_concurrency();
  if (threads == 0) threads = 1;

  tcp::endpoint endpoint = resolve_listen(s.options.host, s.options.port);
  for (unsigned i = 0; i < threads; ++i) {
    Worker& w = impl_->workers.emplace_back(s);
    if (i > 0 && !s.options.reuse_port) {
      // Every thread waits on the one listening socket: a descriptor of its own for it, so that
      // closing one acceptor leaves the others listening.
      const int fd = ::dup(impl_->workers.front().acceptor.native_handle());
      if (fd < 0) throw std::system_error(errno, std::generic_category(), "dup");
      w.acceptor.assign(endpoint.protocol(), fd);
      continue;
    }
    w.acceptor.open(endpoint.protocol());
    w.acceptor.set_option(tcp::acceptor::reuse_address(true));
    // SO_REUSEPORT lets every process of this user bind the same port and take a share of its
    // connections: a second server started by mistake would serve beside this one, with its own
    // state. Only when configured (ServerOptions::reuse_port).
    if (s.options.reuse_port) w.acceptor.set_option(reuse_port(true));
    boost::system::error_code bound;
    w.acceptor.bind(endpoint, bound);
    if (bound) {
      // Another process listens there (a second server started by mistake): never serve beside
      // it. With reuse_port the bind succeeds, which is what that option is for.
      throw ListenError("cannot listen on " + s.options.host + ":" +
                        std::to_string(endpoint.port()) + ": " + bound.message());
    }
    w.acceptor.listen(asio::socket_base::max_listen_connections);
    // Port 0 picks a free port for the first acceptor; the others share it.
    endpoint.port(w.acceptor.local_endpoint().port());
  }
  impl_->port = endpoint.port();
}

HttpServer::~HttpServer() {
  stop(std::chrono::milliseconds(0));
  wait();
}

std::uint16_t HttpServer::port() const { return impl_->port; }

void HttpServer::start() {
  for (Worker& w : impl_->workers) {
    asio::co_spawn(w.ioc, accept_loop(w), asio::detached);
    impl_->threads.emplace_back([&w, n = impl_->threads.size()] {
      name_this_thread(("http-" + std::to_string(n)).c_str());
      w.ioc.run();
    });
  }
}

void HttpServer::stop(std::chrono::milliseconds grace) {
  if (impl_->stopping.exchange(true)) return;
  for (Worker& w : impl_->workers) {
    asio::post(w.ioc, [&w, grace] {
      w.draining = true;
      beast::error_code ignored;
      w.acceptor.close(ignored);
      // Copy: closing a connection may remove it from the set.
      for (Connection* c : std::vector<Connection*>(w.connections.begin(), w.connections.end())) {
        c->close_if_idle();
      }
      if (w.connections.empty()) {
        w.ioc.stop();
        return;
      }
      w.grace_timer.expires_after(grace);
      w.grace_timer.async_wait([&w](const beast::error_code&) {
        for (Connection* c : std::vector<Connection*>(w.connections.begin(), w.connections.end())) {
          c->close_now();
        }
        w.ioc.stop();
      });
    });
  }
}

void HttpServer::wait() {
  for (std::thread& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
}

std::size_t HttpServer::open_connections() const { return impl_->shared.open; }
std::size_t HttpServer::in_flight() const { return impl_->shared.in_flight; }

Response make_response(const Request& req, http::status status, std::string body,
                       std::string_view content_type) {
  Response res{status, req.version()};
  res.set(http::field::content_type, content_type);
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

std::optional<std::string_view> bearer_token(const Request& req) {
  auto it = req.find(http::field::authorization);
  if (it == req.end()) return std::nullopt;
  std::string_view v = it->value();
  constexpr std::string_view kScheme = "bearer ";
  if (v.size() <= kScheme.size()) return std::nullopt;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(v[i])) != kScheme[i]) return std::nullopt;
  }
  v.remove_prefix(kScheme.size());
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v.empty()) return std::nullopt;
  return v;
}

}  // namespace dynaseal::net
