#include "support/postgres_schema.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>

#include "store/postgres.hpp"
#include "support/services.hpp"

namespace dynaseal::testing {
namespace {

// Unique across the processes of one test run (gtest_discover_tests runs each test in its
// own process, several at once) and across runs on the same cluster.
std::string schema_name() {
  static std::atomic<int> counter{0};
  const auto ticks = std::chrono::steady_clock::now().time_since_epoch().count();
  return "t_" + std::to_string(::getpid()) + "_" + std::to_string(ticks % 1'000'000'000) + "_" +
         std::to_string(counter++);
}

}  // namespace

PostgresSession::PostgresSession(const std::string& url) {
  std::string message;
  auto db = store::Postgres::connect(url, {.application_name = "dynaseal-test"}, &message);
  if (!db) throw std::runtime_error("postgres test helper: " + message);
  db_ = std::make_unique<store::Postgres>(std::move(*db));
}

PostgresSession::~PostgresSession() = default;

void PostgresSession::exec(const std::string& sql) {
  if (!db_->exec(sql)) {
    throw std::runtime_error("postgres test helper: `" + sql + "` failed: " + db_->error_message());
  }
}

void postgres_exec(const std::string& url, const std::string& sql) {
  PostgresSession(url).exec(sql);
}

std::string fresh_postgres_url(const std::string& server_url) {
  const std::string schema = schema_name();
  postgres_exec(server_url, "CREATE SCHEMA " + schema);
  const char separator = server_url.find('?') == std::string::npos ? '?' : '&';
  return server_url + separator + "options=-csearch_path%3D" + schema;
}

std::string fresh_postgres_url() { return fresh_postgres_url(shared_postgres_url()); }

}  // namespace dynaseal::testing
