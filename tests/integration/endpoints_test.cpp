// The non-completion endpoints of DESIGN §4: models, the server's identity document, health,
// readiness (which follows the engine) and metrics.

#include <atomic>
#include <thread>

#include <boost/asio.hpp>
#include <boost/json.hpp>

#include "core/jwk.hpp"
#include "harness.hpp"
#include "store/key_file.hpp"

namespace dynaseal::integration {
namespace {

namespace json = boost::json;

using Endpoints = IntegrationTest;

TEST_F(Endpoints, ModelsListsTheModelsTheKeyMayUseThatAreRouted) {
  start();
  Claims c = acme.claims();
  c.dks.models = {"other", "demo", "unrouted"};
  HttpResponse r = http_get(port(), "/v1/models", acme.mint(c));
  ASSERT_EQ(r.status, 200u) << r.body;
  const json::object body = r.json().as_object();
  EXPECT_EQ(body.at("object").as_string(), "list");
  std::vector<std::string> ids;
  for (const json::value& m : body.at("data").as_array()) {
    EXPECT_EQ(m.at("object").as_string(), "model");
    ids.emplace_back(m.at("id").as_string());
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"other", "demo"}));

  HttpResponse none = http_get(port(), "/v1/models");
  EXPECT_EQ(none.status, 401u);
  EXPECT_EQ(none.error_code(), "token_missing");
  Claims expired = acme.claims();
  expired.iat = unix_now() - 1000;
  expired.exp = unix_now() - 500;
  HttpResponse old = http_get(port(), "/v1/models", acme.mint(expired));
  EXPECT_EQ(old.status, 401u);
  EXPECT_EQ(old.error_code(), "token_expired");
}

TEST_F(Endpoints, ModelsDoesNotConsumeAUse) {
  start();
  const std::string key = acme.mint();
  EXPECT_EQ(http_get(port(), "/v1/models", key).status, 200u);
  EXPECT_EQ(http_get(port(), "/v1/models", key).status, 200u);
  EXPECT_EQ(chat(key).status, 200u);
}

TEST_F(Endpoints, WellKnownGivesTheIdAndTheIdentityKeysJwks) {
  start();
  HttpResponse r = http_get(port(), "/.well-known/dynaseal");
  ASSERT_EQ(r.status, 200u) << r.body;
  const json::object doc = r.json().as_object();
  EXPECT_EQ(doc.at("id").as_string(), "llm-1");
  auto identity = store::read_private_key_file(dir / "server.jwk");
  ASSERT_TRUE(identity) << "the server must create its identity key file";
  const json::array& keys = doc.at("jwks").at("keys").as_array();
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].at("kid").as_string(), jwk_thumbprint(identity->public_key()));
  EXPECT_FALSE(keys[0].as_object().contains("d"));
  auto parsed = parse_jwks(json::serialize(doc.at("jwks")));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->front().key, identity->public_key());
}

TEST_F(Endpoints, HealthzIsAlwaysOkAndReadyzFollowsTheEngine) {
  start();
  HttpResponse health = http_get(port(), "/healthz");
  EXPECT_EQ(health.status, 200u);
  HttpResponse ready = http_get(port(), "/readyz");
  EXPECT_EQ(ready.status, 200u) << ready.body;
  EXPECT_EQ(ready.json().at("status").as_string(), "ready");

  ASSERT_EQ(engine->process().stop(scaled(10s)), 0);
  HttpResponse not_ready;
  // Probes are cached for 5 s: the engine's absence shows at the next probe.
  ASSERT_TRUE(eventually(
      [&] {
        not_ready = http_get(port(), "/readyz");
        return not_ready.status == 503;
      },
      scaled(10s)));
  EXPECT_EQ(not_ready.status, 503u) << not_ready.body;
  EXPECT_EQ(not_ready.json().at("status").as_string(), "not_ready");
  EXPECT_EQ(not_ready.json().at("upstreams").at("local").as_bool(), false);
  EXPECT_EQ(http_get(port(), "/healthz").status, 200u);

  // With the engine gone, a completion is a 502 and its use is reported as upstream_error.
  HttpResponse r = chat(acme.mint());
  EXPECT_EQ(r.status, 502u) << r.body;
  EXPECT_EQ(r.error_code(), "upstream_error");
}

// An engine stand-in that counts the connections it accepts and answers each with 200.
class CountingEngine {
 public:
  CountingEngine() : acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] {
      for (;;) {
        boost::asio::ip::tcp::socket s(io_);
        boost::system::error_code ec;
        acceptor_.accept(s, ec);
        if (ec || stopping_) return;
        ++connections_;
        std::string head;
        char buf[1024];
        while (head.find("\r\n\r\n") == std::string::npos) {
          const std::size_t n = s.read_some(boost::asio::buffer(buf), ec);
          if (ec) break;
          head.append(buf, n);
        }
        const std::string reply =
            "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"data\":[]}";
        boost::asio::write(s, boost::asio::buffer(reply), ec);
      }
    });
  }
  ~CountingEngine() {
    stopping_ = true;
    boost::asio::ip::tcp::socket wake(io_);
    boost::system::error_code ec;
    wake.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }
  int connections() const { return connections_; }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::atomic<int> connections_{0};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// A flood of /readyz opens no connections to the engines beyond one probe per upstream per 5 s
// (each probe sends the engine's own key).
TEST_F(Endpoints, AFloodOfReadyzProbesEachEngineOncePerInterval) {
  CountingEngine counted;
  server_options.upstream_toml =
      "prompt_overhead_tokens = 0\n\n[[upstream]]\nname = \"counted\"\n"
      "url = \"" +
      counted.url() + "\"\nmodels = [\"counted\"]\n";
  start();
  const auto began = std::chrono::steady_clock::now();
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(http_get(port(), "/readyz").status, 200u);
  }
  const auto seconds =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - began)
          .count();
  EXPECT_GE(counted.connections(), 1);
  EXPECT_LE(counted.connections(), 1 + seconds / 5 + 1) << "in " << seconds << " s";
}

TEST_F(Endpoints, MetricsCountRequestsByEndpointStatusAndCode) {
  start();
  HttpResponse served = chat(acme.mint());
  ASSERT_EQ(served.status, 200u);
  const std::int64_t completion = served.json().at("usage").at("completion_tokens").as_int64();
  ASSERT_EQ(chat("garbage").status, 401u);
  // Metrics are counted just after each response is written: wait until both are in.
  HttpResponse r;
  const std::string ok =
      R"(dynaseal_requests_total{endpoint="chat.completions",status="200",code="ok"})";
  const std::string refused =
      R"(dynaseal_requests_total{endpoint="chat.completions",status="401",code="token_malformed"})";
  eventually(
      [&] {
        r = http_get(port(), "/metrics");
        return metric(r.body, ok) == 1 && metric(r.body, refused) == 1 &&
               metric(r.body, "dynaseal_in_flight_requests") == 1;
      },
      scaled(3s));
  ASSERT_EQ(r.status, 200u);
  EXPECT_TRUE(r.header("content-type").starts_with("text/plain")) << r.header("content-type");
  const std::string& m = r.body;
  EXPECT_NE(m.find("# TYPE dynaseal_requests_total counter"), std::string::npos);
  EXPECT_EQ(
      metric(m, R"(dynaseal_requests_total{endpoint="chat.completions",status="200",code="ok"})"),
      1);
  EXPECT_EQ(
      metric(
          m,
          R"(dynaseal_requests_total{endpoint="chat.completions",status="401",code="token_malformed"})"),
      1);
  EXPECT_EQ(metric(m, R"(dynaseal_auth_failures_total{code="token_malformed"})"), 1);
  EXPECT_EQ(metric(m, R"(dynaseal_usage_records_total{status="ok"})"), 1);
  EXPECT_EQ(metric(m, R"(dynaseal_tokens_total{model="demo",kind="completion"})"), completion);
  EXPECT_EQ(metric(m, R"(dynaseal_in_flight_requests)"), 1);  // this very request
}

}  // namespace
}  // namespace dynaseal::integration
