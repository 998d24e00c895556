// The edge client end to end: the client library and `dynaseal chat` against the real server and
// engine, with a stand-in business backend in this process (FakeHttpServer) that mints real
// dynamic keys with acme's signing key, registered at the server by the harness.

#include <sys/wait.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "client/client.hpp"
#include "client/fake_http_server.hpp"
#include "harness.hpp"

namespace dynaseal::integration {
namespace {

namespace json = boost::json;
using client::ChatRequest;
using client::ChatResult;
using client::ClientError;
using dynaseal::testing::FakeHttpServer;
using dynaseal::testing::FakeReply;

constexpr std::string_view kUserToken = "user-token-for-alice";
constexpr std::string_view kPrompt = "tell me a story about keys";

std::string refusal(std::string_view code) {
  return R"({"error":{"message":"refused by the backend","type":"t","code":")" + std::string(code) +
         R"("}})";
}

// Engine + server + a backend that knows one user token and grants one fresh key per request
// (model, max_tokens and uses as asked; otherwise acme.claims()'s defaults: cap 16, one use).
// With `replay` set it hands out the previous key again, as a broken backend would.
class EdgeClient : public IntegrationTest {
 protected:
  void SetUp() override {
    start();
    backend =
        std::make_unique<FakeHttpServer>([this](const net::Request& req) { return mint(req); });
  }

  FakeReply mint(const net::Request& req) {
    if (req[net::http::field::authorization] != "Bearer " + std::string(kUserToken)) {
      return {.status = 401, .body = refusal("user_unknown")};
    }
    const json::object ask = json::parse(req.body()).as_object();
    Claims c = acme.claims();
    c.dks.models = {std::string(ask.at("model").as_string())};
    if (ask.contains("max_tokens")) c.dks.max_tokens = ask.at("max_tokens").as_int64();
    if (ask.contains("uses")) c.dks.uses = ask.at("uses").as_int64();
    std::lock_guard lock(mutex);
    if (!replay || last_grant.empty()) {
      json::object grant;
      grant["key"] = acme.mint(c);
      grant["event_id"] = c.jti;
      grant["expires_at"] = c.exp;
      json::object server_ref;
      server_ref["id"] = "llm-1";
      server_ref["url"] = server_url();
      grant["server"] = std::move(server_ref);
      last_grant = json::serialize(grant);
    }
    return {.body = last_grant};
  }

  std::string server_url() const { return "http://127.0.0.1:" + std::to_string(port()); }

  client::Client make_client() const {
    auto c = client::Client::create({.connect_timeout = scaled(5s), .read_timeout = scaled(20s)});
    EXPECT_TRUE(c);
    return *c;
  }

  client::KeyGrant grant(const client::Client& c) const {
    auto g = c.request_key(backend->url(), kUserToken, {.model = "demo"});
    EXPECT_TRUE(g) << g.error().code << ": " << g.error().message;
    return g ? *g : client::KeyGrant{};
  }

  static ChatRequest ask(bool stream, std::string model = "demo") {
    return {
        .model = std::move(model), .messages = {{"user", std::string(kPrompt)}}, .stream = stream};
  }

  std::unique_ptr<FakeHttpServer> backend;
  std::mutex mutex;
  bool replay = false;     // guarded by mutex
  std::string last_grant;  // guarded by mutex
};

// ---- The library -------------------------------------------------------------------------

TEST_F(EdgeClient, GetsAKeyThatNamesTheServer) {
  const client::Client c = make_client();
  const client::KeyGrant g = grant(c);
  EXPECT_EQ(g.server_id, "llm-1");
  EXPECT_EQ(g.server_url, server_url());
  EXPECT_EQ(g.key.substr(0, 3), "eyJ");  // a JWS: base64url of '{"'
  EXPECT_GT(g.expires_at, unix_now());
}

TEST_F(EdgeClient, TheStreamedAnswerIsTheWholeAnswerInOrder) {
  const client::Client c = make_client();
  const client::KeyGrant first = grant(c);
  auto whole = c.chat(first, ask(false));
  ASSERT_TRUE(whole) << whole.error().code << ": " << whole.error().message;
  EXPECT_FALSE(whole->content.empty());
  EXPECT_EQ(whole->event_id, first.event_id);
  ASSERT_TRUE(whole->usage);
  EXPECT_GT(whole->usage->completion_tokens, 1);
  EXPECT_EQ(whole->usage->total_tokens,
            whole->usage->prompt_tokens + whole->usage->completion_tokens);

  const client::KeyGrant second = grant(c);
  std::vector<std::string> deltas;
  auto streamed = c.chat(second, ask(true), [&](std::string_view d) { deltas.emplace_back(d); });
  ASSERT_TRUE(streamed) << streamed.error().code << ": " << streamed.error().message;
  std::string joined;
  for (const std::string& d : deltas) joined += d;
  EXPECT_EQ(joined, streamed->content);
  EXPECT_EQ(streamed->content, whole->content);  // the stand-in engine is deterministic
  EXPECT_EQ(deltas.size(), static_cast<std::size_t>(whole->usage->completion_tokens));
  EXPECT_EQ(streamed->finish_reason, whole->finish_reason);
  EXPECT_EQ(streamed->usage, whole->usage);
  EXPECT_EQ(streamed->event_id, second.event_id);
  EXPECT_NE(second.event_id, first.event_id);
}

TEST_F(EdgeClient, ASingleUseKeyUsedTwiceIsUsesExhausted) {
  const client::Client c = make_client();
  const client::KeyGrant g = grant(c);
  ASSERT_TRUE(c.chat(g, ask(true)));
  for (bool stream : {false, true}) {
    auto again = c.chat(g, ask(stream));
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().kind, ClientError::Kind::http);
    EXPECT_EQ(again.error().http_status, 401);
    EXPECT_EQ(again.error().code, "uses_exhausted");
    EXPECT_FALSE(again.error().message.empty());
  }
}

TEST_F(EdgeClient, AModelOutsideTheKeyIsRefused) {
  const client::Client c = make_client();
  auto r = c.chat(grant(c), ask(true, "other"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().http_status, 403);
  EXPECT_EQ(r.error().code, "model_not_allowed");
}

TEST_F(EdgeClient, AnUnknownUserIsRefusedByTheBackend) {
  auto g = make_client().request_key(backend->url(), "someone-else", {.model = "demo"});
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().kind, ClientError::Kind::http);
  EXPECT_EQ(g.error().http_status, 401);
  EXPECT_EQ(g.error().code, "user_unknown");
}

// ---- dynaseal chat -----------------------------------------------------------------------

struct Outcome {
  int exit_code;
  std::string out;
  std::string err;
};

// Runs dynaseal with `args` (each single-quoted for the shell), `input` on stdin.
Outcome run_cli(const std::filesystem::path& dir, const std::vector<std::string>& args,
                const std::string& input = "") {
  std::string cmd = "'" DYNASEAL_BINARY "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  std::ofstream(dir / "stdin") << input;
  cmd += " <'" + (dir / "stdin").string() + "' >'" + (dir / "stdout").string() + "' 2>'" +
         (dir / "stderr").string() + "'";
  const int status = std::system(cmd.c_str());
  return {WEXITSTATUS(status), dynaseal::testing::read_file(dir / "stdout"),
          dynaseal::testing::read_file(dir / "stderr")};
}

// Writes a secret file as `backend user add --out` does: mode 0600.
void write_private(const std::filesystem::path& path, const std::string& content) {
  std::ofstream(path) << content;
  std::filesystem::permissions(
      path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
      std::filesystem::perm_options::replace);
}

class ChatCommand : public EdgeClient {
 protected:
  // dynaseal chat with acme's user token (or `token`), model demo, kPrompt (or stdin when
  // `stdin_prompt` is set), and `extra` options.
  Outcome chat(std::vector<std::string> extra = {}, std::string_view token = kUserToken,
               std::optional<std::string> stdin_prompt = std::nullopt) {
    std::filesystem::remove(dir / "user.token");
    write_private(dir / "user.token", std::string(token) + "\n");
    std::vector<std::string> args = {
        "chat",    "--backend", backend->url(), "--token-file", (dir / "user.token").string(),
        "--model", "demo"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.emplace_back(stdin_prompt ? "-" : kPrompt);
    return run_cli(dir.path(), args, stdin_prompt.value_or(""));
  }

  // The answer as the library gets it, for comparison.
  std::string expected_answer() {
    const client::Client c = make_client();
    auto r = c.chat(grant(c), ask(false));
    EXPECT_TRUE(r);
    return r ? r->content : "";
  }
};

TEST_F(ChatCommand, PrintsTheAnswer) {
  const std::string answer = expected_answer();
  ASSERT_FALSE(answer.empty());
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{}, std::vector<std::string>{"--stream"}}) {
    const Outcome r = chat(extra);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, answer + "\n");
    EXPECT_EQ(r.err, "");
  }
  const Outcome piped = chat({"--stream"}, kUserToken, std::string(kPrompt) + "\n");
  EXPECT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_EQ(piped.out, answer + "\n");
}

TEST_F(ChatCommand, VerboseAddsTheEventIdAndUsageOnStderr) {
  const Outcome r = chat({"--stream", "--verbose"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("event_id: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("usage: prompt_tokens="), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("server: llm-1 " + server_url()), std::string::npos) << r.err;
}

TEST_F(ChatCommand, AServerRefusalIsOneErrorLineAndExit1) {
  {
    std::lock_guard lock(mutex);
    replay = true;  // the second run gets the key the first one used up
  }
  ASSERT_EQ(chat().exit_code, 0);
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{}, std::vector<std::string>{"--stream"}}) {
    const Outcome r = chat(extra);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err.rfind("error: uses_exhausted: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

TEST_F(ChatCommand, ABackendRefusalIsOneErrorLineAndExit1) {
  const Outcome r = chat({}, "not-a-user");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "error: user_unknown: refused by the backend\n");
}

TEST_F(ChatCommand, AnEmptyTokenFileIsRefused) {
  const Outcome r = chat({}, "  \n\t");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind("error: io_error: the token file ", 0), 0u) << r.err;
  EXPECT_TRUE(backend->requests().empty());
}

TEST(ChatCommandUsage, BadArgumentsExit2) {
  dynaseal::testing::TempDir dir;
  std::ofstream(dir / "t") << "token\n";
  const std::string t = (dir / "t").string();
  for (const std::vector<std::string>& args : {
           std::vector<std::string>{"chat", "--backend", "http://127.0.0.1:1", "--token-file", t,
                                    "hello"},  // no --model
           std::vector<std::string>{"chat", "--backend", "http://127.0.0.1:1", "--token-file", t,
                                    "--model", "demo"},  // no PROMPT
           std::vector<std::string>{"chat", "--backend", "http://127.0.0.1:1", "--token-file", t,
                                    "--model", "demo", "--max-tokens", "0", "hello"},
           std::vector<std::string>{"chat", "--token-file", t, "--model", "demo", "hello"},
       }) {
    const Outcome r = run_cli(dir.path(), args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err.rfind("error: usage: ", 0), 0u) << r.err;
  }
  const Outcome help = run_cli(dir.path(), {"chat", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--token-file"), std::string::npos);
}

TEST(ChatCommandUsage, AnUnreachableBackendIsConnectFailed) {
  dynaseal::testing::TempDir dir;
  write_private(dir / "t", "token\n");
  // Port 1 on loopback: nothing listens there.
  const Outcome r = run_cli(dir.path(), {"chat", "--backend", "http://127.0.0.1:1", "--token-file",
                                         (dir / "t").string(), "--model", "demo", "hello"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind("error: connect_failed: ", 0), 0u) << r.err;
}

// A token file others can read is refused before anything is sent, saying what to do.
TEST(ChatCommandUsage, ATokenFileOthersCanReadIsRefused) {
  dynaseal::testing::TempDir dir;
  std::ofstream(dir / "t") << "token\n";
  std::filesystem::permissions(dir / "t", std::filesystem::perms::others_read,
                               std::filesystem::perm_options::add);
  const Outcome r = run_cli(dir.path(), {"chat", "--backend", "http://127.0.0.1:1", "--token-file",
                                         (dir / "t").string(), "--model", "demo", "hello"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind("error: key_file_unsafe: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("chmod 600"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace dynaseal::integration
