#include "server/config.hpp"

#include <sys/resource.h>

#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>

#include "test_support.hpp"

namespace dynaseal::server {
namespace {

class ServerConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_ / "acme.jwks.json") << public_jwk_json(SigningKey::generate().public_key());
  }
  ServerConfig parse(const std::string& text) { return parse_server_config(text, dir_.path()); }
  std::string error_of(const std::string& text) {
    try {
      parse(text);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "no error";
  }
  testing::TempDir dir_;
};

TEST_F(ServerConfigTest, AppliesDefaultsToAnEmptyFile) {
  const ServerConfig c = parse("");
  EXPECT_EQ(c.id, "llm-1");
  EXPECT_EQ(c.http.host, "127.0.0.1");
  EXPECT_EQ(c.http.port, 8000);
  EXPECT_EQ(c.policy.max_ttl, 3600);
  EXPECT_EQ(c.policy.leeway, 30);
  EXPECT_EQ(c.http.max_body_bytes, 1u << 20);
  EXPECT_EQ(c.store, "memory");
  EXPECT_EQ(c.identity_key, dir_ / "server.jwk");
  EXPECT_TRUE(c.upstreams.empty());
}

TEST_F(ServerConfigTest, KeepsMaxConnectionsBelowTheDescriptorLimit) {
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  const ServerConfig c = parse("");
  if (limit.rlim_cur != RLIM_INFINITY) {
    EXPECT_LT(c.http.max_connections, static_cast<std::size_t>(limit.rlim_cur));
  }
  EXPECT_GE(c.http.max_connections, 16u);
  EXPECT_EQ(parse("max_connections = 77").http.max_connections, 77u);
}

constexpr const char* kUpstream =
    "[[upstream]]\nname = \"e\"\nurl = \"http://127.0.0.1:1\"\nmodels = [\"m\"]\n";

TEST_F(ServerConfigTest, SendsTheCapInTheFieldsOfTheNamedEngine) {
  const auto fields = [&](const std::string& extra) {
    const ServerConfig c = parse(kUpstream + extra);
    return std::make_pair(c.upstreams[0].chat_cap_fields, c.upstreams[0].completion_cap_fields);
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(fields("").first, (V{"max_tokens", "max_completion_tokens"}));
  EXPECT_EQ(fields("engine = \"openai\"").first, V{"max_completion_tokens"});
  EXPECT_EQ(fields("engine = \"openai\"").second, V{"max_tokens"});
  EXPECT_EQ(fields("engine = \"llamacpp\"").first, (V{"max_tokens", "n_predict"}));
  EXPECT_EQ(fields("engine = \"llamacpp\"").second, (V{"max_tokens", "n_predict"}));
  EXPECT_EQ(fields("engine = \"ollama\"").first, V{"max_tokens"});
  EXPECT_EQ(fields("engine = \"tgi\"").first, V{"max_tokens"});
  EXPECT_EQ(fields("cap_fields = [\"max_new_tokens\"]").second, V{"max_new_tokens"});
  EXPECT_EQ(error_of(std::string(kUpstream) + "engine = \"sglang\""),
            "upstream[0].engine: expected generic, openai, vllm, llamacpp, ollama or tgi");
  EXPECT_NE(error_of(std::string(kUpstream) + "cap_fields = [\"length\"]"), "no error");
}

TEST_F(ServerConfigTest, RefusesExtraMembersThatChangeTheLength) {
  const ServerConfig c = parse(std::string(kUpstream) + "extra_members = [\"top_k\", \"min_p\"]");
  EXPECT_EQ(c.upstreams[0].members.extra_members, (std::vector<std::string>{"top_k", "min_p"}));
  EXPECT_EQ(c.upstreams[0].prompt_overhead_tokens, 256);
  for (const char* m : {"n_predict", "min_tokens", "ignore_eos", "max_tokens", "n", "options"}) {
    const std::string why = error_of(std::string(kUpstream) + "extra_members = [\"" + m + "\"]");
    EXPECT_NE(why.find("cannot be allowed as an extra"), std::string::npos) << m << ": " << why;
  }
}

TEST_F(ServerConfigTest, TakesAPostgresqlUrlForTheOutboxAndRegistry) {
  const ServerConfig c = parse("db = \"postgresql://llm:s3cret@db.internal:5432/llm\"");
  EXPECT_EQ(c.db, "postgresql://llm:s3cret@db.internal:5432/llm");
  EXPECT_TRUE(c.db_path.empty()) << "no file";
  EXPECT_EQ(parse("db = \"postgres://db/llm?sslmode=verify-full\"").db,
            "postgres://db/llm?sslmode=verify-full");
  EXPECT_EQ(parse("db = \"sqlite:s.db\"").db_path, dir_ / "s.db");
}

TEST_F(ServerConfigTest, RefusesMalformedDatabaseUrlsWithoutShowingThePassword) {
  EXPECT_EQ(error_of("db = \"server.db\""), "db: expected sqlite:PATH or postgresql://...");
  EXPECT_EQ(error_of("db = \"postgres:llm\""), "db: expected postgresql://... or postgres://...");
  EXPECT_EQ(error_of("db = \"postgresql://llm:s3cret@db:99999/llm\""),
            "db: port: expected a number in 1-65535");
  EXPECT_EQ(error_of("db = \"postgresql://db/llm?connect_timeout=later\""),
            "db: connect_timeout: expected whole seconds");
  const std::string why = error_of("db = \"postgresql://llm:s3cret@[::1/llm\"");
  EXPECT_NE(why, "no error");
  EXPECT_EQ(why.find("s3cret"), std::string::npos) << why;
}

TEST_F(ServerConfigTest, TakesARedisUrlForTheUseStore) {
  const ServerConfig memory = parse("");
  EXPECT_FALSE(memory.store_redis);
  EXPECT_EQ(memory.store_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(memory.store_key_prefix, "dks");
  const ServerConfig c = parse(R"(
store = "redis://:s3cret@10.0.0.7:6380/2"
store_timeout_ms = 100
store_key_prefix = "prod.eu-1"
)");
  ASSERT_TRUE(c.store_redis);
  EXPECT_EQ(c.store_redis->host, "10.0.0.7");
  EXPECT_EQ(c.store_redis->port, 6380);
  EXPECT_EQ(c.store_redis->db, 2);
  EXPECT_EQ(c.store_redis->password, "s3cret");
  EXPECT_EQ(c.store_timeout, std::chrono::milliseconds(100));
  EXPECT_EQ(c.store_key_prefix, "prod.eu-1");
  EXPECT_EQ(parse("store = \"redis://cache\"").store_redis->port, 6379);
}

TEST_F(ServerConfigTest, RefusesBadUseStoresWithoutShowingThePassword) {
  EXPECT_EQ(error_of("store = \"rediss://cache:6380\""),
            "store: expected \"memory\" or a Redis URL: TLS (rediss://) is not supported "
            "(expected redis://[:password@]host[:port][/db])");
  EXPECT_EQ(error_of("store = \"unix:///run/redis.sock\""),
            "store: expected \"memory\" or a Redis URL: unix sockets are not supported "
            "(expected redis://[:password@]host[:port][/db])");
  EXPECT_EQ(error_of("store = \"redis://cache/16x\""),
            "store: expected \"memory\" or a Redis URL: db must be a number from 0 to "
            "2147483647 (expected redis://[:password@]host[:port][/db])");
  const std::string why = error_of("store = \"redis://:s3cret@cache:0\"");
  EXPECT_NE(why.find("port must be a number from 1 to 65535"), std::string::npos) << why;
  EXPECT_EQ(why.find("s3cret"), std::string::npos) << why;
  EXPECT_EQ(error_of("store_timeout_ms = 0"), "store_timeout_ms: must be between 10 and 60000");
  EXPECT_EQ(error_of("store_timeout_ms = \"250\""), "store_timeout_ms: expected an integer");
  EXPECT_EQ(error_of("store_key_prefix = \"a:b\""),
            "store_key_prefix: expected 1-64 characters of [A-Za-z0-9_.-]");
  EXPECT_EQ(error_of("store_key_prefix = \"\""),
            "store_key_prefix: expected 1-64 characters of [A-Za-z0-9_.-]");
}

TEST_F(ServerConfigTest, ReadsTheDesignExample) {
  ::setenv("DYNASEAL_TEST_ENGINE_KEY", "sk-test", 1);
  const ServerConfig c = parse(R"(
id = "llm-1"
listen = "127.0.0.1:8000"
identity_key = "server.jwk"
admin_token_file = "admin.token"
max_key_ttl = 3600
leeway = 30
max_body_bytes = 1048576
store = "memory"
db = "sqlite:server.db"

[[upstream]]
name = "local"
url = "https://engine.example:8443/openai/"
models = ["demo", "big"]
api_key_env = "DYNASEAL_TEST_ENGINE_KEY"
first_byte_timeout = 5

[[backend]]
id = "acme"
jwks = "acme.jwks.json"
callback_url = "http://127.0.0.1:9000/v1/callbacks/usage"
)");
  ASSERT_EQ(c.upstreams.size(), 1u);
  const UpstreamConfig& u = c.upstreams[0];
  EXPECT_TRUE(u.target.tls);
  EXPECT_EQ(u.target.host, "engine.example");
  EXPECT_EQ(u.target.port, "8443");
  EXPECT_EQ(u.target.base_path, "/openai");
  EXPECT_EQ(u.api_key, "sk-test");
  EXPECT_EQ(u.client.first_byte_timeout, std::chrono::seconds(5));
  ASSERT_EQ(c.backends.size(), 1u);
  EXPECT_EQ(c.backends[0].keys.size(), 1u);
}

TEST_F(ServerConfigTest, NamesTheKeyOfEveryMistake) {
  EXPECT_EQ(error_of("idd = \"x\""), "idd: unknown key");
  EXPECT_EQ(error_of("leeway = \"30\""), "leeway: expected an integer");
  EXPECT_EQ(error_of("leeway = 99999"), "leeway: must be between 0 and 3600");
  EXPECT_EQ(error_of("listen = \"nohost\""), "listen: expected host:port");
  EXPECT_EQ(error_of("listen = \"127.0.0.1:99999\""), "listen: invalid port in 127.0.0.1:99999");
  EXPECT_EQ(error_of("store = \"redis\""),
            "store: expected \"memory\" or a Redis URL: not a redis:// URL "
            "(expected redis://[:password@]host[:port][/db])");
  EXPECT_EQ(error_of("[[upstream]]\nname = \"a\"\nurl = \"ftp://x\"\nmodels = [\"m\"]"),
            "upstream[0].url: expected http://host[:port][/path] or https://...");
  EXPECT_EQ(error_of("[[upstream]]\nname = \"a\"\nurl = \"http://x\"\nmodels = []"),
            "upstream[0].models: must name at least one model");
  EXPECT_EQ(error_of("[[upstream]]\nname = \"a\"\nurl = \"http://x\"\nmodels = [\"m\"]\n"
                     "api_key_env = \"DYNASEAL_SURELY_UNSET\""),
            "upstream[0].api_key_env: environment variable DYNASEAL_SURELY_UNSET is not set");
  EXPECT_EQ(error_of("[[upstream]]\nname = \"a\"\nurl = \"http://x\"\nmodels = [\"m\"]\n"
                     "[[upstream]]\nname = \"b\"\nurl = \"http://y\"\nmodels = [\"m\"]"),
            "upstream: model m routed twice");
  EXPECT_EQ(error_of("[[backend]]\nid = \"acme\"\njwks = \"missing.json\""),
            "backend[0].jwks: io_error: cannot use " + (dir_ / "missing.json").string());
  EXPECT_NE(error_of("id = "), "no error");  // TOML syntax
}

TEST_F(ServerConfigTest, NamesEachReplicaAndItsHeartbeat) {
  ServerConfig c = parse("id = \"llm-9\"\nlisten = \"127.0.0.1:8123\"");
  EXPECT_EQ(c.replica_id, "llm-9");  // SQLite: one node
  c = parse("listen = \"127.0.0.1:8123\"\ndb = \"postgresql://u@db.example/d\"");
  EXPECT_TRUE(c.replica_id.ends_with(":8123")) << c.replica_id;  // hostname:port
  EXPECT_EQ(c.outbox.heartbeat, std::chrono::milliseconds(1000));
  EXPECT_EQ(c.outbox.replica_timeout, std::chrono::seconds(30));
  c = parse("replica_id = \"r1\"\n[outbox]\nheartbeat_ms = 200\nreplica_timeout = 2");
  EXPECT_EQ(c.replica_id, "r1");
  EXPECT_EQ(c.outbox.heartbeat, std::chrono::milliseconds(200));
  EXPECT_EQ(c.outbox.replica_timeout, std::chrono::seconds(2));
  EXPECT_EQ(error_of("replica_id = \"\""), "replica_id: must be 1-128 bytes");
  EXPECT_EQ(error_of("[outbox]\nheartbeat_ms = 1000\nreplica_timeout = 1"),
            "outbox.replica_timeout: must be at least 2 heartbeats");
}

TEST_F(ServerConfigTest, KeepsDeliveredEventsAsLongAsAKeyMayLiveAndUsesTheOpenLog) {
  ServerConfig c = parse("");
  EXPECT_TRUE(c.outbox.open_log);
  c = parse("max_key_ttl = 600\nleeway = 10\n[outbox]\nretention = 620\nopen_log = false");
  EXPECT_FALSE(c.outbox.open_log);
  EXPECT_EQ(c.outbox.retention, std::chrono::seconds(620));
  EXPECT_EQ(error_of("max_key_ttl = 600\nleeway = 10\n[outbox]\nretention = 619"),
            "outbox: retention must be at least max_key_ttl + 2 * leeway (620 s)");
  EXPECT_NE(error_of("[outbox]\nopen_log = 1"), "no error");
}

TEST_F(ServerConfigTest, ParsesListenAddresses) {
  EXPECT_EQ(parse_listen("0.0.0.0:80", "listen"),
            std::make_pair(std::string("0.0.0.0"), std::uint16_t{80}));
  EXPECT_EQ(parse_listen("[::1]:8000", "listen"),
            std::make_pair(std::string("::1"), std::uint16_t{8000}));
  EXPECT_THROW(parse_listen(":80", "listen"), ConfigError);
  EXPECT_THROW(parse_listen("host:8x", "listen"), ConfigError);
}

}  // namespace
}  // namespace dynaseal::server
