// Real Redis and PostgreSQL servers for tests (scripts/test-services).
//
// The shared ones are started once per CTest run by the fixture `test_services` (tests that use
// them carry FIXTURES_REQUIRED test_services) and are shared by every test: isolate yourself
// with a key prefix (Redis) or a schema of your own (PostgreSQL). Tests that stop, pause or
// restart a server start their own instance instead, in a temporary directory, and it is gone
// when the object is.
//
// Every function throws std::runtime_error when a server is missing or does not start: a test
// that needs one fails, it never skips.
//
//   auto url = dynaseal::testing::shared_redis_url();     // "redis://127.0.0.1:PORT/0"
//   dynaseal::testing::RedisServer redis;                  // own instance, started
//   redis.pause();  /* requests time out */  redis.resume();
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace dynaseal::testing {

std::string shared_redis_url();
// Node 1 of a Redis Cluster of three masters (each owns a third of the slots).
std::string shared_redis_cluster_url();
// postgresql://postgres@127.0.0.1:PORT/postgres (trust authentication, loopback only).
std::string shared_postgres_url();

class RedisServer {
 public:
  RedisServer();  // started
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  std::string url() const;
  int port() const;
  void start();   // on the same port as before
  void stop();    // SIGTERM; its data is gone (nothing is persisted)
  void pause();   // SIGSTOP: connections stay open, nothing answers
  void resume();  // SIGCONT

 private:
  std::filesystem::path dir_;
};

// A Redis Cluster of its own: three masters, no replicas, all slots covered.
class RedisCluster {
 public:
  RedisCluster();  // started, cluster_state:ok
  ~RedisCluster();
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  std::string url() const;                     // node 1's
  std::vector<std::string> node_urls() const;  // nodes 1 to 3

 private:
  std::filesystem::path dir_;
};

class PostgresServer {
 public:
  PostgresServer();  // a fresh cluster, started
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  std::string url() const;
  void start();  // on the same port, with the same data
  void stop();   // fast shutdown: committed data stays
  void restart();

 private:
  std::filesystem::path dir_;
};

}  // namespace dynaseal::testing
