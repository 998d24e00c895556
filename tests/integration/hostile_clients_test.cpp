// Clients that are slow, oversized or not HTTP at all: each gets the right answer (or the door),
// and a well-behaved client at the same time is served as usual.

#include <thread>

#include "harness.hpp"

namespace dynaseal::integration {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::string_view_literals;

class HostileClients : public IntegrationTest {
 protected:
  HostileClients() {
    server_options.header_timeout_s = 1;
    server_options.max_body_bytes = 1 << 20;
  }

  void expect_still_serving() {
    HttpResponse r = chat(acme.mint());
    EXPECT_EQ(r.status, 200u) << r.body;
  }
};

TEST_F(HostileClients, HeadersSentByteByByteAreCutOffAtTheHeaderTimeout) {
  start();
  const std::string head =
      "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + std::string(40, 'z') + "\r\n\r\n";
  HttpConnection slow(port());
  const auto started = Clock::now();
  bool closed = false;
  std::string received;
  std::thread loris([&] {
    for (char byte : head) {
      if (!slow.send_raw(std::string_view(&byte, 1))) {
        closed = true;
        break;
      }
      if (slow.wait_closed(100ms, &received)) {
        closed = true;
        break;
      }
    }
  });
  // Meanwhile, a normal client is served at once.
  std::this_thread::sleep_for(200ms);
  const auto normal_started = Clock::now();
  expect_still_serving();
  EXPECT_LT(Clock::now() - normal_started, scaled(1s));
  loris.join();
  const auto elapsed = Clock::now() - started;
  EXPECT_TRUE(closed) << "the slow client was never disconnected";
  EXPECT_GE(elapsed, 900ms);       // header_timeout = 1 s
  EXPECT_LT(elapsed, scaled(3s));  // the whole head would take ~6 s at this pace
  EXPECT_EQ(received.find("200 OK"), std::string::npos) << received;
  expect_still_serving();
}

// On a kept-alive connection the second request's head gets the header timeout too (1 s), not
// the idle timeout (60 s) that only covers the quiet time between requests.
TEST_F(HostileClients, ASecondHeadOnAKeptAliveConnectionIsCutOffAtTheHeaderTimeout) {
  start();
  HttpConnection conn(port());
  ASSERT_TRUE(conn.send_raw("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  ASSERT_EQ(conn.read_response(scaled(5s)).status, 200u);
  const std::string head = "GET /healthz HTTP/1.1\r\nX-Slow: " + std::string(60, 'z') + "\r\n\r\n";
  const auto started = Clock::now();
  bool closed = false;
  for (char byte : head) {
    if (!conn.send_raw(std::string_view(&byte, 1)) || conn.wait_closed(100ms)) {
      closed = true;
      break;
    }
  }
  const auto elapsed = Clock::now() - started;
  EXPECT_TRUE(closed) << "the dripped head was never cut off";
  EXPECT_GE(elapsed, 900ms);
  EXPECT_LT(elapsed, scaled(4s));  // the whole head would take ~8 s at this pace
  expect_still_serving();
}

// Transfer codings other than a single "chunked" leave the body's bytes or framing uncertain:
// 400 and a closed connection.
TEST_F(HostileClients, TransferCodingsOtherThanChunkedGet400AndAClosedConnection) {
  start();
  for (const char* coding : {"gzip, chunked", "identity", "chunked, chunked", "x-unknown"}) {
    HttpConnection conn(port());
    ASSERT_TRUE(conn.send_raw(std::string("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                                          "Transfer-Encoding: ") +
                              coding + "\r\n\r\n0\r\n\r\n"));
    HttpResponse r = conn.read_response(scaled(5s));
    EXPECT_EQ(r.status, 400u) << coding << " " << r.body;
    EXPECT_TRUE(conn.wait_closed(scaled(2s))) << coding;
  }
  expect_still_serving();
}

TEST_F(HostileClients, AnIdleConnectionWithoutARequestIsClosedAtTheHeaderTimeout) {
  start();
  HttpConnection idle(port());
  const auto started = Clock::now();
  EXPECT_TRUE(idle.wait_closed(scaled(5s)));
  EXPECT_GE(Clock::now() - started, 900ms);
  expect_still_serving();
}

// Content-Length announces 2 MiB with max_body_bytes = 1 MiB: refused before the body is read.
TEST_F(HostileClients, ATwoMebibyteBodyIsRefusedWith413) {
  start();
  const std::string key = acme.mint();
  std::string body = chat_body("demo", std::string(2 << 20, 'x'));
  HttpConnection conn(port());
  std::thread writer([&] {
    conn.send_request("POST", "/v1/chat/completions", body, {{"Authorization", "Bearer " + key}});
  });
  HttpResponse r = conn.read_response();
  writer.join();
  EXPECT_EQ(r.status, 413u) << r.body;
  EXPECT_EQ(r.error_code(), "body_too_large");
  EXPECT_EQ(r.header("connection"), "close");
  // The key was not consumed and the server goes on.
  EXPECT_EQ(chat(key).status, 200u);
}

// Chunked, so the size is only known while reading: refused once it passes the limit.
TEST_F(HostileClients, ATwoMebibyteChunkedBodyIsRefusedWith413) {
  start();
  const std::string key = acme.mint();
  HttpConnection conn(port());
  std::thread writer([&] {
    std::string head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                       key +
                       "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    if (!conn.send_raw(head)) return;
    const std::string chunk = "10000\r\n" + std::string(0x10000, ' ') + "\r\n";
    for (int i = 0; i < 32; ++i) {
      if (!conn.send_raw(chunk)) return;
    }
    conn.send_raw("0\r\n\r\n");
  });
  HttpResponse r = conn.read_response();
  writer.join();
  EXPECT_EQ(r.status, 413u) << r.body;
  EXPECT_EQ(r.error_code(), "body_too_large");
  expect_still_serving();
}

TEST_F(HostileClients, ABodyJustUnderTheLimitIsRead) {
  start();
  // 1 MiB minus a little: read whole, then refused for what it is (no model), not for size.
  std::string body = R"({"pad":")" + std::string((1 << 20) - 100, 'x') + R"("})";
  HttpResponse r = http_post(port(), "/v1/chat/completions", body, acme.mint());
  EXPECT_EQ(r.status, 400u) << r.body.substr(0, 200);
  EXPECT_EQ(r.error_code(), "model_missing");
}

TEST_F(HostileClients, GarbageBytesGet400OrAClosedConnectionAndTheServerGoesOn) {
  start();
  for (std::string_view garbage :
       {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n"sv,  // a TLS hello, say
        "HELLO THERE\r\n\r\n"sv, "GET / HTTP/9.9\r\n\r\n"sv,
        "GET /healthz HTTP/1.1\r\nBad Header Line\r\n\r\n"sv}) {
    HttpConnection conn(port());
    conn.send_raw(garbage);
    HttpResponse r = conn.read_response(scaled(5s));
    if (r.status != 0) {
      EXPECT_EQ(r.status, 400u) << r.body;
      EXPECT_EQ(r.error_code(), "body_malformed");
    }
    EXPECT_TRUE(conn.wait_closed(scaled(5s))) << "the connection must be closed after garbage";
  }
  expect_still_serving();
}

TEST_F(HostileClients, AHeadAbove16KiBGets431) {
  start();
  HttpConnection conn(port());
  conn.send_raw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20 * 1024, 'b') +
                "\r\n\r\n");
  HttpResponse r = conn.read_response();
  EXPECT_EQ(r.status, 431u) << r.body;
  EXPECT_EQ(r.error_code(), "body_malformed");
  expect_still_serving();
}

}  // namespace
}  // namespace dynaseal::integration
