#include "store/redis_keys.hpp"

#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

namespace dynaseal::store {
namespace {

using namespace std::string_literals;

// The hash tag Redis Cluster takes from a key: between the first '{' and the first '}' after
// it, when that is not empty; otherwise the whole key.
std::string cluster_hash_input(const std::string& key) {
  const auto open = key.find('{');
  if (open == std::string::npos) return key;
  const auto close = key.find('}', open + 1);
  if (close == std::string::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}

TEST(RedisKeys, FollowTheDocumentedLayout) {
  EXPECT_EQ(redis_jti_key("dks", "acme", "key-1"), "dks:{YWNtZQ}:k:key-1");
  EXPECT_EQ(redis_sub_key("dks", "acme", "user:42"), "dks:{YWNtZQ}:s:user:42");
  EXPECT_EQ(redis_jti_key("dks", "", "key-1"), "dks:{~}:k:key-1");
  EXPECT_EQ(redis_key_tag("a}b{"), "YX1iew");
}

TEST(RedisKeys, GiveBothKeysOfAConsumeTheSameClusterSlotWhateverTheBytes) {
  for (const std::string& iss : {"acme"s, ""s, "{"s, "}"s, "a}b"s, "x:{y}"s, "\0\0"s, "\xff"s}) {
    const std::string jti = redis_jti_key("p", iss, "}{:jti\0"s);
    const std::string sub = redis_sub_key("p", iss, "{sub}"s);
    EXPECT_EQ(cluster_hash_input(jti), redis_key_tag(iss));
    EXPECT_EQ(cluster_hash_input(sub), redis_key_tag(iss));
  }
}

TEST(RedisKeys, NeverCollideForHostileNames) {
  // Each would collide with another under naive "prefix:iss:kind:name" concatenation.
  const std::vector<std::tuple<std::string, char, std::string>> names = {
      {"a", 'k', "b:k:c"}, {"a:k:b", 'k', "c"}, {"a", 's', "b"},        {"a", 'k', "b"},
      {"a:s", 'k', "b"},   {"a", 'k', "s:b"},   {"a}", 'k', "b"},       {"a", 'k', "}:k:b"},
      {"", 'k', "~"},      {"~", 'k', ""},      {"a\0"s, 'k', "b"},     {"a", 'k', "\0b"s},
      {"YQ", 'k', "x"},    {"a", 'k', "x"},     {"a{b}", 's', "\0\0"s}, {"a", 's', "{b}:s:\0"s},
  };
  std::set<std::string> keys;
  for (const auto& [iss, kind, name] : names) {
    keys.insert(kind == 'k' ? redis_jti_key("dks", iss, name) : redis_sub_key("dks", iss, name));
  }
  EXPECT_EQ(keys.size(), names.size());  // distinct (iss, kind, name), distinct keys
}

TEST(RedisKeys, AcceptOnlyPlainPrefixes) {
  EXPECT_TRUE(valid_redis_key_prefix("dks"));
  EXPECT_TRUE(valid_redis_key_prefix("prod.eu-1_a"));
  EXPECT_TRUE(valid_redis_key_prefix(std::string(64, 'p')));
  for (const std::string& bad :
       {""s, std::string(65, 'p'), "a:b"s, "a{b"s, "a}b"s, "a b"s, "a\0"s}) {
    EXPECT_FALSE(valid_redis_key_prefix(bad)) << bad;
  }
}

}  // namespace
}  // namespace dynaseal::store
