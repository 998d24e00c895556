#include "client/transport.hpp"

#include <array>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <openssl/ssl.h>

#include "net/http_client.hpp"

namespace dynaseal::client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

constexpr std::uint32_t kMaxResponseHead = 64 * 1024;

// A header value must not carry CR, LF or other controls: they would split the request.
bool header_safe(std::string_view value) {
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

bool is_ip_literal(const std::string& host) {
  beast::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

std::string host_header(const net::UpstreamTarget& t) {
  const std::string host = t.host.find(':') != std::string::npos ? "[" + t.host + "]" : t.host;
  const bool default_port = t.port == (t.tls ? "443" : "80");
  return default_port ? host : host + ":" + t.port;
}

// A failure while exchanging bytes: the deadline, a peer that breaks HTTP, or a lost link.
ClientError exchange_error(const beast::error_code& ec, std::string_view doing) {
  std::string what = std::string(doing) + ": " + ec.message();
  if (ec == beast::error::timeout) return transport_error(kTimeout, std::move(what));
  const bool http_syntax =
      ec.category() == http::make_error_code(http::error::bad_version).category() &&
      ec != http::error::end_of_stream && ec != http::error::partial_message;
  if (http_syntax) return protocol_error(kResponseMalformed, std::move(what));
  return transport_error(kConnectionLost, std::move(what));
}

}  // namespace

struct HttpTransport::Tls {
  ssl::context context{ssl::context::tls_client};
};

HttpTransport::HttpTransport(ClientOptions options, std::shared_ptr<Tls> tls)
    : options_(std::move(options)), tls_(std::move(tls)) {}

ClientResult<HttpTransport> HttpTransport::create(ClientOptions options) {
  auto tls = std::make_shared<Tls>();
  tls->context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                           ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                           ssl::context::no_tlsv1_1);
  beast::error_code ec;
  if (options.ca_file.empty()) {
    tls->context.set_default_verify_paths(ec);
  } else {
    tls->context.load_verify_file(options.ca_file, ec);
  }
  if (ec) {
    return ClientFailure(transport_error(
        kTlsFailed, "cannot load the CA certificates " + options.ca_file + ": " + ec.message()));
  }
  // Always verify: an edge client that skipped it would hand its key to anyone on the path.
  tls->context.set_verify_mode(ssl::verify_peer);
  return HttpTransport(std::move(options), std::move(tls));
}

bool valid_base_url(std::string_view url) { return net::parse_upstream_url(url).has_value(); }

struct HttpExchange::Impl {
  const HttpTransport& transport;
  asio::io_context ioc{1};
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  std::optional<http::response_parser<http::buffer_body>> parser;
  std::array<char, 16 * 1024> piece{};
  bool failed = false;

  explicit Impl(const HttpTransport& t) : transport(t) {}

  const ClientOptions& options() const { return transport.options(); }
  beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

  // Starts one async operation and runs the private io_context until it completed.
  template <class Start>
  beast::error_code run(Start start) {
    beast::error_code result = asio::error::would_block;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    return result;
  }

  // Runs `op(stream)` on whichever stream this exchange has.
  template <class Op>
  beast::error_code on_stream(std::chrono::milliseconds timeout, Op op) {
    lowest().expires_after(timeout);
    if (secure) return run([&](auto handler) { op(*secure, std::move(handler)); });
    return run([&](auto handler) { op(*plain, std::move(handler)); });
  }

  std::optional<ClientError> connect(const net::UpstreamTarget& t);
  std::optional<ClientError> handshake(const net::UpstreamTarget& t);
};

std::optional<ClientError> HttpExchange::Impl::connect(const net::UpstreamTarget& t) {
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  const auto endpoints = resolver.resolve(t.host, t.port, ec);
  if (ec) return transport_error(kConnectFailed, "cannot resolve " + t.host + ": " + ec.message());
  plain.emplace(ioc);
  plain->expires_after(options().connect_timeout);
  ec = run([&](auto handler) { plain->async_connect(endpoints, std::move(handler)); });
  if (ec == beast::error::timeout) {
    return transport_error(kTimeout, "connecting to " + t.host + ":" + t.port + " timed out");
  }
  if (ec) {
    return transport_error(kConnectFailed,
                           "cannot connect to " + t.host + ":" + t.port + ": " + ec.message());
  }
  plain->socket().set_option(tcp::no_delay(true), ec);
  if (!t.tls) return std::nullopt;
  return handshake(t);
}

std::optional<ClientError> HttpExchange::Impl::handshake(const net::UpstreamTarget& t) {
  secure.emplace(std::move(*plain), transport.tls_->context);
  plain.reset();
  // SNI names the host (never an IP address, RFC 6066); the certificate must name it too.
  // SSL_set_tlsext_host_name, spelled out: the macro casts in C style.
  if (!is_ip_literal(t.host) &&
      SSL_ctrl(secure->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(t.host.c_str())) != 1) {
    return transport_error(kTlsFailed, "cannot set the TLS server name " + t.host);
  }
  secure->set_verify_callback(ssl::host_name_verification(t.host));
  lowest().expires_after(options().connect_timeout);
  const beast::error_code ec = run(
      [&](auto handler) { secure->async_handshake(ssl::stream_base::client, std::move(handler)); });
  if (ec == beast::error::timeout) return transport_error(kTimeout, "the TLS handshake timed out");
  if (ec) return transport_error(kTlsFailed, "TLS with " + t.host + " failed: " + ec.message());
  return std::nullopt;
}

HttpExchange::HttpExchange(const HttpTransport& transport)
    : impl_(std::make_unique<Impl>(transport)) {}

HttpExchange::~HttpExchange() = default;

std::optional<ClientError> HttpExchange::post(std::string_view base_url, std::string_view path,
                                              std::string_view bearer, std::string_view body,
                                              std::string_view accept) {
  Impl& i = *impl_;
  const auto target = net::parse_upstream_url(base_url);
  if (!target) {
    return transport_error(kUrlInvalid,
                           "not an http(s)://host[:port][/path] URL: " + std::string(base_url));
  }
  if (bearer.empty() || !header_safe(bearer)) {
    return transport_error(kRequestInvalid, "the bearer token is empty or has control characters");
  }
  if (auto e = i.connect(*target)) return e;
  http::request<http::string_body> req{http::verb::post, target->base_path + std::string(path), 11};
  req.set(http::field::host, host_header(*target));
  req.set(http::field::user_agent, i.options().user_agent);
  req.set(http::field::authorization, "Bearer " + std::string(bearer));
  req.set(http::field::content_type, "application/json");
  req.set(http::field::accept, accept);
  req.keep_alive(false);
  req.body() = std::string(body);
  req.prepare_payload();
  beast::error_code ec = i.on_stream(i.options().read_timeout, [&](auto& s, auto handler) {
    http::async_write(s, req, std::move(handler));
  });
  if (ec) return exchange_error(ec, "sending the request");
  i.parser.emplace();
  i.parser->header_limit(kMaxResponseHead);
  i.parser->body_limit(boost::none);  // bodies are bounded by their readers
  ec = i.on_stream(i.options().read_timeout, [&](auto& s, auto handler) {
    http::async_read_header(s, i.buffer, *i.parser, std::move(handler));
  });
  if (ec) return exchange_error(ec, "reading the response head");
  return std::nullopt;
}

int HttpExchange::status() const { return static_cast<int>(impl_->parser->get().result_int()); }

std::string HttpExchange::header(std::string_view name) const {
  const auto& head = impl_->parser->get();
  const auto it = head.find(beast::string_view(name.data(), name.size()));
  return it == head.end() ? std::string() : std::string(it->value());
}

ClientResult<std::string_view> HttpExchange::read_some() {
  Impl& i = *impl_;
  if (i.failed || !i.parser) {
    return ClientFailure(transport_error(kConnectionLost, "the exchange has failed"));
  }
  while (!i.parser->is_done()) {
    auto& body = i.parser->get().body();
    body.data = i.piece.data();
    body.size = i.piece.size();
    beast::error_code ec = i.on_stream(i.options().read_timeout, [&](auto& s, auto handler) {
      http::async_read_some(s, i.buffer, *i.parser, std::move(handler));
    });
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      i.failed = true;
      return ClientFailure(exchange_error(ec, "reading the response body"));
    }
    const std::size_t produced = i.piece.size() - i.parser->get().body().size;
    if (produced > 0) return std::string_view(i.piece.data(), produced);
  }
  return std::string_view();
}

ClientResult<std::string> HttpExchange::read_all(std::size_t max_bytes) {
  std::string body;
  for (;;) {
    auto piece = read_some();
    if (!piece) return ClientFailure(piece.error());
    if (piece->empty()) return body;
    if (body.size() + piece->size() > max_bytes) {
      impl_->failed = true;
      return ClientFailure(protocol_error(
          kResponseTooLarge,
          "the response body is larger than " + std::to_string(max_bytes) + " bytes"));
    }
    body.append(*piece);
  }
}

}  // namespace dynaseal::client
