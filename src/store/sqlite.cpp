#include "store/sqlite.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <stdexcept>

namespace dynaseal::store {
namespace {

Error error_of(int extended_rc) {
  if (extended_rc == SQLITE_CONSTRAINT_UNIQUE || extended_rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
    return Error::conflict;
  }
  return Error::store_unavailable;
}

// SQLite would create the file with the process umask (often 0644); a database of users' token
// hashes and usage is private, so it is created 0600 first and SQLite opens it.
bool create_private_file(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

}  // namespace

Statement::~Statement() {
  if (stmt_ != nullptr) sqlite3_finalize(stmt_);
}

Statement::Statement(Statement&& other) noexcept
    : stmt_(other.stmt_), bind_status_(other.bind_status_) {
  other.stmt_ = nullptr;
}

Statement& Statement::bind(int index, std::int64_t value) {
  const int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && bind_status_ == SQLITE_OK) bind_status_ = rc;
  return *this;
}

Statement& Statement::bind(int index, double value) {
  const int rc = sqlite3_bind_double(stmt_, index, value);
  if (rc != SQLITE_OK && bind_status_ == SQLITE_OK) bind_status_ = rc;
  return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
  const int rc =
      sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK && bind_status_ == SQLITE_OK) bind_status_ = rc;
  return *this;
}

Statement& Statement::bind(int index, std::nullptr_t) {
  const int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK && bind_status_ == SQLITE_OK) bind_status_ = rc;
  return *this;
}

Result<bool> Statement::step() {
  if (bind_status_ != SQLITE_OK) {
    const int rc = bind_status_;
    reset();
    return Unexpected(error_of(rc));
  }
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  // The error code lives on the connection until the next call: read it before resetting.
  const int extended = sqlite3_extended_errcode(sqlite3_db_handle(stmt_));
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  if (rc == SQLITE_DONE) return false;
  return Unexpected(error_of(extended));
}

Result<void> Statement::run() {
  for (;;) {
    auto row = step();
    if (!row) return Unexpected(row.error());
    if (!*row) return {};
  }
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_status_ = SQLITE_OK;
}

bool Statement::is_null(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

std::int64_t Statement::int64(int column) const { return sqlite3_column_int64(stmt_, column); }

double Statement::real(int column) const { return sqlite3_column_double(stmt_, column); }

std::string_view Statement::text(int column) const {
  const auto* p = sqlite3_column_text(stmt_, column);
  if (p == nullptr) return {};
  return {reinterpret_cast<const char*>(p),
          static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))};
}

Result<Sqlite> Sqlite::open(const std::filesystem::path& path, Options options) {
  const bool in_memory = path == ":memory:";
  if (!in_memory && options.create && !std::filesystem::exists(path) &&
      !create_private_file(path)) {
    return Unexpected(Error::io_error);
  }
  sqlite3* handle = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  const int rc = sqlite3_open_v2(path.c_str(), &handle, flags, nullptr);
  Sqlite db(handle);  // owns the handle even when opening failed
  if (rc != SQLITE_OK) return Unexpected(Error::store_unavailable);
  sqlite3_busy_timeout(handle, options.busy_timeout_ms);
  // journal_mode answers with a row; exec ignores it. A database on a file system without
  // shared memory stays in its old mode, which is still correct, only slower.
  // No mmap: these files grow with every request, and SQLite would remap them on most commits
  // (measured slower, in the backend by a fifth).
  if (!db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")) {
    return Unexpected(Error::store_unavailable);
  }
  return db;
}

Sqlite::~Sqlite() {
  cache_.clear();  // statements first: a connection with live statements does not close
  if (db_ != nullptr) sqlite3_close(db_);
}

Sqlite::Sqlite(Sqlite&& other) noexcept : db_(other.db_), cache_(std::move(other.cache_)) {
  other.db_ = nullptr;
}

Sqlite& Sqlite::operator=(Sqlite&& other) noexcept {
  if (this == &other) return *this;
  cache_.clear();
  if (db_ != nullptr) sqlite3_close(db_);
  db_ = other.db_;
  cache_ = std::move(other.cache_);
  other.db_ = nullptr;
  return *this;
}

Result<void> Sqlite::exec(std::string_view sql) {
  const std::string text(sql);
  if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    return Unexpected(error_of(sqlite3_extended_errcode(db_)));
  }
  return {};
}

Result<Statement> Sqlite::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return Unexpected(Error::store_unavailable);
  return Statement(stmt);
}

Statement& Sqlite::statement(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) {
    // A caller that stopped after the first row left it active (binds would fail with
    // SQLITE_MISUSE and its read snapshot would stay open): hand it out reset, as promised.
    it->second->reset();
    return *it->second;
  }
  auto prepared = prepare(sql);
  if (!prepared) {
    throw std::logic_error("cannot prepare SQL (" + error_message() + "): " + std::string(sql));
  }
  auto owned = std::make_unique<Statement>(std::move(*prepared));
  Statement& ref = *owned;
  cache_.emplace(std::string(sql), std::move(owned));
  return ref;
}

Result<Transaction> Sqlite::begin() {
  if (auto ok = exec("BEGIN IMMEDIATE"); !ok) return Unexpected(ok.error());
  return Transaction(*this);
}

std::int64_t Sqlite::changes() const { return sqlite3_changes64(db_); }

std::int64_t Sqlite::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

std::string Sqlite::error_message() const {
  return db_ == nullptr ? "out of memory" : sqlite3_errmsg(db_);
}

Transaction::~Transaction() {
  if (db_ != nullptr) (void)db_->exec("ROLLBACK");
}

Result<void> Transaction::commit() {
  if (db_ == nullptr) return Unexpected(Error::internal);
  auto ok = db_->exec("COMMIT");
  if (ok) db_ = nullptr;  // a failed COMMIT leaves the transaction open: the destructor rolls back
  return ok;
}

Result<void> migrate(Sqlite& db, std::span<const Migration> migrations, std::string* message) {
  auto read = db.prepare("PRAGMA user_version");
  if (!read) return Unexpected(read.error());
  auto row = read->step();
  if (!row || !*row) return Unexpected(Error::store_unavailable);
  const std::int64_t current = read->int64(0);
  read->reset();
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  if (current > latest) {
    if (message != nullptr) {
      *message = "database schema version " + std::to_string(current) +
                 " is newer than this program knows (" + std::to_string(latest) + ")";
    }
    return Unexpected(Error::store_unavailable);
  }
  for (const Migration& m : migrations) {
    if (m.version <= current) continue;
    auto tx = db.begin();
    if (!tx) return Unexpected(tx.error());
    auto applied = db.exec(m.sql);
    if (applied) applied = db.exec("PRAGMA user_version = " + std::to_string(m.version));
    if (applied) applied = tx->commit();
    if (!applied) {
      if (message != nullptr) {
        *message =
            "migration to version " + std::to_string(m.version) + " failed: " + db.error_message();
      }
      return Unexpected(applied.error());
    }
  }
  return {};
}

std::optional<std::filesystem::path> sqlite_path(std::string_view url,
                                                 const std::filesystem::path& base_dir) {
  constexpr std::string_view kScheme = "sqlite:";
  if (!url.starts_with(kScheme)) return std::nullopt;
  std::filesystem::path path(url.substr(kScheme.size()));
  if (path.empty()) return std::nullopt;
  if (path == ":memory:" || path.is_absolute()) return path;
  return base_dir / path;
}

}  // namespace dynaseal::store
