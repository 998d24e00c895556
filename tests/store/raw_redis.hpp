// A plain blocking Redis client (hiredis) for tests: to look at and tamper with what the Redis
// use store wrote, independently of the store's own connection code.
//
//   RawRedis redis(shared_redis_url());
//   auto reply = redis.command({"EXISTS", key});   // throws on a connection failure
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <hiredis/hiredis.h>

#include "store/redis_connection.hpp"
#include "store/redis_url.hpp"

namespace dynaseal::testing {

class RawRedis {
 public:
  explicit RawRedis(const std::string& url) {
    auto parsed = store::parse_redis_url(url);
    if (!parsed) throw std::runtime_error("RawRedis: " + parsed.error());
    const timeval two_seconds{2, 0};
    context_.reset(redisConnectWithTimeout(parsed->host.c_str(), parsed->port, two_seconds));
    if (!context_ || context_->err) throw std::runtime_error("RawRedis: cannot connect to " + url);
    redisSetTimeout(context_.get(), two_seconds);
    if (parsed->password) expect_ok(command({"AUTH", *parsed->password}));
    if (parsed->db != 0) expect_ok(command({"SELECT", std::to_string(parsed->db)}));
  }

  store::RedisReply command(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (const std::string& a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    void* reply = redisCommandArgv(context_.get(), static_cast<int>(args.size()), argv.data(),
                                   lengths.data());
    if (reply == nullptr) throw std::runtime_error("RawRedis: the connection failed");
    return store::RedisReply(static_cast<redisReply*>(reply));
  }

  // The integer a command answers (EXISTS, DBSIZE...).
  long long integer(const std::vector<std::string>& args) {
    auto reply = command(args);
    if (reply->type != REDIS_REPLY_INTEGER) throw std::runtime_error("RawRedis: not an integer");
    return reply->integer;
  }

  // Every key matching `pattern` (SCAN, so fine on the shared server).
  std::vector<std::string> keys(const std::string& pattern) {
    std::vector<std::string> found;
    std::string cursor = "0";
    do {
      auto reply = command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
      cursor.assign(reply->element[0]->str, reply->element[0]->len);
      const redisReply* names = reply->element[1];
      for (std::size_t i = 0; i < names->elements; ++i) {
        found.emplace_back(names->element[i]->str, names->element[i]->len);
      }
    } while (cursor != "0");
    return found;
  }

  static void expect_ok(const store::RedisReply& reply) {
    if (reply->type != REDIS_REPLY_STATUS) throw std::runtime_error("RawRedis: not OK");
  }

 private:
  struct Free {
    void operator()(redisContext* c) const { redisFree(c); }
  };
  std::unique_ptr<redisContext, Free> context_;
};

}  // namespace dynaseal::testing
