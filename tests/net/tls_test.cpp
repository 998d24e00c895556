// The HTTP server over TLS and the upstream client's certificate checks, in one process: a
// self-signed certificate for "localhost" (made with the openssl command), an HttpServer that
// serves it, and UpstreamPools that trust it, do not trust it, or ask for another name.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "net/http_client.hpp"
#include "net/http_server.hpp"
#include "test_support.hpp"

namespace dynaseal::net {
namespace {

class Tls : public ::testing::Test {
 protected:
  void SetUp() override {
    // A certificate naming only DNS:localhost, so that 127.0.0.1 is the wrong name.
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
        "-subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout '" +
        (dir_ / "key.pem").string() + "' -out '" + (dir_ / "cert.pem").string() +
        "' >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl could not make a certificate";
    ServerOptions options;
    options.threads = 1;
    options.tls = TlsFiles{(dir_ / "cert.pem").string(), (dir_ / "key.pem").string()};
    server_ = std::make_unique<HttpServer>(options, handler(), [](Error, http::status s) {
      return Response{s, 11};
    });
    server_->start();
  }
  void TearDown() override {
    server_->stop(std::chrono::milliseconds(100));
    server_->wait();
  }

  // "/hello" answers at once; "/stream" streams five chunks while watching the client.
  static Handler handler() {
    return [](Exchange& ex) -> asio::awaitable<void> {
      if (ex.request().target() != "/stream") {
        co_await ex.respond(
            make_response(ex.request(), http::status::ok, "hello over tls", "text/plain"));
        co_return;
      }
      bool gone = false;
      ex.watch_disconnect([&gone] { gone = true; });
      ResponseHead head{http::status::ok, 11};
      co_await ex.begin_stream(std::move(head));
      asio::steady_timer pause(co_await asio::this_coro::executor);
      for (int i = 0; i < 5 && !gone; ++i) {
        pause.expires_after(std::chrono::milliseconds(5));
        co_await pause.async_wait(asio::use_awaitable);
        co_await ex.write("chunk " + std::to_string(i) + "\n");
      }
      co_await ex.end_stream();
      co_await ex.stop_watching();
    };
  }

  // GETs `path` from the TLS server through a pool built from `url` and `options`.
  Result<std::string> get(const std::string& url, ClientOptions options, std::string path) {
    asio::io_context ioc;
    auto target = parse_upstream_url(url);
    EXPECT_TRUE(target);
    Result<std::string> out = Unexpected(Error::internal);
    {
      UpstreamPool pool(ioc.get_executor(), *target, options);
      asio::co_spawn(
          ioc,
          [&]() -> asio::awaitable<void> {
            UpstreamCall call(pool);
            http::request<http::string_body> req{http::verb::get, path, 11};
            if (auto e = co_await call.send(req)) {
              out = Unexpected(*e);
              co_return;
            }
            out = co_await call.read_all(1 << 20);
          },
          asio::detached);
      ioc.run();
    }
    return out;
  }

  std::string url(std::string_view host) const {
    return "https://" + std::string(host) + ":" + std::to_string(server_->port());
  }
  ClientOptions trusting() const {
    ClientOptions o;
    o.ca_file = (dir_ / "cert.pem").string();
    return o;
  }

  testing::TempDir dir_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(Tls, ServesAndVerifiesATrustedCertificate) {
  auto body = get(url("localhost"), trusting(), "/hello");
  ASSERT_TRUE(body) << to_string(body.error());
  EXPECT_EQ(*body, "hello over tls");
}

TEST_F(Tls, StreamsChunksOverTlsWhileWatchingTheClient) {
  auto body = get(url("localhost"), trusting(), "/stream");
  ASSERT_TRUE(body) << to_string(body.error());
  EXPECT_EQ(*body, "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n");
}

TEST_F(Tls, RefusesACertificateNoTrustedAuthoritySigned) {
  auto body = get(url("localhost"), ClientOptions{}, "/hello");  // system roots only
  ASSERT_FALSE(body);
  EXPECT_EQ(body.error(), Error::upstream_error);
}

TEST_F(Tls, RefusesACertificateForAnotherName) {
  auto body = get(url("127.0.0.1"), trusting(), "/hello");  // the certificate says localhost
  ASSERT_FALSE(body);
  EXPECT_EQ(body.error(), Error::upstream_error);
}

TEST_F(Tls, SkipsVerificationOnlyWhenToldTo) {
  ClientOptions o;
  o.verify_tls = false;
  auto body = get(url("127.0.0.1"), o, "/hello");
  ASSERT_TRUE(body) << to_string(body.error());
}

TEST_F(Tls, RefusesPlainHttpOnATlsPort) {
  auto body = get("http://127.0.0.1:" + std::to_string(server_->port()), ClientOptions{}, "/hello");
  ASSERT_FALSE(body);
}

}  // namespace
}  // namespace dynaseal::net
