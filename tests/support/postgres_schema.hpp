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

#include <string>

namespace dynaseal::testing {

// A fresh schema on shared_postgres_url().
std::string fresh_postgres_url();
// A fresh schema on the server at `server_url` (e.g. an own PostgresServer's url()).
std::string fresh_postgres_url(const std::string& server_url);

// Runs SQL (no parameters) on `url`; throws with PostgreSQL's message when it fails. For tests
// that tamper with a database behind a store's back.
void postgres_exec(const std::string& url, const std::string& sql);

}  // namespace dynaseal::testing
