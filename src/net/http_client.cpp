#include "net/http_client.hpp"

#include <sys/socket.h>

#include <array>
#include <cerrno>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>
#include <openssl/ssl.h>

namespace dynaseal::net {
namespace {

namespace beast = boost::beast;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr std::uint32_t kMaxResponseHead = 64 * 1024;

Error classify(const beast::error_code& ec) {
  return ec == beast::error::timeout ? Error::upstream_timeout : Error::upstream_error;
}

}  // namespace

std::optional<UpstreamTarget> parse_upstream_url(std::string_view url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return std::nullopt;
  const auto& u = *parsed;
  if (u.has_userinfo() || u.has_query() || u.has_fragment() || u.host().empty()) {
    return std::nullopt;
  }
  UpstreamTarget t;
  if (u.scheme() == "https") {
    t.tls = true;
  } else if (u.scheme() != "http") {
    return std::nullopt;
  }
  t.host = u.host_address();
  if (u.host_type() == boost::urls::host_type::ipv6) t.host = std::string(u.encoded_host_address());
  t.port = u.has_port() ? std::string(u.port()) : (t.tls ? "443" : "80");
  t.base_path = std::string(u.encoded_path());
  while (!t.base_path.empty() && t.base_path.back() == '/') t.base_path.pop_back();
  return t;
}

struct UpstreamPool::Connection {
  beast::flat_buffer buffer;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;

  beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

  // Runs `op(stream)` on whichever stream this connection has.
  template <class Op>
  asio::awaitable<std::tuple<beast::error_code, std::size_t>> run(Op op) {
    if (secure) co_return co_await op(*secure);
    co_return co_await op(*plain);
  }
};

UpstreamPool::UpstreamPool(asio::any_io_executor executor, UpstreamTarget target,
                           ClientOptions options)
    : executor_(std::move(executor)), target_(std::move(target)), options_(std::move(options)) {
  if (!target_.tls) return;
  tls_ = std::make_unique<ssl::context>(ssl::context::tls_client);
  tls_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                    ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  if (!options_.verify_tls) {
    tls_->set_verify_mode(ssl::verify_none);
    return;
  }
  if (options_.ca_file.empty()) {
    tls_->set_default_verify_paths();
  } else {
    tls_->load_verify_file(options_.ca_file);
  }
  tls_->set_verify_mode(ssl::verify_peer);
}

UpstreamPool::~UpstreamPool() = default;

std::size_t UpstreamPool::idle_connections() const { return idle_.size(); }

namespace {

// An idle connection is usable only while nothing arrived on it: EOF means the engine closed
// it, and any byte (a late response, a TLS alert) means it is not at a clean boundary.
bool still_idle(beast::tcp_stream& stream) {
  if (!stream.socket().is_open()) return false;
  char byte;
  const ssize_t n = ::recv(stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

std::unique_ptr<UpstreamPool::Connection> UpstreamPool::take_idle() {
  while (!idle_.empty()) {
    std::unique_ptr<Connection> c = std::move(idle_.back());
    idle_.pop_back();
    if (still_idle(c->lowest())) return c;
  }
  return nullptr;
}

void UpstreamPool::put_idle(std::unique_ptr<Connection> c) {
  if (idle_.size() >= options_.max_idle_connections) return;  // closes c
  c->lowest().expires_never();
  idle_.push_back(std::move(c));
}

struct UpstreamCall::Impl {
  UpstreamPool& pool;
  std::unique_ptr<UpstreamPool::Connection> conn;
  std::optional<http::response_parser<http::buffer_body>> parser;
  std::array<char, 16 * 1024> piece;  // not zeroed: only what a read wrote is used
  Clock::time_point deadline{};
  bool done = false;
  bool failed = false;
  bool cancelled = false;

  explicit Impl(UpstreamPool& p) : pool(p) {}

  const ClientOptions& options() const { return pool.options_; }

  // The shorter of `step` and what is left of the total deadline.
  std::chrono::milliseconds budget(std::chrono::milliseconds step) const {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left < std::chrono::milliseconds(1)) left = std::chrono::milliseconds(1);
    return std::min(step, left);
  }

  asio::awaitable<std::optional<Error>> connect() {
    const UpstreamTarget& t = pool.target_;
    auto c = std::make_unique<UpstreamPool::Connection>();
    tcp::resolver resolver(pool.executor_);
    auto [rec, endpoints] = co_await resolver.async_resolve(t.host, t.port, kNoThrow);
    if (rec) co_return Error::upstream_error;
    beast::tcp_stream stream(pool.executor_);
    stream.expires_after(budget(options().connect_timeout));
    auto [cec, ep] = co_await stream.async_connect(endpoints, kNoThrow);
    if (cec) co_return classify(cec);
    stream.socket().set_option(tcp::no_delay(true));
    if (!t.tls) {
      c->plain.emplace(std::move(stream));
    } else {
      c->secure.emplace(std::move(stream), *pool.tls_);
      // SNI, and the certificate must name the host we asked for.
      // SSL_set_tlsext_host_name, spelled out: the macro casts in C style.
      if (SSL_ctrl(c->secure->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME,
                   TLSEXT_NAMETYPE_host_name, const_cast<char*>(t.host.c_str())) != 1) {
        co_return Error::upstream_error;
      }
      if (options().verify_tls) c->secure->set_verify_callback(ssl::host_name_verification(t.host));
      c->lowest().expires_after(budget(options().connect_timeout));
      auto [hec] = co_await c->secure->async_handshake(ssl::stream_base::client, kNoThrow);
      if (hec) co_return classify(hec);
    }
    conn = std::move(c);
    co_return std::nullopt;
  }

  // One attempt on one connection: write the request, read the response head. `written` says
  // whether the whole request went out (after that, a failure is never retried).
  asio::awaitable<beast::error_code> exchange(http::request<http::string_body>& req,
                                              bool& written) {
    written = false;
    conn->lowest().expires_after(budget(options().first_byte_timeout));
    auto [wec, wn] =
        co_await conn->run([&](auto& s) { return http::async_write(s, req, kNoThrow); });
    if (wec) co_return wec;
    written = true;
    parser.emplace();
    parser->header_limit(kMaxResponseHead);
    parser->body_limit(boost::none);  // bodies are bounded by their readers
    conn->lowest().expires_after(budget(options().first_byte_timeout));
    auto [rec, rn] = co_await conn->run(
        [&](auto& s) { return http::async_read_header(s, conn->buffer, *parser, kNoThrow); });
    co_return rec;
  }
};

UpstreamCall::UpstreamCall(UpstreamPool& pool) : impl_(std::make_unique<Impl>(pool)) {}

UpstreamCall::~UpstreamCall() {
  Impl& i = *impl_;
  if (i.conn && i.done && !i.failed && !i.cancelled && i.parser && i.parser->keep_alive()) {
    i.pool.put_idle(std::move(i.conn));
  }
}

asio::awaitable<std::optional<Error>> UpstreamCall::send(http::request<http::string_body>& req) {
  Impl& i = *impl_;
  const UpstreamTarget& t = i.pool.target_;
  i.deadline = Clock::now() + i.options().total_timeout;
  const bool default_port = t.port == (t.tls ? "443" : "80");
  req.set(http::field::host, default_port ? t.host : t.host + ":" + t.port);
  req.target(t.base_path + std::string(req.target()));
  req.version(11);
  req.keep_alive(true);
  req.prepare_payload();
  // An idle connection that the engine closed is noticed before use (take_idle). If one still
  // dies under the write (closed in between), the engine has not received the request and one
  // retry on a fresh connection is safe. Once the request is written it is never sent again:
  // the engine may have started on it, and the work would be done (and paid) twice.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (i.cancelled) co_return Error::upstream_error;
    i.conn = i.pool.take_idle();
    const bool reused = i.conn != nullptr;
    if (!reused) {
      if (auto e = co_await i.connect()) co_return e;
    }
    bool written = false;
    beast::error_code ec = co_await i.exchange(req, written);
    if (!ec) co_return std::nullopt;
    i.conn.reset();
    if (!reused || written || i.cancelled) {
      i.failed = true;
      co_return classify(ec);
    }
  }
  i.failed = true;
  co_return Error::upstream_error;
}

const http::response_header<>& UpstreamCall::head() const { return impl_->parser->get().base(); }

asio::awaitable<Result<std::string_view>> UpstreamCall::read_some() {
  Impl& i = *impl_;
  if (i.failed || i.cancelled || !i.conn) co_return Unexpected(Error::upstream_error);
  while (!i.done) {
    if (i.parser->is_done()) {
      i.done = true;
      break;
    }
    auto& body = i.parser->get().body();
    body.data = i.piece.data();
    body.size = i.piece.size();
    i.conn->lowest().expires_after(i.budget(i.options().idle_timeout));
    auto [ec, n] = co_await i.conn->run(
        [&](auto& s) { return http::async_read_some(s, i.conn->buffer, *i.parser, kNoThrow); });
    if (ec == http::error::need_buffer) ec = {};
    if (ec || i.cancelled) {
      i.failed = true;
      co_return Unexpected(i.cancelled ? Error::upstream_error : classify(ec));
    }
    const std::size_t produced = i.piece.size() - i.parser->get().body().size;
    if (i.parser->is_done()) i.done = true;
    if (produced > 0) co_return std::string_view(i.piece.data(), produced);
  }
  co_return std::string_view();
}

asio::awaitable<Result<std::string>> UpstreamCall::read_all(std::size_t max_bytes) {
  std::string body;
  for (;;) {
    auto piece = co_await read_some();
    if (!piece) co_return Unexpected(piece.error());
    if (piece->empty()) co_return body;
    if (body.size() + piece->size() > max_bytes) {
      impl_->failed = true;
      co_return Unexpected(Error::upstream_error);
    }
    body.append(*piece);
  }
}

void UpstreamCall::cancel() {
  Impl& i = *impl_;
  i.cancelled = true;
  if (i.conn) {
    beast::error_code ignored;
    i.conn->lowest().socket().close(ignored);
  }
}

bool UpstreamCall::cancelled() const { return impl_->cancelled; }

}  // namespace dynaseal::net
