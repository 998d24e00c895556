#include "store/postgres_url.hpp"

#include <gtest/gtest.h>

namespace dynaseal::store {
namespace {

TEST(PostgresUrl, RecognisesBothSchemes) {
  EXPECT_TRUE(is_postgres_url("postgresql://db/x"));
  EXPECT_TRUE(is_postgres_url("postgres://db/x"));
  EXPECT_FALSE(is_postgres_url("postgresql:db"));
  EXPECT_FALSE(is_postgres_url("sqlite:server.db"));
  EXPECT_FALSE(is_postgres_url("POSTGRESQL://db/x"));
}

TEST(PostgresUrl, AcceptsWhatLibpqAccepts) {
  for (const char* url : {"postgresql://db/x", "postgres://u:p@db:5432/x",
                          "postgresql://u@[::1]:6543/x?sslmode=verify-full&connect_timeout=3",
                          "postgresql://h1:5432,h2:5433/x?target_session_attrs=read-write",
                          "postgresql:///x?host=/var/run/postgresql",
                          "postgresql://db/x?options=-csearch_path%3Dtenant"}) {
    EXPECT_EQ(check_postgres_url(url), std::nullopt) << url;
  }
}

TEST(PostgresUrl, RefusesMalformedUrlsSayingWhy) {
  EXPECT_EQ(check_postgres_url("mysql://db/x"), "expected postgresql://... or postgres://...");
  EXPECT_EQ(check_postgres_url("postgresql://db:abc/x"), "port: expected a number in 1-65535");
  EXPECT_EQ(check_postgres_url("postgresql://db:0/x"), "port: expected a number in 1-65535");
  EXPECT_EQ(check_postgres_url("postgresql://db:65536/x"), "port: expected a number in 1-65535");
  EXPECT_EQ(check_postgres_url("postgresql://h1:1,h2:x/x"), "port: expected a number in 1-65535");
  EXPECT_EQ(check_postgres_url("postgresql://db/x?connect_timeout=soon"),
            "connect_timeout: expected whole seconds");
  EXPECT_EQ(check_postgres_url("postgresql://db/x?colour=blue"),
            "invalid URI query parameter: \"colour\"");
  EXPECT_NE(check_postgres_url("postgresql://my db/x"), std::nullopt);
  EXPECT_NE(check_postgres_url("postgresql://db/x\n"), std::nullopt);
}

TEST(PostgresUrl, NeverRepeatsThePasswordOfAMalformedUrl) {
  const std::string url = "postgresql://acme:hunter2@[::1/x";
  auto why = check_postgres_url(url);
  ASSERT_TRUE(why);
  EXPECT_EQ(why->find("hunter2"), std::string::npos) << *why;
  EXPECT_NE(why->find("postgresql://acme:***@[::1/x"), std::string::npos) << *why;
}

TEST(PostgresUrl, RedactsThePasswordWhereverItIs) {
  EXPECT_EQ(redact_postgres_url("postgresql://acme:hunter2@db:5432/x"),
            "postgresql://acme:***@db:5432/x");
  EXPECT_EQ(redact_postgres_url("postgres://acme:p@ss:w0rd@db/x"), "postgres://acme:***@db/x");
  EXPECT_EQ(redact_postgres_url("postgresql://db/x?sslmode=require&password=hunter2&user=a"),
            "postgresql://db/x?sslmode=require&password=***&user=a");
  EXPECT_EQ(redact_postgres_url("postgresql://a:b@db?password=c"),
            "postgresql://a:***@db?password=***");
  EXPECT_EQ(redact_postgres_url("postgresql://acme@db/x"), "postgresql://acme@db/x");
  EXPECT_EQ(redact_postgres_url("postgresql://db:5432/x"), "postgresql://db:5432/x");
  EXPECT_EQ(redact_postgres_url("sqlite:server.db"), "sqlite:server.db");
}

}  // namespace
}  // namespace dynaseal::store
