// What a key's scope bounds, tried as a hostile client would, through the real engine and
// server (issue 15): members the server does not know are refused by name before the use is
// spent, failures after it carry x-should-retry: false, the admin router survives every path
// shape, and a second server cannot serve beside the first.

#include <fstream>
#include <sstream>

#include <boost/json.hpp>

#include "harness.hpp"

namespace dynaseal::integration {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

using Enforcement = IntegrationTest;

std::string chat_with(std::string_view member) {
  return std::string(R"({"model":"demo","messages":[{"role":"user","content":"hi"}],)") +
         std::string(member) + "}";
}

std::string file_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST_F(Enforcement, MembersTheServerDoesNotKnowAre400AndNameTheMemberBeforeTheUseIsSpent) {
  start();
  const std::string key = acme.mint();  // single use
  for (const char* member :
       {R"("n_predict":2000)", R"("max_new_tokens":2000)", R"("min_tokens":500)",
        R"("ignore_eos":true)", R"("options":{"num_predict":2000})", R"("top_k":5)"}) {
    HttpResponse r = chat(key, chat_with(member));
    EXPECT_EQ(r.status, 400u) << r.body;
    EXPECT_EQ(r.error_code(), "member_not_allowed") << r.body;
    const std::string name = std::string(member).substr(1, std::string(member).find('"', 1) - 1);
    EXPECT_EQ(r.json().at("error").at("param").as_string(), name) << r.body;
    EXPECT_EQ(r.header("x-should-retry"), "");  // nothing was spent: fix the request and retry
  }
  HttpResponse several =
      http_post(port(), "/v1/completions", R"({"model":"demo","prompt":["a","b","c"]})", key);
  EXPECT_EQ(several.status, 403u) << several.body;
  EXPECT_EQ(several.error_code(), "n_not_allowed");
  HttpResponse best_of =
      http_post(port(), "/v1/completions", R"({"model":"demo","prompt":"a","best_of":4})", key);
  EXPECT_EQ(best_of.error_code(), "n_not_allowed");
  HttpResponse image =
      chat(key, R"({"model":"demo","messages":[{"role":"user","content":[{"type":"image_url",)"
                R"("image_url":{"url":"http://169.254.169.254/x.png"}}]}]})");
  EXPECT_EQ(image.status, 400u);
  EXPECT_EQ(image.error_code(), "content_not_allowed");
  // None of these spent the single use.
  EXPECT_EQ(chat(key).status, 200u);
}

TEST_F(Enforcement, AnOperatorMayAllowExtraMembersThatDoNotChangeTheLength) {
  server_options.upstream_toml = "prompt_overhead_tokens = 0\nextra_members = [\"top_k\"]\n";
  start();
  Claims c = acme.claims();
  c.dks.max_tokens = 3;
  HttpResponse r = chat(acme.mint(c), chat_with(R"("top_k":5,"max_completion_tokens":3)"));
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_LE(r.json().at("usage").at("completion_tokens").as_int64(), 3);
}

TEST_F(Enforcement, AFailureAfterTheUseIsSpentTellsClientsNotToRetry) {
  start();
  HttpResponse failed = chat(acme.mint(), chat_body("demo", "[[fault:status500]]"));
  EXPECT_EQ(failed.status, 502u) << failed.body;
  EXPECT_EQ(failed.header("x-should-retry"), "false");
  // A refusal before the use is spent leaves retries to the client.
  HttpResponse refused = chat("not-a-key");
  EXPECT_EQ(refused.status, 401u);
  EXPECT_EQ(refused.header("x-should-retry"), "");
}

TEST_F(Enforcement, TheAdminRouterAnswersEveryPathShapeWithoutFalling) {
  start();
  const std::string admin = server->admin_token();
  for (const char* path : {"/admin/v1", "/admin/", "/admin/x", "/admin/v1/", "/admin/v1//",
                           "/admin/v1/backends/", "/admin/v1/backends/acme/keys/",
                           "/admin/v1/a/b/c/d/e", "/admin/v1/backends/acme/keys/k/extra"}) {
    HttpResponse r = http_get(port(), path, admin);
    EXPECT_EQ(r.status, 404u) << path << " " << r.body;
  }
  EXPECT_EQ(http_request(port(), "DELETE", "/admin/v1/backends", "", admin).status, 405u);
  EXPECT_EQ(http_get(port(), "/admin/v1/backends/acme", admin).status, 200u);
  EXPECT_EQ(http_get(port(), "/healthz").status, 200u);
}

TEST_F(Enforcement, ASubRevocationCoversKeysIssuedWithinTheLeewayAhead) {
  start();
  Claims ahead = acme.claims();
  ahead.sub = "user-9";
  ahead.iat += 20;  // a backend clock 20 s ahead: accepted within the 30 s leeway
  ahead.exp += 20;
  const std::string key = acme.mint(ahead);
  ASSERT_EQ(http_post(port(), "/admin/v1/revocations", R"({"iss":"acme","sub":"user-9"})",
                      server->admin_token())
                .status,
            200u);
  HttpResponse r = chat(key);
  EXPECT_EQ(r.status, 401u) << r.body;
  EXPECT_EQ(r.error_code(), "token_revoked");
}

// A second server on the same port, or on the same SQLite database, refuses to start: it would
// serve with a memory store of its own, and a single-use key a second time.
TEST_F(Enforcement, ASecondServerOnTheSamePortOrDatabaseRefusesToStart) {
  start();
  std::string config = file_text(server->dir() / "server.toml");
  const std::string listen = "listen = \"127.0.0.1:0\"";
  config.replace(config.find(listen), listen.size(),
                 "listen = \"127.0.0.1:" + std::to_string(port()) + "\"");
  const std::string db = "db = \"sqlite:server.db\"";
  std::string other_db = config;
  other_db.replace(other_db.find(db), db.size(), "db = \"sqlite:other.db\"");
  std::ofstream(server->dir() / "same_port.toml") << other_db;
  std::ofstream(server->dir() / "same_db.toml") << file_text(server->dir() / "server.toml");

  Process same_port({"server", "--config", (server->dir() / "same_port.toml").string()},
                    dir.path() / "same_port.log");
  EXPECT_EQ(same_port.wait_exit(scaled(10s)), std::optional<int>(1));
  EXPECT_NE(file_text(dir.path() / "same_port.log").find("cannot listen on 127.0.0.1:"),
            std::string::npos)
      << file_text(dir.path() / "same_port.log");

  Process same_db({"server", "--config", (server->dir() / "same_db.toml").string()},
                  dir.path() / "same_db.log");
  EXPECT_EQ(same_db.wait_exit(scaled(10s)), std::optional<int>(1));
  EXPECT_NE(file_text(dir.path() / "same_db.log").find("is in use by another process"),
            std::string::npos)
      << file_text(dir.path() / "same_db.log");
  EXPECT_EQ(chat(acme.mint()).status, 200u);  // the first one serves on
}

// A secret others may read, or a database others may write, stops the server at start with a
// message that says what to do.
TEST_F(Enforcement, SecretsOthersCanReadAndDatabasesOthersCanWriteAreRefused) {
  start();
  ASSERT_EQ(server->process().stop(scaled(10s)), 0);
  const auto config = (server->dir() / "server.toml").string();
  const auto token = server->dir() / "admin.token";
  const auto db = server->dir() / "server.db";
  namespace fs = std::filesystem;
  fs::permissions(token, fs::perms::group_read | fs::perms::others_read, fs::perm_options::add);
  {
    Process again({"server", "--config", config}, dir.path() / "token.log");
    EXPECT_EQ(again.wait_exit(scaled(10s)), std::optional<int>(1));
    EXPECT_NE(file_text(dir.path() / "token.log").find("chmod 600"), std::string::npos)
        << file_text(dir.path() / "token.log");
  }
  fs::permissions(token, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  fs::permissions(db, fs::perms::group_write | fs::perms::others_write, fs::perm_options::add);
  {
    Process again({"server", "--config", config}, dir.path() / "db.log");
    EXPECT_EQ(again.wait_exit(scaled(10s)), std::optional<int>(1));
    EXPECT_NE(file_text(dir.path() / "db.log").find("can be written by group or others"),
              std::string::npos)
        << file_text(dir.path() / "db.log");
  }
}

}  // namespace
}  // namespace dynaseal::integration
