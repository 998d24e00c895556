// A PostgreSQL schema of its own for each test, so tests share one PostgreSQL server
// (services.hpp) without seeing each other's tables.
//
// fresh_postgres_url() creates a uniquely named, empty schema and returns a URL whose
// `options=-csearch_path=<schema>` makes it the connection's only schema: the stores create
// and find their tables there. Throws std::runtime_error when PostgreSQL cannot be reached, so
// a test that needs it fails, never skips. The schemas are dropped with the test cluster.
//
//   const std::string url = dynaseal::testing::fresh_postgres_url();
//   auto store = PostgresServerStore::open(url, &message);
#pragma once

#include <memory>
#include <string>

namespace dynaseal::store {
class Postgres;
}

namespace dynaseal::testing {

// A fresh schema on shared_postgres_url().
std::string fresh_postgres_url();
// A fresh schema on the server at `server_url` (e.g. an own PostgresServer's url()).
std::string fresh_postgres_url(const std::string& server_url);

// Runs SQL (no parameters) on `url`; throws with PostgreSQL's message when it fails. For tests
// that tamper with a database behind a store's back.
void postgres_exec(const std::string& url, const std::string& sql);

// One connection kept open, for statements that must hold something (a transaction, a lock)
// while the test does other things:
//
//   PostgresSession locker(url);
//   locker.exec("BEGIN");
//   locker.exec("LOCK TABLE outbox IN EXCLUSIVE MODE");   // writers wait from here
//   locker.exec("ROLLBACK");
class PostgresSession {
 public:
  explicit PostgresSession(const std::string& url);  // throws when it cannot connect
  ~PostgresSession();
  PostgresSession(const PostgresSession&) = delete;
  PostgresSession& operator=(const PostgresSession&) = delete;
  void exec(const std::string& sql);  // throws with PostgreSQL's message

 private:
  std::unique_ptr<store::Postgres> db_;
};

}  // namespace dynaseal::testing
