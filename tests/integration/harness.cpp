#include "harness.hpp"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <stdexcept>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/base64url.hpp"
#include "core/dynamic_key.hpp"
#include "core/jwk.hpp"
#include "store/key_file.hpp"

namespace dynaseal::integration {
namespace {

namespace json = boost::json;

std::string tail(const std::string& text, std::size_t max) {
  return text.size() <= max ? text : "...\n" + text.substr(text.size() - max);
}

// The markers sanitizer runtimes print; any of them in a process's stderr is a finding.
constexpr std::string_view kSanitizerMarkers[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                                  "runtime error:", "WARNING: ThreadSanitizer"};

}  // namespace

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---- Keys --------------------------------------------------------------------------------

Backend::Backend(std::string id, const std::filesystem::path& dir)
    : id_(std::move(id)), key_(SigningKey::generate()), jwks_file_(dir / (id_ + ".jwks.json")) {
  if (!store::write_private_key_file(dir / (id_ + ".jwk"), key_)) {
    throw std::runtime_error("cannot write the private key of " + id_);
  }
  std::ofstream(jwks_file_) << jwks_json();
}

std::string Backend::jwks_json() const {
  return dynaseal::jwks_json({make_public_jwk(key_.public_key())});
}

std::string Backend::kid() const { return jwk_thumbprint(key_.public_key()); }

Claims Backend::claims() const {
  Claims c;
  c.iss = id_;
  c.aud = {"llm-1"};
  c.sub = "user-42";
  c.jti = random_jti();
  c.iat = unix_now();
  c.exp = c.iat + 300;
  c.dks.models = {"demo"};
  c.dks.max_tokens = 16;
  c.dks.uses = 1;
  return c;
}

std::string Backend::mint(const Claims& claims) const {
  auto token = mint_key(claims, key_);
  if (!token) {
    ADD_FAILURE() << "mint_key refused: " << to_string(token.error());
    return "";
  }
  return *token;
}

std::string Backend::sign_raw(std::string_view header_json, std::string_view payload_json) const {
  std::string token = base64url_encode(header_json) + "." + base64url_encode(payload_json);
  const Signature sig = key_.sign(as_bytes(token));
  return token + "." + base64url_encode(sig);
}

SigningKey Backend::rotate() {
  SigningKey old = key_;
  key_ = SigningKey::generate();
  return old;
}

// ---- Processes ---------------------------------------------------------------------------

Engine::Engine(const std::filesystem::path& dir, EngineOptions options) {
  std::string models;
  for (const std::string& m : options.models) models += (models.empty() ? "" : ",") + m;
  process_ = std::make_unique<Process>(
      std::vector<std::string>{"engine", "--listen", "127.0.0.1:0", "--models", models, "--ttft-ms",
                               std::to_string(options.ttft_ms), "--tokens-per-second",
                               std::to_string(options.tokens_per_second), "--threads", "2",
                               "--flavor", options.flavor},
      dir / "engine.log");
  const std::string url = process_->wait_for_line("engine listening on http://", scaled(10s));
  port_ = static_cast<std::uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
}

json::object Engine::stats() const {
  HttpResponse r = http_get(port_, "/stats");
  if (r.status != 200) throw std::runtime_error("engine /stats: " + std::to_string(r.status));
  return r.json().as_object();
}

Server::Server(const std::filesystem::path& dir, const std::string& engine_url, const Backend& acme,
               ServerOptions o)
    : dir_(dir), identity_key_(o.identity_key), admin_token_file_(o.admin_token_file) {
  std::ofstream toml(dir / "server.toml");
  toml << "id = \"llm-1\"\n"
       << "listen = \"127.0.0.1:0\"\n"
       << "identity_key = \"" << o.identity_key << "\"\n"
       << "admin_token_file = \"" << o.admin_token_file << "\"\n"
       << "store = \"" << o.store << "\"\n"
       << "db = \"" << o.db << "\"\n"
       << o.extra_toml << "max_body_bytes = " << o.max_body_bytes << "\n"
       << "header_timeout = " << o.header_timeout_s << "\n"
       << "access_log = true\n"
       << "threads = 2\n\n"
       << o.outbox_toml << "\n"
       << "[[upstream]]\nname = \"local\"\nurl = \"" << engine_url << "\"\n"
       << "models = [\"demo\", \"other\"]\n"
       << o.upstream_toml << "\n"
       << "[[upstream]]\nname = \"strict\"\nurl = \"" << engine_url << "\"\n"
       << "models = [\"strict\"]\nprompt_overhead_tokens = 0\nfirst_byte_timeout = "
       << o.strict_first_byte_timeout_s << "\n\n"
       << "[[backend]]\nid = \"" << acme.id() << "\"\njwks = \"" << acme.jwks_file().string()
       << "\"\n";
  if (!o.callback_url.empty()) toml << "callback_url = \"" << o.callback_url << "\"\n";
  toml.close();
  process_ = std::make_unique<Process>(
      std::vector<std::string>{"server", "--config", (dir / "server.toml").string(), "--grace",
                               std::to_string(o.grace_s)},
      dir / "server.log");
  port_ = static_cast<std::uint16_t>(
      std::stoi(process_->wait_for_line("server listening on port ", scaled(10s))));
}

PublicKey Server::identity() const {
  auto key = store::read_private_key_file(dir_ / identity_key_);
  if (!key) throw std::runtime_error("cannot read server.jwk");
  return key->public_key();
}

std::string Server::admin_token() const {
  std::string token = testing::read_file(dir_ / admin_token_file_);
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  return token;
}

std::string Server::metrics() const { return http_get(port_, "/metrics").body; }

// ---- Request bodies ----------------------------------------------------------------------

std::string chat_body(std::string_view model, std::string_view prompt,
                      std::optional<int> max_tokens, bool stream,
                      std::optional<bool> include_usage) {
  json::object body;
  body["model"] = model;
  body["messages"] = json::array{json::object{{"role", "user"}, {"content", prompt}}};
  if (max_tokens) body["max_tokens"] = *max_tokens;
  if (stream) body["stream"] = true;
  if (include_usage) body["stream_options"] = json::object{{"include_usage", *include_usage}};
  return json::serialize(body);
}

std::string completion_body(std::string_view model, std::string_view prompt,
                            std::optional<int> max_tokens, bool stream) {
  json::object body;
  body["model"] = model;
  body["prompt"] = prompt;
  if (max_tokens) body["max_tokens"] = *max_tokens;
  if (stream) body["stream"] = true;
  return json::serialize(body);
}

// ---- Fixture -----------------------------------------------------------------------------

IntegrationTest::IntegrationTest() : acme("acme", dir.path()) {}

void IntegrationTest::start() {
  engine = std::make_unique<Engine>(dir.path(), engine_options);
  if (server_options.callback_url.empty()) server_options.callback_url = callbacks.url();
  server = std::make_unique<Server>(dir.path(), engine->url(), acme, server_options);
}

void IntegrationTest::TearDown() {
  struct Stopped {
    const char* name;
    Process* process;
    int exit_code;
  };
  std::vector<Stopped> stopped;
  // The server first: it may hold engine connections that the engine would wait for.
  if (server)
    stopped.push_back({"server", &server->process(), server->process().stop(scaled(15s))});
  if (engine)
    stopped.push_back({"engine", &engine->process(), engine->process().stop(scaled(15s))});
  for (const Stopped& s : stopped) {
    const std::string log = s.process->log();
    EXPECT_EQ(s.exit_code, 0) << s.name << " did not exit cleanly";
    for (std::string_view marker : kSanitizerMarkers) {
      EXPECT_EQ(log.find(marker), std::string::npos)
          << "sanitizer report in the " << s.name << " log (" << s.process->log_file() << ")";
    }
  }
  // DYNASEAL_INTEGRATION_LOGS=DIR keeps every process log (the temporary directory goes).
  if (const char* keep = std::getenv("DYNASEAL_INTEGRATION_LOGS"); keep != nullptr && *keep) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::filesystem::create_directories(keep);
    for (const Stopped& s : stopped) {
      std::error_code ignored;
      std::filesystem::copy_file(
          s.process->log_file(),
          std::filesystem::path(keep) /
              (std::string(info->test_suite_name()) + "." + info->name() + "." + s.name + ".log"),
          std::filesystem::copy_options::overwrite_existing, ignored);
    }
  }
  if (HasFailure()) {
    for (const Stopped& s : stopped) {
      std::cerr << "----- " << s.name << " stderr (" << s.process->log_file() << ") -----\n"
                << tail(s.process->log(), 16 * 1024) << "\n";
    }
  }
}

}  // namespace dynaseal::integration
