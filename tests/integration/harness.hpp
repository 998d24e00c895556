// The integration tests' stack: the real `dynaseal` engine and server on loopback, a backend
// signing key in a temporary directory, and a fixture that starts them, stops them, checks that
// they exited cleanly with no sanitizer report, and shows their logs when a test failed.
//
// Every port is dynamic (listen on port 0; the port is read from the process's listening line),
// so tests run in parallel with anything else.
//
//   using Completions = IntegrationTest;
//   TEST_F(Completions, Works) {
//     start();                                     // engine + server + backend "acme"
//     Claims c = acme.claims();
//     c.dks.max_tokens = 4;
//     HttpResponse r = chat(acme.mint(c));
//     EXPECT_EQ(r.status, 200u);
//   }
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "callback_receiver.hpp"
#include "core/claims.hpp"
#include "core/crypto.hpp"
#include "http_client.hpp"
#include "process.hpp"
#include "test_support.hpp"

namespace dynaseal::integration {

// ---- Keys --------------------------------------------------------------------------------

// A backend's signing keys: writes its private JWK and public JWKS into `dir`, mints tokens.
class Backend {
 public:
  Backend(std::string id, const std::filesystem::path& dir);

  const std::string& id() const { return id_; }
  const SigningKey& key() const { return key_; }
  std::filesystem::path jwks_file() const { return jwks_file_; }
  std::string jwks_json() const;  // {"keys":[<public jwk>]}
  std::string kid() const;

  // Valid claims for server "llm-1": fresh jti, iat now, exp now + 300, model "demo",
  // max_tokens 16, one use. Adjust the returned struct before minting.
  Claims claims() const;
  std::string mint(const Claims& claims) const;  // fails the test when mint_key refuses
  std::string mint() const { return mint(claims()); }
  // Signs arbitrary header and payload JSON (for tokens mint_key would refuse to make).
  std::string sign_raw(std::string_view header_json, std::string_view payload_json) const;

  // Replaces the signing key by a fresh one (mint() then signs with it); returns the old key.
  SigningKey rotate();

 private:
  std::string id_;
  SigningKey key_;
  std::filesystem::path jwks_file_;
};

std::int64_t unix_now();

// ---- Processes ---------------------------------------------------------------------------

struct EngineOptions {
  std::vector<std::string> models{"demo", "other", "strict"};
  int ttft_ms = 0;
  double tokens_per_second = 0;
  std::string flavor = "generic";  // dynaseal engine --flavor: whose length knobs it honours
};

// `dynaseal engine` on 127.0.0.1:0.
class Engine {
 public:
  Engine(const std::filesystem::path& dir, EngineOptions options = {});
  std::uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  Process& process() { return *process_; }
  // GET /stats as JSON.
  boost::json::object stats() const;

 private:
  std::unique_ptr<Process> process_;
  std::uint16_t port_ = 0;
};

struct ServerOptions {
  std::size_t max_body_bytes = 1 << 20;
  int header_timeout_s = 10;
  // Upstream "local" serves models demo and other; upstream "strict" (same engine) serves model
  // "strict" with this first_byte_timeout, so timeouts are testable without slowing the rest.
  int strict_first_byte_timeout_s = 1;
  int grace_s = 3;  // dynaseal server --grace
  // acme's callback URL; the fixture points it at its CallbackReceiver when left empty.
  std::string callback_url;
  // Where state lives (DESIGN §8): "memory" or a redis:// URL; "sqlite:PATH" or a
  // postgresql:// URL. Paths are relative to the server's directory.
  std::string store = "memory";
  std::string db = "sqlite:server.db";
  // Replicas of one server share the identity key and the admin token: point both at one file.
  std::string identity_key = "server.jwk";
  std::string admin_token_file = "admin.token";
  std::string extra_toml;  // more top-level keys, e.g. "replica_id = \"r1\"\n"
  // More keys of upstream "local". The stand-in engine has no chat template: its prompt bound
  // needs no overhead (docs/server.md, "Budget").
  std::string upstream_toml = "prompt_overhead_tokens = 0\n";
  // Delivery tuned for tests: quick retries, short sleeps.
  std::string outbox_toml = "[outbox]\nretry_base_ms = 100\nretry_max_delay = 1\npoll_ms = 50\n";
};

// `dynaseal server --config DIR/server.toml`, its config written from `options`, with backend
// acme registered statically.
class Server {
 public:
  Server(const std::filesystem::path& dir, const std::string& engine_url, const Backend& acme,
         ServerOptions options = {});
  std::uint16_t port() const { return port_; }
  Process& process() { return *process_; }
  const std::filesystem::path& dir() const { return dir_; }
  std::string admin_token() const;  // read from the admin token file
  std::string metrics() const;      // GET /metrics body
  PublicKey identity() const;       // the server's identity public key (server.jwk)

 private:
  std::filesystem::path dir_;
  std::string identity_key_;
  std::string admin_token_file_;
  std::unique_ptr<Process> process_;
  std::uint16_t port_ = 0;
};

// ---- Request bodies ----------------------------------------------------------------------

std::string chat_body(std::string_view model = "demo", std::string_view prompt = "hello there",
                      std::optional<int> max_tokens = std::nullopt, bool stream = false,
                      std::optional<bool> include_usage = std::nullopt);
std::string completion_body(std::string_view model = "demo",
                            std::string_view prompt = "hello there",
                            std::optional<int> max_tokens = std::nullopt, bool stream = false);

// ---- Fixture -----------------------------------------------------------------------------

// Engine + server + backend acme in a fresh temporary directory. Tests call start() (after
// adjusting engine_options / server_options). TearDown stops the processes, checks they
// exited 0 with no sanitizer report, and prints their logs when the test failed.
class IntegrationTest : public ::testing::Test {
 protected:
  IntegrationTest();
  void start();
  void TearDown() override;

  std::uint16_t port() const { return server->port(); }
  // A chat completion with `token`, one connection.
  HttpResponse chat(const std::string& token, const std::string& body = chat_body()) const {
    return http_post(port(), "/v1/chat/completions", body, token);
  }

  testing::TempDir dir;
  CallbackReceiver callbacks;
  Backend acme;
  EngineOptions engine_options;
  ServerOptions server_options;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Server> server;
};

}  // namespace dynaseal::integration
