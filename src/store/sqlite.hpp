// A thin, strict wrapper over one SQLite connection: the embedded default for the server's
// registry and outbox and for the backend's users and ledger (DESIGN §8).
//
// Opening sets what every Dynaseal database wants: WAL journal (readers never block the
// writer), synchronous=NORMAL (a commit is a write to the WAL, not an fsync: it survives the
// process being killed, and only a power cut can lose the last commits), foreign keys on, a busy
// timeout for the rare second writer (a CLI command next to a running process), and a file
// created 0600 whose WAL and shared-memory files inherit that mode.
//
// Errors: every call that touches the database returns Result; a failure is store_unavailable
// (conflict for a broken UNIQUE or PRIMARY KEY constraint), and error_message() says what SQLite
// reported, for the log. A connection belongs to one thread at a time; open one per thread.
//
//   auto db = Sqlite::open("server.db");
//   if (!db) fail(...);
//   auto tx = db->begin();                              // BEGIN IMMEDIATE
//   Statement& insert = db->statement("INSERT INTO t(a, b) VALUES (?1, ?2)");
//   if (!insert.bind(1, "x").bind(2, 42).run()) ...    // run(): step to the end, then reset
//   if (!tx->commit()) ...                               // rollback if never committed
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/error.hpp"
#include "core/string_map.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace dynaseal::store {

// A prepared statement. Bind parameters are 1-based, columns 0-based. step() returns true
// while there is a row; after the last row (or an error) the statement resets itself, so a
// cached statement is ready again.
class Statement {
 public:
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;

  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
  Statement& bind(int index, double value);
  Statement& bind(int index, std::string_view text);
  Statement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
  Statement& bind(int index, const std::string& text) {
    return bind(index, std::string_view(text));
  }
  Statement& bind(int index, std::nullptr_t);
  template <class T>
  Statement& bind(int index, const std::optional<T>& value) {
    return value ? bind(index, *value) : bind(index, nullptr);
  }

  Result<bool> step();
  // Steps to the end (for statements without rows, or when rows do not matter).
  Result<void> run();
  void reset();

  bool is_null(int column) const;
  std::int64_t int64(int column) const;
  double real(int column) const;
  std::string_view text(int column) const;  // valid until the next step or reset
  std::string string(int column) const { return std::string(text(column)); }

 private:
  sqlite3_stmt* stmt_;
  int bind_status_ = 0;  // the first failed bind, reported by step()
};

class Transaction;

class Sqlite {
 public:
  struct Options {
    int busy_timeout_ms = 5000;
    bool create = true;  // create the file (0600) when missing
  };

  // Opens (and by default creates) the database at `path`; ":memory:" for tests.
  static Result<Sqlite> open(const std::filesystem::path& path, Options options);
  static Result<Sqlite> open(const std::filesystem::path& path) { return open(path, Options{}); }

  ~Sqlite();
  Sqlite(Sqlite&& other) noexcept;
  Sqlite& operator=(Sqlite&& other) noexcept;
  Sqlite(const Sqlite&) = delete;

  // Runs one or more statements without results (schema, pragmas).
  Result<void> exec(std::string_view sql);
  // A fresh statement, owned by the caller.
  Result<Statement> prepare(std::string_view sql);
  // A statement prepared once per connection and kept (reset, bindings cleared) for reuse.
  // The SQL must be a constant of the program: a failure to prepare it is a bug and throws.
  Statement& statement(std::string_view sql);

  // BEGIN IMMEDIATE: takes the write lock now, so the transaction cannot fail later on
  // "database is locked" half-way. The returned object rolls back unless committed.
  Result<Transaction> begin();

  std::int64_t changes() const;
  std::int64_t last_insert_rowid() const;
  std::string error_message() const;
  sqlite3* handle() { return db_; }

 private:
  explicit Sqlite(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
  StringMap<std::unique_ptr<Statement>> cache_;  // by SQL, looked up without a copy
};

class Transaction {
 public:
  explicit Transaction(Sqlite& db) : db_(&db) {}
  ~Transaction();
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;

  Result<void> commit();

 private:
  Sqlite* db_;
};

// One step of a schema: version N is reached by running `sql` on version N-1.
struct Migration {
  int version;
  std::string_view sql;
};

// Brings the schema to the last migration's version, each step in its own transaction, the
// version kept in PRAGMA user_version. A database newer than this program knows is refused
// (store_unavailable, with a message): running old code on a new schema could corrupt it.
// `migrations` must be sorted and numbered 1, 2, 3...
Result<void> migrate(Sqlite& db, std::span<const Migration> migrations, std::string* message);

// "sqlite:PATH" -> PATH, relative paths resolved against `base_dir`; nothing for other URLs.
std::optional<std::filesystem::path> sqlite_path(std::string_view url,
                                                 const std::filesystem::path& base_dir);

}  // namespace dynaseal::store
