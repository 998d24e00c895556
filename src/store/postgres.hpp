// A thin, strict wrapper over one libpq connection: the scale-out store of the server's registry
// and outbox and of the backend's users and ledger (DESIGN §8). It mirrors store/sqlite.hpp.
//
// Connecting: `url` is checked first (postgres_url.hpp). Unless the URL says otherwise the
// connection gets connect_timeout, application_name and client_encoding UTF8; statement_timeout
// is then set for the session (unless the URL's `options` set it), so a lock or a slow server
// cannot hold a thread forever.
//
// Statements: parameterized only ($1, $2...), each SQL text prepared once per connection and
// kept. Parameters travel as text (numbers) or raw bytes (strings), never spliced into SQL.
//
// Errors: every call returns Result; a unique violation is conflict, anything else
// store_unavailable, and error_message() says what PostgreSQL reported (never the password).
// A lost connection (PostgreSQL restarted, network cut) fails the call in progress; the next
// call outside a transaction connects again, so the process survives a PostgreSQL restart. A
// connection the server closed while it was idle (a restart's goodbye) is noticed before it is
// used, so that call does not fail. A transaction whose connection was lost stays failed until
// it is dropped: its statements are never re-run on a new connection outside it.
//
// Values are read strictly (PgRows): a NULL or a malformed number where the caller expects a
// value is logged with the statement and column, and the read fails with store_unavailable.
//
// A connection belongs to one thread at a time; open one per thread.
//
//   auto db = Postgres::connect(url, {.application_name = "dynaseal-server"}, &message);
//   auto tx = db->begin();
//   auto rows = db->query("SELECT id, body FROM outbox WHERE iss = $1", {iss});
//   for (int i = 0; rows && i < rows->size(); ++i) use(rows->int64(i, 0), rows->text(i, 1));
//   if (!rows || !rows->ok()) ...                         // a failed read or bad contents
//   if (!tx->commit()) ...                                // rolled back if never committed
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/error.hpp"
#include "core/string_map.hpp"
#include "store/postgres_rows.hpp"

struct pg_conn;
struct pg_result;

namespace dynaseal::store {

// One statement of a pipeline: SQL and its parameters (which must outlive the call).
struct PgCall {
  std::string_view sql;
  std::vector<PgParam> params;
};

class PgTransaction;

class Postgres {
 public:
  struct Options {
    std::chrono::seconds connect_timeout{5};
    std::chrono::milliseconds statement_timeout{30'000};
    std::string application_name = "dynaseal";
  };

  // Checks `url` and connects. On failure store_unavailable (or a refused URL) and why in
  // `message` (redacted).
  static Result<Postgres> connect(std::string_view url, Options options, std::string* message);

  ~Postgres();
  Postgres(Postgres&& other) noexcept;
  Postgres& operator=(Postgres&& other) noexcept;
  Postgres(const Postgres&) = delete;

  // Runs a prepared (and cached) statement: its rows, or the error. `sql` is a constant of the
  // program.
  Result<PgRows> query(std::string_view sql, std::span<const PgParam> params);
  Result<PgRows> query(std::string_view sql, std::initializer_list<PgParam> params = {}) {
    return query(sql, std::span<const PgParam>(params.begin(), params.size()));
  }
  // query() for statements without rows: how many rows they changed.
  Result<std::int64_t> execute(std::string_view sql, std::initializer_list<PgParam> params = {});

  // Runs several statements in one round trip (libpq pipeline mode) and returns each one's
  // result in order. Inside a transaction, a statement that fails aborts it: the caller gives
  // the transaction up. The whole call fails when the connection does.
  Result<std::vector<Result<PgRows>>> pipeline(std::span<const PgCall> calls);

  // Runs SQL without parameters through the simple protocol (schema, several statements).
  Result<void> exec(std::string_view sql);

  // BEGIN; the returned object rolls back unless committed. Savepoints nest inside.
  Result<PgTransaction> begin();
  Result<void> savepoint(std::string_view name);
  Result<void> rollback_to(std::string_view name);
  Result<void> release(std::string_view name);

  // What PostgreSQL (or libpq) said last, for the log.
  const std::string& error_message() const { return error_; }
  // The URL, password hidden, for the log.
  const std::string& where() const { return redacted_url_; }

 private:
  friend class PgTransaction;
  Postgres() = default;
  Result<void> ensure_connected();
  void drop_if_closed_by_server();
  Result<void> open_session();
  Result<const std::string*> prepared(std::string_view sql);
  // The rows of a finished statement, or its error (mapped, logged when the connection is lost).
  Result<PgRows> take(pg_result* result, std::string_view sql);
  bool send_chunk(std::span<const PgCall> calls, const std::vector<const std::string*>& names,
                  std::size_t first, std::size_t last);
  bool read_chunk(std::span<const PgCall> calls, std::size_t first, std::size_t last,
                  std::vector<Result<PgRows>>& out);
  void forget_connection();

  pg_conn* conn_ = nullptr;
  std::string url_;
  std::string redacted_url_;
  Options options_;
  bool url_sets_statement_timeout_ = false;
  std::string error_;
  StringMap<std::string> statements_;  // SQL -> prepared statement name
  std::uint64_t next_statement_ = 0;
  std::uint64_t generation_ = 0;  // counts connections, so a transaction knows its own
  bool in_transaction_ = false;
};

class PgTransaction {
 public:
  explicit PgTransaction(Postgres& db) : db_(&db), generation_(db.generation_) {}
  ~PgTransaction();
  PgTransaction(PgTransaction&& other) noexcept : db_(other.db_), generation_(other.generation_) {
    other.db_ = nullptr;
  }
  PgTransaction& operator=(PgTransaction&&) = delete;
  PgTransaction(const PgTransaction&) = delete;

  Result<void> commit();

 private:
  Postgres* db_;
  std::uint64_t generation_;
};

}  // namespace dynaseal::store
