// The edge client against scripted peers in this process (FakeHttpServer): key grants,
// refusals, replies that break the contract, streams, transport failures and TLS.

#include "client/client.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include "client/fake_http_server.hpp"
#include "test_support.hpp"

namespace dynaseal::client {
namespace {

using namespace std::chrono_literals;
using dynaseal::testing::FakeHttpServer;
using dynaseal::testing::FakeReply;

constexpr std::string_view kGrant =
    R"({"key":"aaa.bbb.ccc","event_id":"abcdefghijklmnop","expires_at":1700000060,)"
    R"("server":{"id":"llm-1","url":"http://127.0.0.1:8000"}})";

std::string error_body(std::string_view code, std::string_view message) {
  return R"({"error":{"message":")" + std::string(message) + R"(","type":"t","code":")" +
         std::string(code) + R"("}})";
}

std::string chunk(std::string_view content) {
  return R"(data: {"choices":[{"index":0,"delta":{"content":")" + std::string(content) +
         R"("},"finish_reason":null}]})" + "\n\n";
}

const std::string kUsageChunk =
    R"(data: {"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5}})"
    "\n\n";

FakeReply event_stream(std::vector<std::string> chunks) {
  return {.content_type = "text/event-stream",
          .headers = {{"x-dynaseal-event-id", "evt-0123456789abcdef"}},
          .chunks = std::move(chunks)};
}

class ClientTest : public ::testing::Test {
 protected:
  Client client() const {
    auto c = Client::create(options);
    EXPECT_TRUE(c) << c.error().message;
    return *c;
  }
  ClientResult<KeyGrant> grant_from(const FakeHttpServer& backend) const {
    return client().request_key(backend.url(), "user-token", {.model = "demo"});
  }
  ClientResult<ChatResult> chat_with(const FakeHttpServer& server, bool stream,
                                     const DeltaCallback& on_delta = {}) const {
    ChatRequest r{.model = "demo", .messages = {{"user", "hello"}}, .stream = stream};
    return client().chat(server.url(), "dynamic-key", r, on_delta);
  }

  ClientOptions options{.connect_timeout = 5s, .read_timeout = 10s};
};

// ---- Key grants --------------------------------------------------------------------------

TEST_F(ClientTest, GetsAKeyGrant) {
  FakeHttpServer backend(
      [](const net::Request&) { return FakeReply{.body = std::string(kGrant)}; });
  auto grant = client().request_key(backend.url(), "user-token",
                                    {.model = "demo", .max_tokens = 64, .uses = 2});
  ASSERT_TRUE(grant) << grant.error().message;
  EXPECT_EQ(grant->key, "aaa.bbb.ccc");
  EXPECT_EQ(grant->event_id, "abcdefghijklmnop");
  EXPECT_EQ(grant->expires_at, 1700000060);
  EXPECT_EQ(grant->server_id, "llm-1");
  EXPECT_EQ(grant->server_url, "http://127.0.0.1:8000");

  const auto requests = backend.requests();
  ASSERT_EQ(requests.size(), 1u);
  const net::Request& req = requests[0];
  EXPECT_EQ(req.method(), net::http::verb::post);
  EXPECT_EQ(req.target(), "/v1/keys");
  EXPECT_EQ(req[net::http::field::authorization], "Bearer user-token");
  EXPECT_EQ(req[net::http::field::content_type], "application/json");
  EXPECT_EQ(boost::json::parse(req.body()),
            boost::json::parse(R"({"model":"demo","max_tokens":64,"uses":2})"));
}

TEST_F(ClientTest, KeepsTheBackendsBasePath) {
  FakeHttpServer backend(
      [](const net::Request&) { return FakeReply{.body = std::string(kGrant)}; });
  ASSERT_TRUE(client().request_key(backend.url() + "/acme/", "t", {.model = "demo"}));
  EXPECT_EQ(backend.requests().at(0).target(), "/acme/v1/keys");
}

TEST_F(ClientTest, SurfacesEachBackendRefusalWithItsCode) {
  struct Refusal {
    int status;
    std::string code;
  };
  for (const Refusal& r : {Refusal{401, "user_unknown"}, Refusal{403, "model_not_allowed"},
                           Refusal{402, "quota_exhausted"}, Refusal{429, "rate_limited"}}) {
    SCOPED_TRACE(r.code);
    FakeHttpServer backend([&r](const net::Request&) {
      return FakeReply{.status = r.status, .body = error_body(r.code, "refused: " + r.code)};
    });
    auto grant = grant_from(backend);
    ASSERT_FALSE(grant);
    EXPECT_EQ(grant.error().kind, ClientError::Kind::http);
    EXPECT_EQ(grant.error().http_status, r.status);
    EXPECT_EQ(grant.error().code, r.code);
    EXPECT_EQ(grant.error().message, "refused: " + r.code);
  }
}

TEST_F(ClientTest, RefusesMalformedGrants) {
  const std::string missing_url =
      R"({"key":"k","event_id":"abcdefghijklmnop","expires_at":1,"server":{"id":"s"}})";
  const std::string duplicate_key =
      R"({"key":"k","key":"k2","event_id":"abcdefghijklmnop","expires_at":1,)"
      R"("server":{"id":"s","url":"http://h"}})";
  const std::string bad_url = R"({"key":"k","event_id":"abcdefghijklmnop","expires_at":1,)"
                              R"("server":{"id":"s","url":"ftp://h/"}})";
  for (const std::string& body : {std::string("not json"), std::string("<html></html>"),
                                  missing_url, duplicate_key, bad_url, std::string()}) {
    SCOPED_TRACE(body);
    FakeHttpServer backend([&body](const net::Request&) { return FakeReply{.body = body}; });
    auto grant = grant_from(backend);
    ASSERT_FALSE(grant);
    EXPECT_EQ(grant.error().kind, ClientError::Kind::protocol);
    EXPECT_EQ(grant.error().code, kResponseMalformed);
  }
}

TEST_F(ClientTest, RefusesAnOversizedGrant) {
  FakeHttpServer backend([](const net::Request&) {
    return FakeReply{.body = std::string(100 * 1024, ' ') + std::string(kGrant)};
  });
  auto grant = grant_from(backend);
  ASSERT_FALSE(grant);
  EXPECT_EQ(grant.error().kind, ClientError::Kind::protocol);
  EXPECT_EQ(grant.error().code, kResponseTooLarge);
}

TEST_F(ClientTest, OneClientServesSeveralThreadsAtOnce) {
  FakeHttpServer backend(
      [](const net::Request&) { return FakeReply{.body = std::string(kGrant)}; });
  const Client shared = client();
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        if (shared.request_key(backend.url(), "t", {.model = "demo"})) ++granted;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(granted, 20);
  EXPECT_EQ(backend.requests().size(), 20u);
}

// ---- Transport ---------------------------------------------------------------------------

// A port where nothing listens: a socket bound to it, never listening, holds it meanwhile.
class UnusedPort {
 public:
  UnusedPort() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~UnusedPort() { ::close(fd_); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_;
  std::uint16_t port_ = 0;
};

TEST_F(ClientTest, ARefusedConnectionIsATransportError) {
  UnusedPort nobody;
  auto grant = client().request_key(nobody.url(), "t", {.model = "demo"});
  ASSERT_FALSE(grant);
  EXPECT_EQ(grant.error().kind, ClientError::Kind::transport);
  EXPECT_EQ(grant.error().code, kConnectFailed);
  EXPECT_EQ(grant.error().http_status, 0);
  auto answer = client().chat(nobody.url(), "k", {.model = "demo", .messages = {{"user", "x"}}});
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().code, kConnectFailed);
}

TEST_F(ClientTest, APeerTooSlowToAnswerTimesOut) {
  options.read_timeout = 200ms;
  FakeHttpServer backend(
      [](const net::Request&) { return FakeReply{.body = std::string(kGrant), .delay = 3s}; });
  const auto started = std::chrono::steady_clock::now();
  auto grant = grant_from(backend);
  ASSERT_FALSE(grant);
  EXPECT_EQ(grant.error().kind, ClientError::Kind::transport);
  EXPECT_EQ(grant.error().code, kTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
}

TEST_F(ClientTest, APeerThatResetsIsAConnectionLost) {
  FakeHttpServer backend([](const net::Request&) { return FakeReply{.reset = true}; });
  auto grant = grant_from(backend);
  ASSERT_FALSE(grant);
  EXPECT_EQ(grant.error().kind, ClientError::Kind::transport);
  EXPECT_EQ(grant.error().code, kConnectionLost);
}

TEST_F(ClientTest, RefusesBadUrlsAndTokensBeforeConnecting) {
  FakeHttpServer backend(
      [](const net::Request&) { return FakeReply{.body = std::string(kGrant)}; });
  for (std::string url : {std::string("ftp://127.0.0.1/"), std::string("127.0.0.1:80"),
                          backend.url() + "?q=1", std::string("")}) {
    auto grant = client().request_key(url, "t", {.model = "demo"});
    ASSERT_FALSE(grant) << url;
    EXPECT_EQ(grant.error().code, kUrlInvalid) << url;
  }
  for (std::string_view token : {"", "abc\r\nX-Injected: 1", "tab\tinside"}) {
    auto grant = client().request_key(backend.url(), token, {.model = "demo"});
    ASSERT_FALSE(grant);
    EXPECT_EQ(grant.error().kind, ClientError::Kind::transport);
    EXPECT_EQ(grant.error().code, kRequestInvalid);
  }
  EXPECT_TRUE(backend.requests().empty());
}

// ---- Chat --------------------------------------------------------------------------------

TEST_F(ClientTest, ReadsAWholeChatCompletion) {
  FakeHttpServer server([](const net::Request&) {
    return FakeReply{
        .body = R"({"choices":[{"index":0,"message":{"role":"assistant","content":"hi there"},)"
                R"("finish_reason":"stop"}],)"
                R"("usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}})",
        .headers = {{"x-dynaseal-event-id", "evt-0123456789abcdef"}}};
  });
  auto r = chat_with(server, false);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->content, "hi there");
  EXPECT_EQ(r->finish_reason, "stop");
  EXPECT_EQ(r->usage, (Usage{1, 2, 3}));
  EXPECT_EQ(r->event_id, "evt-0123456789abcdef");
  const net::Request req = server.requests().at(0);
  EXPECT_EQ(req.target(), "/v1/chat/completions");
  EXPECT_EQ(req[net::http::field::authorization], "Bearer dynamic-key");
  EXPECT_FALSE(boost::json::parse(req.body()).as_object().contains("stream"));
}

TEST_F(ClientTest, StreamsDeltasAsTheyArrive) {
  std::atomic<std::size_t> seen{0};
  FakeReply reply =
      event_stream({chunk("one "), chunk("two "), chunk("three"), kUsageChunk, "data: [DONE]\n\n"});
  // Chunk i is held back until the client has shown the deltas before it: a client that
  // buffered the stream would never see them, and the test would stall and fail.
  reply.may_send = [&seen](std::size_t i) { return i == 0 || seen >= std::min<std::size_t>(i, 3); };
  FakeHttpServer server([&reply](const net::Request&) { return reply; });
  std::vector<std::string> deltas;
  const auto started = std::chrono::steady_clock::now();
  auto r = chat_with(server, true, [&](std::string_view d) {
    deltas.emplace_back(d);
    ++seen;
  });
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_EQ(deltas, (std::vector<std::string>{"one ", "two ", "three"}));
  EXPECT_EQ(r->content, "one two three");
  EXPECT_EQ(r->usage, (Usage{2, 3, 5}));
  EXPECT_EQ(r->event_id, "evt-0123456789abcdef");
  auto body = boost::json::parse(server.requests().at(0).body()).as_object();
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["stream_options"], boost::json::parse(R"({"include_usage":true})"));
}

TEST_F(ClientTest, AnErrorEventMidStreamIsTypedError) {
  FakeHttpServer server([](const net::Request&) {
    return event_stream(
        {chunk("partial "), "data: " + error_body("upstream_error", "broke") + "\n\n"});
  });
  std::string shown;
  auto r = chat_with(server, true, [&](std::string_view d) { shown += d; });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ClientError::Kind::http);
  EXPECT_EQ(r.error().http_status, 200);
  EXPECT_EQ(r.error().code, "upstream_error");
  EXPECT_EQ(r.error().message, "broke");
  EXPECT_EQ(shown, "partial ");
}

TEST_F(ClientTest, AStreamThatEndsWithoutDoneIsTruncated) {
  FakeHttpServer server([](const net::Request&) { return event_stream({chunk("a")}); });
  auto r = chat_with(server, true);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ClientError::Kind::protocol);
  EXPECT_EQ(r.error().code, kStreamTruncated);
}

TEST_F(ClientTest, AStreamCutByAResetIsAConnectionLost) {
  FakeHttpServer server([](const net::Request&) {
    FakeReply reply = event_stream({chunk("a"), chunk("b")});
    reply.reset = true;
    return reply;
  });
  auto r = chat_with(server, true);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ClientError::Kind::transport);
  EXPECT_EQ(r.error().code, kConnectionLost);
}

TEST_F(ClientTest, AStreamThatIsNotAnEventStreamIsMalformed) {
  FakeHttpServer server([](const net::Request&) { return FakeReply{.body = R"({"choices":[]})"}; });
  auto r = chat_with(server, true);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kResponseMalformed);
}

TEST_F(ClientTest, SurfacesAServerRefusal) {
  FakeHttpServer server([](const net::Request&) {
    return FakeReply{.status = 401, .body = error_body("uses_exhausted", "used up")};
  });
  for (bool stream : {false, true}) {
    auto r = chat_with(server, stream);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, ClientError::Kind::http);
    EXPECT_EQ(r.error().http_status, 401);
    EXPECT_EQ(r.error().code, "uses_exhausted");
  }
}

TEST_F(ClientTest, AnErrorWithoutAnOpenAiBodyKeepsItsStatus) {
  FakeHttpServer server([](const net::Request&) {
    return FakeReply{
        .status = 502, .body = "<html>bad gateway</html>", .content_type = "text/html"};
  });
  auto r = chat_with(server, false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().http_status, 502);
  EXPECT_EQ(r.error().code, kHttpError);
}

TEST_F(ClientTest, RefusesAWholeAnswerAboveTheLimit) {
  options.max_response_bytes = 100;
  FakeHttpServer server([](const net::Request&) {
    return FakeReply{.body = R"({"choices":[{"message":{"content":")" + std::string(200, 'x') +
                             R"("}}]})"};
  });
  auto r = chat_with(server, false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kResponseTooLarge);
}

// ---- TLS ---------------------------------------------------------------------------------

class ClientTls : public ClientTest {
 protected:
  void SetUp() override {
    // A certificate naming only DNS:localhost, so that 127.0.0.1 is the wrong name.
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
        "-subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout '" +
        (dir_ / "key.pem").string() + "' -out '" + (dir_ / "cert.pem").string() +
        "' >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl could not make a certificate";
    backend_ = std::make_unique<FakeHttpServer>(
        [](const net::Request&) { return FakeReply{.body = std::string(kGrant)}; },
        net::TlsFiles{(dir_ / "cert.pem").string(), (dir_ / "key.pem").string()});
  }
  std::string url(std::string_view host) const {
    return "https://" + std::string(host) + ":" + std::to_string(backend_->port());
  }

  dynaseal::testing::TempDir dir_;
  std::unique_ptr<FakeHttpServer> backend_;
};

TEST_F(ClientTls, TalksToAServerItTrusts) {
  options.ca_file = (dir_ / "cert.pem").string();
  auto grant = client().request_key(url("localhost"), "t", {.model = "demo"});
  ASSERT_TRUE(grant) << grant.error().message;
  EXPECT_EQ(grant->event_id, "abcdefghijklmnop");
}

TEST_F(ClientTls, RefusesACertificateItDoesNotTrust) {
  auto grant = client().request_key(url("localhost"), "t", {.model = "demo"});  // system CAs
  ASSERT_FALSE(grant);
  EXPECT_EQ(grant.error().kind, ClientError::Kind::transport);
  EXPECT_EQ(grant.error().code, kTlsFailed);
  EXPECT_TRUE(backend_->requests().empty());
}

TEST_F(ClientTls, RefusesACertificateForAnotherName) {
  options.ca_file = (dir_ / "cert.pem").string();
  auto grant = client().request_key(url("127.0.0.1"), "t", {.model = "demo"});
  ASSERT_FALSE(grant);
  EXPECT_EQ(grant.error().code, kTlsFailed);
  EXPECT_TRUE(backend_->requests().empty());
}

TEST_F(ClientTls, AMissingCaFileFailsCreation) {
  options.ca_file = (dir_ / "absent.pem").string();
  auto c = Client::create(options);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, kTlsFailed);
}

}  // namespace
}  // namespace dynaseal::client
