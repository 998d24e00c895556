#include "backend/config.hpp"

#include <gtest/gtest.h>

#include "backend_fixture.hpp"

namespace dynaseal::backend {
namespace {

const std::filesystem::path kBase = "/etc/dynaseal";

BackendConfig parse(std::string_view text) { return parse_backend_config(text, kBase); }

// The smallest valid configuration, followed by `extra`.
std::string minimal(std::string_view top = "", std::string_view plan = "") {
  return "id = \"acme\"\n" + std::string(top) + "\n[[plan]]\nname = \"p\"\nmodels = [\"demo\"]\n" +
         std::string(plan);
}

std::string error_of(const std::string& text) {
  try {
    parse(text);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(BackendConfig, ReadsTheDesignExample) {
  const BackendConfig c = test::test_config(kBase);
  EXPECT_EQ(c.id, "acme");
  EXPECT_EQ(c.http.host, "127.0.0.1");
  EXPECT_EQ(c.http.port, 0);
  EXPECT_EQ(c.public_url, "http://127.0.0.1:9000");
  EXPECT_EQ(c.db_path, kBase / "backend.db");
  EXPECT_EQ(c.server.id, "llm-1");
  ASSERT_EQ(c.plans.size(), 3u);
  const Plan* free = c.plan("free");
  ASSERT_NE(free, nullptr);
  EXPECT_EQ(free->max_tokens, 100);
  EXPECT_EQ(free->uses, 2);
  EXPECT_EQ(free->daily_tokens, 1000);
  EXPECT_FALSE(free->prepaid);
  const Plan* pro = c.plan("pro");
  ASSERT_NE(pro, nullptr);
  EXPECT_TRUE(pro->prepaid);
  EXPECT_EQ(pro->price("demo").prompt_per_1k, 500'000);
  EXPECT_EQ(pro->price("demo").completion_per_1k, 1'500'000);
  EXPECT_EQ(pro->price("unknown").completion_per_1k, 0);
  EXPECT_EQ(c.plan("nope"), nullptr);
}

TEST(BackendConfig, DefaultsEveryOptionalKey) {
  const BackendConfig c = parse(minimal());
  EXPECT_EQ(c.http.host, "127.0.0.1");
  EXPECT_EQ(c.http.port, 9000);
  EXPECT_EQ(c.public_url, "http://127.0.0.1:9000");
  EXPECT_EQ(c.signing_key, kBase / "acme.jwk");
  EXPECT_EQ(c.db, "sqlite:backend.db");
  EXPECT_EQ(c.db_path, kBase / "backend.db");
  EXPECT_EQ(c.callback_tolerance, 300);
  EXPECT_EQ(c.settle_grace, 300);
  EXPECT_EQ(c.server.id, "llm-1");
  EXPECT_EQ(c.server.url, "http://127.0.0.1:8000");
  const Plan& p = c.plans.at(0);
  EXPECT_EQ(p.max_tokens, 256);
  EXPECT_EQ(p.uses, 1);
  EXPECT_EQ(p.key_ttl, 60);
  EXPECT_EQ(p.mints_per_minute, 60);
  EXPECT_EQ(p.daily_tokens, 0);
  EXPECT_EQ(p.key_budget, 0);
  EXPECT_FALSE(p.prepaid);
  EXPECT_TRUE(p.prices.empty());
}

TEST(BackendConfig, ResolvesPathsAgainstTheConfigDirectory) {
  const BackendConfig c = parse(minimal("signing_key = \"keys/a.jwk\"\ndb = \"sqlite:/var/b.db\""));
  EXPECT_EQ(c.signing_key, kBase / "keys/a.jwk");
  EXPECT_EQ(c.db_path, "/var/b.db");
}

TEST(BackendConfig, RefusesUnknownKeysEverywhere) {
  EXPECT_EQ(error_of(minimal("colour = 1")), "colour: unknown key");
  EXPECT_EQ(error_of(minimal("[server]\nid = \"x\"\nport = 1")), "server.port: unknown key");
  EXPECT_EQ(error_of(minimal("", "max_token = 5")), "plan[0].max_token: unknown key");
  EXPECT_EQ(error_of(minimal("", "prepaid = true\n[plan.prices.demo]\nprompt = \"1\"")),
            "plan[0].prices.demo.prompt: unknown key");
}

TEST(BackendConfig, RefusesWrongTypesAndRanges) {
  EXPECT_EQ(error_of(minimal("listen = 9000")), "listen: expected a string");
  EXPECT_EQ(error_of(minimal("listen = \"localhost\"")), "listen: expected host:port");
  EXPECT_EQ(error_of(minimal("", "max_tokens = 0")),
            "plan[0].max_tokens: must be between 1 and 1000000000");
  EXPECT_EQ(error_of(minimal("", "uses = \"2\"")), "plan[0].uses: expected an integer");
  EXPECT_EQ(error_of(minimal("", "key_ttl = 604801")),
            "plan[0].key_ttl: must be between 1 and 604800");
  EXPECT_TRUE(error_of(minimal("", "daily_tokens = -1")).starts_with("plan[0].daily_tokens: must"));
  EXPECT_EQ(error_of(minimal("", "prepaid = 1")), "plan[0].prepaid: expected true or false");
  EXPECT_EQ(error_of(minimal("callback_tolerance = 0")),
            "callback_tolerance: must be between 1 and 3600");
  EXPECT_EQ(error_of(minimal("public_url = \"ftp://x\"")),
            "public_url: expected an http(s):// URL");
  EXPECT_EQ(error_of(minimal("[server]\nurl = \"nope\"")),
            "server.url: expected an http(s):// URL");
}

TEST(BackendConfig, NeedsAnIdAndAtLeastOnePlan) {
  EXPECT_EQ(error_of("[[plan]]\nname = \"p\"\nmodels = [\"m\"]"), "id: is required");
  EXPECT_EQ(error_of("id = \"acme\""), "plan: at least one [[plan]] is required");
  EXPECT_EQ(error_of(minimal("", "[[plan]]\nname = \"p\"\nmodels = [\"x\"]")),
            "plan: two plans named p");
  EXPECT_EQ(error_of("id = \"acme\"\n[[plan]]\nname = \"p\"\nmodels = []"),
            "plan[0].models: must name at least one model");
}

TEST(BackendConfig, TakesAPostgresqlUrlAsItIs) {
  for (const char* url :
       {"postgresql://acme:s3cret@db.internal:5432/acme?sslmode=require", "postgres://db/acme"}) {
    const BackendConfig c = parse(minimal("db = \"" + std::string(url) + "\""));
    EXPECT_EQ(c.db, url);
    EXPECT_TRUE(c.db_path.empty()) << "no file";
  }
}

TEST(BackendConfig, RefusesMalformedDatabaseUrlsWithoutShowingThePassword) {
  EXPECT_EQ(error_of(minimal("db = \"backend.db\"")),
            "db: expected sqlite:PATH or postgresql://...");
  EXPECT_EQ(error_of(minimal("db = \"postgresql:acme\"")),
            "db: expected postgresql://... or postgres://...");
  EXPECT_EQ(error_of(minimal("db = \"postgresql://acme:s3cret@db:port/acme\"")),
            "db: port: expected a number in 1-65535");
  EXPECT_EQ(error_of(minimal("db = \"postgresql://db/acme?colour=blue\"")),
            "db: invalid URI query parameter: \"colour\"");
  const std::string why = error_of(minimal("db = \"postgresql://acme:s3cret@[::1/acme\""));
  EXPECT_NE(why, "");
  EXPECT_EQ(why.find("s3cret"), std::string::npos) << why;
}

TEST(BackendConfig, PricesAreExactDecimalsOrIntegersNeverFloats) {
  const std::string plan = "prepaid = true\n[plan.prices.demo]\n";
  const BackendConfig c =
      parse(minimal("", plan + "prompt_per_1k = \"0.000001\"\ncompletion_per_1k = 2"));
  EXPECT_EQ(c.plans[0].price("demo").prompt_per_1k, 1);
  EXPECT_EQ(c.plans[0].price("demo").completion_per_1k, 2'000'000);
  EXPECT_EQ(
      error_of(minimal("", plan + "prompt_per_1k = 0.5")),
      "plan[0].prices.demo.prompt_per_1k: expected a decimal string such as \"0.0015\" (floats "
      "are not exact)");
  EXPECT_NE(error_of(minimal("", plan + "prompt_per_1k = \"0.0000001\"")), "");
  EXPECT_NE(error_of(minimal("", plan + "prompt_per_1k = -1")), "");
}

TEST(BackendConfig, APrepaidPlanPricesEveryModelAndOnlyItsModels) {
  EXPECT_EQ(error_of(minimal("", "prepaid = true")),
            "plan[0].prices: prepaid: model demo unpriced");
  EXPECT_EQ(error_of(minimal("", "[plan.prices.other]\nprompt_per_1k = \"1\"")),
            "plan[0].prices.other: the plan does not allow this model");
}

}  // namespace
}  // namespace dynaseal::backend
