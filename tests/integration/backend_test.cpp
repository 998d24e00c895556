// `dynaseal backend` as a real process next to the real engine and server: its command line,
// every minting refusal over HTTP, registration with the server (keys it mints are served),
// signed usage callbacks (forged, stale, replayed, correct), and signing-key rotation.

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <boost/json.hpp>
#include <netinet/in.h>

#include "core/base64url.hpp"
#include "core/jwk.hpp"
#include "core/webhook.hpp"
#include "harness.hpp"
#include "store/key_file.hpp"

namespace dynaseal::integration {
namespace {

namespace json = boost::json;

// free: ordinary; tiny: one key's reservation spends the day's quota, two mints a minute;
// paid: prepaid; brief: five-second keys (rotation).
constexpr std::string_view kPlans = R"(
[[plan]]
name = "free"
models = ["demo"]
max_tokens = 64
uses = 2
key_ttl = 60
mints_per_minute = 100
daily_tokens = 100000

[[plan]]
name = "tiny"
models = ["demo"]
max_tokens = 10
mints_per_minute = 2
daily_tokens = 10

[[plan]]
name = "paid"
models = ["demo"]
mints_per_minute = 100
prepaid = true
[plan.prices.demo]
prompt_per_1k = "0.50"
completion_per_1k = "1.50"

[[plan]]
name = "brief"
models = ["demo"]
max_tokens = 16
key_ttl = 5
mints_per_minute = 100
)";

constexpr std::string_view kSanitizerMarkers[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                                  "runtime error:", "WARNING: ThreadSanitizer"};

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

struct Cli {
  int exit_code = -1;
  std::string out;
  std::string err;
  std::string first_err_line() const { return err.substr(0, err.find('\n')); }
  std::vector<std::string> lines() const {
    std::vector<std::string> out_lines;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) out_lines.push_back(line);
    return out_lines;
  }
};

// A usage event body as the server writes it (DESIGN §5).
std::string event_body(const std::string& jti, std::int64_t use, const std::string& server,
                       const std::string& iss, const std::string& sub) {
  json::object o;
  o["type"] = "usage";
  o["event_id"] = jti;
  o["use"] = use;
  o["server"] = server;
  o["iss"] = iss;
  o["sub"] = sub;
  o["model"] = "demo";
  o["endpoint"] = "chat.completions";
  o["stream"] = false;
  o["status"] = "ok";
  o["usage"] = {{"prompt_tokens", 5}, {"completion_tokens", 7}, {"total_tokens", 12}};
  o["started_at"] = "2026-01-01T00:00:00.000Z";
  o["finished_at"] = "2026-01-01T00:00:01.000Z";
  o["request_sha256"] = std::string(64, '0');
  o["response_sha256"] = std::string(64, 'f');
  return json::serialize(o);
}

// The kid in a dynamic key's header.
std::string kid_of(const std::string& token) {
  auto header = base64url_decode(token.substr(0, token.find('.')));
  if (!header) return "";
  return std::string(json::parse(*header).at("kid").as_string());
}

class BackendTest : public IntegrationTest {
 protected:
  // Writes DIR/backend/backend.toml (backend "shop" for server llm-1 at `server_url`) and starts
  // `dynaseal backend` on a free port.
  void start_backend(const std::string& server_url = "http://127.0.0.1:9") {
    std::filesystem::create_directories(bdir);
    port_ = free_port();
    std::ofstream(config_) << "id = \"shop\"\nlisten = \"127.0.0.1:" << port_ << "\"\n"
                           << "threads = 2\nsigning_key = \"shop.jwk\"\n"
                           << "db = \"sqlite:shop.db\"\n\n[server]\nid = \"llm-1\"\nurl = \""
                           << server_url << "\"\n"
                           << kPlans;
    backend_ = std::make_unique<Process>(
        std::vector<std::string>{"backend", "--config", config_.string(), "--grace", "2"},
        bdir / "backend.log");
    const std::string port = backend_->wait_for_line("backend listening on port ", scaled(10s));
    ASSERT_EQ(std::stoi(port), port_);
  }

  void start_all() {
    start();
    start_backend("http://127.0.0.1:" + std::to_string(server->port()));
  }

  // dynaseal backend --config FILE ARGS...
  Cli cli(const std::vector<std::string>& args, bool config_first = true) const {
    std::vector<std::string> all{"backend"};
    if (config_first) all.insert(all.end(), {"--config", config_.string()});
    all.insert(all.end(), args.begin(), args.end());
    if (!config_first) all.insert(all.end(), {"--config", config_.string()});
    return run(all);
  }

  Cli run(const std::vector<std::string>& args) const {
    const char* env = std::getenv("DYNASEAL_BIN");
    std::string cmd = "'" + std::string(env != nullptr ? env : DYNASEAL_BINARY) + "'";
    for (const auto& a : args) cmd += " '" + a + "'";
    const auto out = bdir / "cli.out", err = bdir / "cli.err";
    cmd += " </dev/null >'" + out.string() + "' 2>'" + err.string() + "'";
    const int status = std::system(cmd.c_str());
    Cli r{WEXITSTATUS(status), testing::read_file(out), testing::read_file(err)};
    for (std::string_view marker : kSanitizerMarkers) {
      EXPECT_EQ(r.err.find(marker), std::string::npos) << "sanitizer report from the CLI:\n"
                                                       << r.err;
    }
    return r;
  }

  std::string add_user(const std::string& name, const std::string& plan,
                       const std::string& credit = "") {
    std::vector<std::string> args{"user", "add", name, "--plan", plan};
    if (!credit.empty()) args.insert(args.end(), {"--credit", credit});
    Cli r = cli(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.lines().empty() ? "" : r.lines().front();
  }

  HttpResponse mint(const std::string& token, const std::string& body = R"({"model":"demo"})") {
    return http_post(port_, "/v1/keys", body, token);
  }
  std::string mint_key(const std::string& token, const std::string& body = R"({"model":"demo"})") {
    HttpResponse r = mint(token, body);
    EXPECT_EQ(r.status, 200u) << r.body;
    return r.status == 200 ? std::string(r.json().at("key").as_string()) : "";
  }

  Cli register_backend() {
    return cli({"register", "--admin-token-file", (dir.path() / "admin.token").string()});
  }
  Cli rotate(bool finish = false) {
    std::vector<std::string> args{"rotate-key", "--admin-token-file",
                                  (dir.path() / "admin.token").string()};
    if (finish) args.push_back("--finish");
    return cli(args);
  }

  // Kids the server has registered for "shop".
  std::vector<std::string> server_kids() {
    HttpResponse r =
        http_request(server->port(), "GET", "/admin/v1/backends/shop", "", server->admin_token());
    std::vector<std::string> kids;
    if (r.status != 200) return kids;
    const json::value doc = r.json();
    for (const auto& k : doc.at("kids").as_array()) kids.emplace_back(k.as_string());
    return kids;
  }

  HttpResponse deliver(const std::string& id, std::int64_t timestamp, const std::string& body,
                       const SigningKey& key) {
    HttpConnection c(port_);
    c.send_request("POST", "/v1/callbacks/usage", body,
                   {{"webhook-id", id},
                    {"webhook-timestamp", std::to_string(timestamp)},
                    {"webhook-signature", webhook_signature(key, id, timestamp, body)}});
    return c.read_response();
  }

  SigningKey server_identity() const {
    auto key = store::read_private_key_file(dir.path() / "server.jwk");
    if (!key) throw std::runtime_error("cannot read server.jwk");
    return *key;
  }

  // The server and engine first: the server may still be delivering a callback to the backend.
  void TearDown() override {
    IntegrationTest::TearDown();
    if (!backend_) return;
    const int code = backend_->stop(scaled(15s));
    const std::string log = backend_->log();
    EXPECT_EQ(code, 0) << "backend did not exit cleanly";
    for (std::string_view marker : kSanitizerMarkers) {
      EXPECT_EQ(log.find(marker), std::string::npos) << "sanitizer report in the backend log";
    }
    if (HasFailure()) std::cerr << "----- backend stderr -----\n" << log << "\n";
  }

  std::filesystem::path bdir = dir.path() / "backend";
  std::filesystem::path config_ = bdir / "backend.toml";
  std::uint16_t port_ = 0;
  std::unique_ptr<Process> backend_;
};

TEST_F(BackendTest, UserAddPrintsTheTokenOnceAloneOnOneLine) {
  start_backend();
  Cli r = cli({"user", "add", "bob", "--plan", "free"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.lines().size(), 1u) << r.out;
  const std::string token = r.lines().front();
  EXPECT_TRUE(std::regex_match(token, std::regex("[A-Za-z0-9_-]{43}"))) << token;
  EXPECT_EQ(r.out, token + "\n");
  Cli list = cli({"user", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("bob"), std::string::npos);
  EXPECT_EQ(list.out.find(token), std::string::npos);  // never shown again
  EXPECT_EQ(testing::read_file(bdir / "shop.db").find(token), std::string::npos);  // only hashed
  EXPECT_EQ(mint(token).status, 200u);
}

TEST_F(BackendTest, ConfigMayStandBeforeOrAfterTheSubcommand) {
  start_backend();
  EXPECT_EQ(cli({"user", "add", "bob", "--plan", "free"}, false).exit_code, 0);
  Cli list = cli({"user", "list"}, false);
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("bob"), std::string::npos);
  Cli plans = cli({"plan"}, false);
  EXPECT_EQ(plans.exit_code, 0) << plans.err;
  for (const char* name : {"free", "tiny", "paid", "brief"}) {
    EXPECT_NE(plans.out.find(name), std::string::npos) << name;
  }
  EXPECT_NE(plans.out.find("price paid demo: prompt 0.50 / 1k tokens, completion 1.50"),
            std::string::npos)
      << plans.out;
}

TEST_F(BackendTest, RefusalsExitOneWithTheirCodeAndUsageErrorsTwo) {
  start_backend();
  ASSERT_EQ(cli({"user", "add", "bob", "--plan", "free"}).exit_code, 0);
  Cli dup = cli({"user", "add", "bob", "--plan", "free"});
  EXPECT_EQ(dup.exit_code, 1);
  EXPECT_TRUE(dup.first_err_line().starts_with("error: conflict: ")) << dup.err;
  Cli plan = cli({"user", "add", "carol", "--plan", "gold"});
  EXPECT_EQ(plan.exit_code, 1);
  EXPECT_TRUE(plan.first_err_line().starts_with("error: not_found: ")) << plan.err;
  EXPECT_EQ(cli({"user", "add", "carol", "--plan", "free", "--credit", "1.0000001"}).exit_code, 2);
  EXPECT_EQ(cli({"user", "add", "--plan", "free"}).exit_code, 2);
  EXPECT_EQ(run({"backend", "user", "list"}).exit_code, 2);  // no --config
  EXPECT_EQ(cli({"usage", "--since", "yesterday"}).exit_code, 2);
  Cli help = cli({"rotate-key", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--finish"), std::string::npos);
  // Any file of ours will do as a token here (the server is unreachable); a token file must be
  // private, so this one is.
  std::ofstream(bdir / "any.token") << "any-token-0123456789\n";
  std::filesystem::permissions(
      bdir / "any.token", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  Cli unreachable = cli({"register", "--admin-token-file", (bdir / "any.token").string()});
  EXPECT_EQ(unreachable.exit_code, 1);
  EXPECT_TRUE(unreachable.first_err_line().starts_with("error: upstream_error: "))
      << unreachable.err;
}

TEST_F(BackendTest, EveryMintRefusalHasItsStatusAndCode) {
  start_backend();
  const std::string free = add_user("bob", "free"), tiny = add_user("tim", "tiny"),
                    broke = add_user("pat", "paid");
  struct Case {
    std::string token, body;
    unsigned status;
    std::string code;
  };
  // Another first character (a random token starts with 'x' one time in 64).
  const std::string unknown = (free[0] == 'x' ? "y" : "x") + free.substr(1);
  const std::vector<Case> cases = {
      {"", R"({"model":"demo"})", 401, "token_missing"},
      {unknown, R"({"model":"demo"})", 401, "user_unknown"},
      {free, R"({"model":"demo","model":"demo"})", 400, "body_malformed"},
      {free, R"({"max_tokens":5})", 400, "model_missing"},
      {free, R"({"model":"other"})", 403, "model_not_allowed"},
      {free, R"({"model":"demo","max_tokens":65})", 403, "max_tokens_exceeded"},
      {free, R"({"model":"demo","uses":3})", 403, "uses_not_allowed"},
      {broke, R"({"model":"demo"})", 402, "credit_exhausted"},
      {tiny, R"({"model":"demo"})", 200, ""},
      {tiny, R"({"model":"demo"})", 402, "quota_exhausted"},  // the first key holds it all
      {tiny, R"({"model":"demo"})", 429, "rate_limited"},     // two mints a minute
  };
  for (const Case& c : cases) {
    HttpResponse r = mint(c.token, c.body);
    EXPECT_EQ(r.status, c.status) << c.code << ": " << r.body;
    EXPECT_EQ(r.error_code(), c.code) << r.body;
  }
  HttpResponse ok = mint(free, R"({"model":"demo","max_tokens":8,"uses":2})");
  ASSERT_EQ(ok.status, 200u) << ok.body;
  const json::value doc = ok.json();
  const json::object& o = doc.as_object();
  EXPECT_TRUE(o.contains("key") && o.contains("event_id") && o.contains("expires_at"));
  EXPECT_EQ(o.at("server").at("id").as_string(), "llm-1");
  EXPECT_EQ(o.at("server").at("url").as_string(), "http://127.0.0.1:9");
}

TEST_F(BackendTest, AKeyMintedAfterRegisterIsServedAndItsUsageComesBack) {
  start_all();
  Cli reg = register_backend();
  ASSERT_EQ(reg.exit_code, 0) << reg.err;
  EXPECT_TRUE(reg.out.starts_with("registered shop at llm-1")) << reg.out;
  const std::string token = add_user("bob", "free");
  HttpResponse minted = mint(token, R"({"model":"demo","max_tokens":8})");
  ASSERT_EQ(minted.status, 200u) << minted.body;
  const std::string key(minted.json().at("key").as_string());
  const std::string jti(minted.json().at("event_id").as_string());
  HttpResponse served = chat(key);
  EXPECT_EQ(served.status, 200u) << served.body;
  // The server's callback reaches the backend and is in its ledger.
  const bool arrived = eventually(
      [&] {
        return cli({"usage", "--json"}).out.find(jti) != std::string::npos;
      },
      scaled(15s));
  ASSERT_TRUE(arrived) << "no usage callback from the server";
  Cli usage = cli({"usage", "--user", "bob", "--json"});
  ASSERT_EQ(usage.lines().size(), 1u) << usage.out;
  const json::value event = json::parse(usage.lines().front());
  EXPECT_EQ(event.at("event_id").as_string(), jti);
  EXPECT_EQ(event.at("sub").as_string(), "bob");
  EXPECT_EQ(event.at("iss").as_string(), "shop");
  EXPECT_EQ(event.at("status").as_string(), "ok");
  const std::int64_t total = event.at("usage").at("total_tokens").as_int64();
  EXPECT_GT(total, 0);
  // Charged to bob's day.
  Cli users = cli({"user", "list"});
  EXPECT_TRUE(
      std::regex_search(users.out, std::regex("bob +free +0\\.00 +" + std::to_string(total))))
      << users.out;
}

// The whole loop, many times: N requests with backend-minted keys give exactly N usage rows at
// the backend, each carrying the engine's token counts; then streams cut off by a SIGKILL of the
// server come back, after its restart, as exactly one `interrupted` event each.
TEST_F(BackendTest, EveryConsumedUseIsExactlyOneStoredEventAlsoAcrossAServerKill) {
  engine_options.tokens_per_second = 10;  // slow enough to kill the server mid-stream
  start_all();
  ASSERT_EQ(register_backend().exit_code, 0);
  const std::string token = add_user("carol", "free");
  std::map<std::string, std::int64_t> expected;  // jti -> the engine's total tokens
  for (int i = 0; i < 6; ++i) {
    HttpResponse minted = mint(token, R"({"model":"demo","max_tokens":3,"uses":1})");
    ASSERT_EQ(minted.status, 200u) << minted.body;
    const std::string jti(minted.json().at("event_id").as_string());
    HttpResponse served = chat(std::string(minted.json().at("key").as_string()),
                               chat_body("demo", "question " + std::to_string(i), 3));
    ASSERT_EQ(served.status, 200u) << served.body;
    expected[jti] = served.json().at("usage").at("total_tokens").as_int64();
  }
  std::vector<std::unique_ptr<HttpConnection>> streams;
  std::vector<std::string> cut;
  for (int i = 0; i < 2; ++i) {
    HttpResponse minted = mint(token, R"({"model":"demo","max_tokens":40,"uses":1})");
    ASSERT_EQ(minted.status, 200u) << minted.body;
    auto s = std::make_unique<HttpConnection>(port());
    ASSERT_TRUE(s->send_request(
        "POST", "/v1/chat/completions", chat_body("demo", "a long story", std::nullopt, true),
        {{"Authorization", "Bearer " + std::string(minted.json().at("key").as_string())}}));
    ASSERT_EQ(s->read_until([](const std::string& b) { return sse_data(b).size() >= 2; }).status,
              200u);
    cut.emplace_back(minted.json().at("event_id").as_string());
    streams.push_back(std::move(s));
  }
  server->process().signal(SIGKILL);
  ASSERT_TRUE(server->process().wait_exit(scaled(5s)).has_value());
  streams.clear();
  server = std::make_unique<Server>(dir.path(), engine->url(), acme, server_options);

  std::vector<std::string> rows;
  ASSERT_TRUE(eventually(
      [&] {
        rows = cli({"usage", "--user", "carol", "--json"}).lines();
        return rows.size() >= expected.size() + cut.size();
      },
      scaled(20s)))
      << rows.size() << " rows";
  std::this_thread::sleep_for(scaled(500ms));  // room for a wrong extra row
  rows = cli({"usage", "--user", "carol", "--json"}).lines();
  ASSERT_EQ(rows.size(), expected.size() + cut.size()) << "one row per consumed use";
  std::set<std::string> seen;
  for (const std::string& row : rows) {
    const json::value event = json::parse(row);
    const std::string jti(event.at("event_id").as_string());
    EXPECT_TRUE(seen.insert(jti).second) << jti << " twice";
    if (auto it = expected.find(jti); it != expected.end()) {
      EXPECT_EQ(event.at("status").as_string(), "ok");
      EXPECT_EQ(event.at("usage").at("total_tokens").as_int64(), it->second) << jti;
    } else {
      EXPECT_NE(std::find(cut.begin(), cut.end(), jti), cut.end()) << jti;
      EXPECT_EQ(event.at("status").as_string(), "interrupted");
    }
  }
}

// Failed uses reach the real backend's ledger as failures (issue 15: their events once carried
// an empty response_sha256, which the backend refused, so they dead-lettered): an engine 500
// (non-streamed and streamed), garbage, a reset mid-stream, and clients that leave before the
// engine answers or mid-stream. Each is stored once, with its status, and with its counts marked as
// an estimate when the engine reported none.
TEST_F(BackendTest, EveryKindOfFailedUseIsStoredWithItsStatus) {
  engine_options.tokens_per_second = 20;  // a stream the client can leave half-way
  start_all();
  ASSERT_EQ(register_backend().exit_code, 0);
  const std::string token = add_user("dave", "free");
  std::map<std::string, std::string> expected;  // jti -> status
  auto key = [&](std::string& jti) {
    HttpResponse minted = mint(token, R"({"model":"demo","max_tokens":8,"uses":1})");
    EXPECT_EQ(minted.status, 200u) << minted.body;
    jti = std::string(minted.json().at("event_id").as_string());
    return std::string(minted.json().at("key").as_string());
  };
  for (const char* fault : {"[[fault:status500]]", "[[fault:garbage]]"}) {
    for (bool stream : {false, true}) {
      std::string jti;
      HttpResponse r = chat(key(jti), chat_body("demo", fault, std::nullopt, stream));
      EXPECT_TRUE(r.status == 502u || (stream && r.status == 200u)) << r.status << r.body;
      expected[jti] = "upstream_error";
    }
  }
  {
    std::string jti;
    HttpResponse r = chat(key(jti), chat_body("demo", "[[fault:reset]]", std::nullopt, true));
    expected[jti] = "upstream_error";
  }
  // Clients that leave: before the engine answers (it hangs), and in the middle of a stream.
  for (const char* prompt : {"[[fault:hang]]", "a slow story"}) {
    std::string jti;
    const std::string k = key(jti);
    {
      HttpConnection gone(port());
      ASSERT_TRUE(gone.send_request("POST", "/v1/chat/completions",
                                    chat_body("demo", prompt, std::nullopt, true),
                                    {{"Authorization", "Bearer " + k}}));
      if (std::string_view(prompt) == "a slow story") {
        gone.read_until([](const std::string& b) { return sse_data(b).size() >= 2; }, scaled(5s));
      } else {
        std::this_thread::sleep_for(scaled(300ms));  // the request reached the engine
      }
    }  // closed here
    expected[jti] = "client_disconnected";
  }
  std::vector<std::string> rows;
  ASSERT_TRUE(eventually(
      [&] {
        rows = cli({"usage", "--user", "dave", "--json"}).lines();
        return rows.size() >= expected.size();
      },
      scaled(20s)))
      << rows.size() << " rows; server log:\n"
      << server->process().log();
  for (const std::string& row : rows) {
    const json::value event = json::parse(row);
    const std::string jti(event.at("event_id").as_string());
    ASSERT_TRUE(expected.count(jti)) << row;
    EXPECT_EQ(event.at("status").as_string(), expected[jti]) << row;
    EXPECT_EQ(event.at("response_sha256").as_string().size(), 64u) << row;
    if (expected[jti] != "upstream_error" || !event.as_object().contains("usage_estimate")) {
      continue;
    }
    EXPECT_EQ(event.at("usage_estimate").as_string(), "prompt_bound") << row;
  }
  // Every consumed use is one row: none missing, none twice.
  EXPECT_EQ(rows.size(), expected.size());
}

// An engine that ignores the cap: its answers reach the real backend as over_cap, never as ok —
// visible, and not billed as a normal answer.
TEST_F(BackendTest, AnswersPastTheCapAreStoredAsOverCap) {
  engine_options.flavor = "reckless";
  start_all();
  ASSERT_EQ(register_backend().exit_code, 0);
  const std::string token = add_user("erin", "free");
  for (bool stream : {false, true}) {
    HttpResponse minted = mint(token, R"({"model":"demo","max_tokens":4,"uses":1})");
    ASSERT_EQ(minted.status, 200u) << minted.body;
    HttpResponse r = chat(std::string(minted.json().at("key").as_string()),
                          chat_body("demo", "hello", 4, stream));
    ASSERT_EQ(r.status, 200u) << r.body;
  }
  std::vector<std::string> rows;
  ASSERT_TRUE(eventually(
      [&] {
        rows = cli({"usage", "--user", "erin", "--json"}).lines();
        return rows.size() >= 2;
      },
      scaled(20s)));
  for (const std::string& row : rows) {
    EXPECT_EQ(json::parse(row).at("status").as_string(), "over_cap") << row;
  }
}

TEST_F(BackendTest, RegisterIsRepeatableAndPinsOnlyTheConfiguredServer) {
  start_all();
  ASSERT_EQ(register_backend().exit_code, 0);
  Cli again = register_backend();
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(again.out.starts_with("updated shop at llm-1")) << again.out;
  EXPECT_EQ(server_kids().size(), 1u);
  HttpResponse one =
      http_request(server->port(), "GET", "/admin/v1/backends/shop", "", server->admin_token());
  EXPECT_EQ(one.json().at("callback_url").as_string(),
            "http://127.0.0.1:" + std::to_string(port_) + "/v1/callbacks/usage");
  // A wrong admin token is refused by the server, and said so.
  std::ofstream(bdir / "wrong.token") << "not-the-admin-token-0123456789\n";
  std::filesystem::permissions(bdir / "wrong.token", std::filesystem::perms::owner_read |
                                                         std::filesystem::perms::owner_write);
  // A token file others can read is refused before anything is sent.
  std::ofstream(bdir / "shared.token") << "not-the-admin-token-0123456789\n";
  std::filesystem::permissions(bdir / "shared.token", std::filesystem::perms::others_read,
                               std::filesystem::perm_options::add);
  Cli shared = cli({"register", "--admin-token-file", (bdir / "shared.token").string()});
  EXPECT_EQ(shared.exit_code, 1);
  EXPECT_TRUE(shared.first_err_line().starts_with("error: key_file_unsafe: ")) << shared.err;
  Cli wrong = cli({"register", "--admin-token-file", (bdir / "wrong.token").string()});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_TRUE(wrong.first_err_line().starts_with("error: admin_unauthorized: ")) << wrong.err;
  // A server whose id is not [server] id is not pinned.
  Cli other = cli({"register", "--server", "http://127.0.0.1:" + std::to_string(engine->port()),
                   "--admin-token-file", (dir.path() / "admin.token").string()});
  EXPECT_EQ(other.exit_code, 1);
  const std::string token = add_user("bob", "free");
  EXPECT_EQ(chat(mint_key(token)).status, 200u);
}

TEST_F(BackendTest, CallbacksMustBeSignedByThePinnedServerFreshAndAreStoredOnce) {
  start_all();
  const std::string jti = "CCCCCCCCCCCCCCCCCCCCCC";
  const std::string body = event_body(jti, 1, "llm-1", "shop", "bob");
  const SigningKey identity = server_identity();
  // Nothing pinned yet.
  EXPECT_EQ(deliver(jti + ".1", unix_now(), body, identity).error_code(), "server_unknown");
  ASSERT_EQ(register_backend().exit_code, 0);
  add_user("bob", "free");

  HttpResponse forged = deliver(jti + ".1", unix_now(), body, SigningKey::generate());
  EXPECT_EQ(forged.status, 401u);
  EXPECT_EQ(forged.error_code(), "signature_invalid");
  HttpResponse stale = deliver(jti + ".1", unix_now() - 301, body, identity);
  EXPECT_EQ(stale.status, 401u);
  EXPECT_EQ(stale.error_code(), "timestamp_stale");
  HttpResponse inconsistent = deliver(jti + ".2", unix_now(), body, identity);
  EXPECT_EQ(inconsistent.status, 400u);
  EXPECT_EQ(inconsistent.error_code(), "webhook_malformed");
  const std::string elsewhere = event_body(jti, 1, "llm-9", "shop", "bob");
  EXPECT_EQ(deliver(jti + ".1", unix_now(), elsewhere, identity).error_code(), "webhook_malformed");
  EXPECT_TRUE(cli({"usage", "--json"}).out.empty());

  HttpResponse ok = deliver(jti + ".1", unix_now(), body, identity);
  ASSERT_EQ(ok.status, 200u) << ok.body;
  EXPECT_FALSE(ok.json().at("duplicate").as_bool());
  HttpResponse replayed = deliver(jti + ".1", unix_now(), body, identity);
  EXPECT_EQ(replayed.status, 200u);
  EXPECT_TRUE(replayed.json().at("duplicate").as_bool());
  Cli usage = cli({"usage", "--json"});
  ASSERT_EQ(usage.lines().size(), 1u) << usage.out;
  EXPECT_EQ(usage.lines().front(), body);  // stored as received
  Cli table = cli({"usage", "--user", "bob"});
  EXPECT_NE(table.out.find(jti + ".1"), std::string::npos) << table.out;
  Cli list = cli({"user", "list"});
  EXPECT_NE(list.out.find("bob"), std::string::npos);
}

TEST_F(BackendTest, RotationRegistersTheNewKeyFirstAndRetiresTheOldOneAfterItsKeysExpire) {
  // The server's leeway is 0 so that the old key's last token is dead two seconds after it
  // was minted (a top-level key, before the outbox table the harness writes).
  server_options.outbox_toml = "leeway = 0\n" + server_options.outbox_toml;
  start_all();
  ASSERT_EQ(register_backend().exit_code, 0);
  const std::string token = add_user("bob", "brief");
  const std::string before = mint_key(token);
  const std::string old_kid = kid_of(before);
  ASSERT_EQ(server_kids(), std::vector<std::string>{old_kid});

  Cli rotated = rotate();
  ASSERT_EQ(rotated.exit_code, 0) << rotated.err;
  std::vector<std::string> kids = server_kids();
  ASSERT_EQ(kids.size(), 2u);  // the new key is registered, the old one still is
  const std::string new_kid = kids[0] == old_kid ? kids[1] : kids[0];
  EXPECT_NE(rotated.out.find("new signing key " + new_kid), std::string::npos) << rotated.out;
  EXPECT_EQ(chat(before).status, 200u);  // minted before the rotation, still valid
  // The running backend switches within a second, without a restart.
  std::string after;
  ASSERT_TRUE(eventually(
      [&] {
        after = mint_key(token);
        return kid_of(after) == new_kid;
      },
      scaled(5s)));
  EXPECT_EQ(chat(after).status, 200u);

  // Too early to retire: the old key's tokens may still be alive.
  Cli early = rotate(true);
  ASSERT_EQ(early.exit_code, 0) << early.err;
  EXPECT_NE(early.out.find("key " + old_kid + " retiring"), std::string::npos) << early.out;
  EXPECT_EQ(server_kids().size(), 2u);
  // Once they have expired (and the switch margin passed), --finish retires it.
  bool retired = false;
  const auto deadline = std::chrono::steady_clock::now() + scaled(30s);
  while (!retired && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1s);
    Cli finish = rotate(true);
    ASSERT_EQ(finish.exit_code, 0) << finish.err;
    retired = finish.out.find("retired key " + old_kid) != std::string::npos;
  }
  ASSERT_TRUE(retired);
  EXPECT_EQ(server_kids(), std::vector<std::string>{new_kid});
  EXPECT_EQ(chat(mint_key(token)).status, 200u);
  // Registering again keeps only the keys not retired.
  ASSERT_EQ(register_backend().exit_code, 0);
  EXPECT_EQ(server_kids(), std::vector<std::string>{new_kid});
  HttpResponse jwks = http_get(port_, "/.well-known/jwks.json");
  EXPECT_EQ(jwks.json().at("keys").as_array().size(), 1u);
}

}  // namespace
}  // namespace dynaseal::integration
