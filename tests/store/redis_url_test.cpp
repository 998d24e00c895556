#include "store/redis_url.hpp"

#include <gtest/gtest.h>

namespace dynaseal::store {
namespace {

RedisUrl parsed(std::string_view text) {
  auto url = parse_redis_url(text);
  EXPECT_TRUE(url) << text << ": " << (url ? "" : url.error());
  return url ? *url : RedisUrl{};
}

std::string refusal(std::string_view text) {
  auto url = parse_redis_url(text);
  EXPECT_FALSE(url) << text << " accepted";
  return url ? "" : url.error();
}

RedisUrl url(std::string host, std::uint16_t port, std::int64_t db) {
  RedisUrl u;
  u.host = std::move(host);
  u.port = port;
  u.db = db;
  return u;
}

TEST(RedisUrl, ReadsHostPortAndDatabase) {
  EXPECT_EQ(parsed("redis://127.0.0.1:6380/2"), url("127.0.0.1", 6380, 2));
  EXPECT_EQ(parsed("redis://cache.internal"), url("cache.internal", 6379, 0));
  EXPECT_EQ(parsed("redis://localhost/"), url("localhost", 6379, 0));
  EXPECT_EQ(parsed("redis://[::1]:7000/15"), url("::1", 7000, 15));
  EXPECT_EQ(parsed("redis://h:65535/2147483647").db, 2147483647);
}

TEST(RedisUrl, ReadsAPasswordAndDecodesItsEscapes) {
  const RedisUrl with = parsed("redis://:s3cret@10.0.0.7:6380/1");
  EXPECT_EQ(with.password, "s3cret");
  EXPECT_EQ(with.host, "10.0.0.7");
  EXPECT_EQ(parsed("redis://:p%40ss%3Aw%2Fd%25@h").password, "p@ss:w/d%");
  EXPECT_EQ(parsed("redis://:a@b@h").password, "a@b");  // the last @ ends the password
}

TEST(RedisUrl, NeverShowsThePassword) {
  EXPECT_EQ(parsed("redis://:s3cret@10.0.0.7:6380/1").display(), "redis://:***@10.0.0.7:6380/1");
  EXPECT_EQ(parsed("redis://[::1]").display(), "redis://[::1]:6379/0");
  const std::string why = refusal("redis://:s3cret@h:0");
  EXPECT_EQ(why.find("s3cret"), std::string::npos) << why;
}

TEST(RedisUrl, RefusesOtherSchemesWithTheReason) {
  EXPECT_NE(refusal("rediss://h:6380").find("TLS (rediss://) is not supported"), std::string::npos);
  EXPECT_NE(refusal("unix:///run/redis.sock").find("unix sockets"), std::string::npos);
  EXPECT_NE(refusal("redis+unix:///run/redis.sock").find("unix sockets"), std::string::npos);
  EXPECT_NE(refusal("memory").find("not a redis:// URL"), std::string::npos);
  EXPECT_NE(refusal("REDIS://h").find("not a redis:// URL"), std::string::npos);
  EXPECT_NE(refusal("http://h").find("expected redis://[:password@]host[:port][/db]"),
            std::string::npos);
}

TEST(RedisUrl, RefusesBadPortsAndDatabases) {
  for (const char* text :
       {"redis://h:0", "redis://h:65536", "redis://h:-1", "redis://h:80x",
        "redis://h:", "redis://h: 80", "redis://[::1]:", "redis://h:99999999999"}) {
    EXPECT_FALSE(parse_redis_url(text)) << text;
  }
  EXPECT_NE(refusal("redis://h:0").find("port must be a number from 1 to 65535"),
            std::string::npos);
  for (const char* text : {"redis://h/-1", "redis://h/x", "redis://h/1.5", "redis://h/2147483648",
                           "redis://h/0/1", "redis://h/+1"}) {
    EXPECT_NE(refusal(text).find("db must be a number"), std::string::npos) << text;
  }
}

TEST(RedisUrl, RefusesBadHostsUsersAndExtras) {
  for (const char* text :
       {"redis://", "redis://:6379", "redis:///0", "redis://ho_st", "redis://h..x", "redis://.h",
        "redis://999.1.1.1", "redis://[::1", "redis://[zz]:1", "redis://[::1]x", "redis://h:1?db=2",
        "redis://h#x", "redis://h\n", "redis://h\x01"}) {
    EXPECT_FALSE(parse_redis_url(text)) << text;
  }
  EXPECT_NE(refusal("redis://user:pw@h").find("a user name is not supported"), std::string::npos);
  EXPECT_NE(refusal("redis://:@h").find("empty password"), std::string::npos);
  EXPECT_NE(refusal("redis://:a%zz@h").find("%-escape"), std::string::npos);
  EXPECT_NE(refusal("redis://:a%4@h").find("%-escape"), std::string::npos);
  EXPECT_NE(refusal("redis://h?x=1").find("query strings"), std::string::npos);
}

}  // namespace
}  // namespace dynaseal::store
