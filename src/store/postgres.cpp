#include "store/postgres.hpp"

#include <poll.h>

#include <algorithm>

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include "store/postgres_url.hpp"

namespace dynaseal::store {
namespace {

constexpr const char* kUniqueViolation = "23505";
constexpr const char* kNoSuchPreparedStatement = "26000";
// At most this many statements are in flight in a pipeline before their results are read: the
// results of a chunk fit in the socket buffers, so neither side can block the other.
constexpr std::size_t kPipelineChunk = 128;

std::string trimmed(const char* text) {
  std::string s = text == nullptr ? "" : text;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Server notices (e.g. "relation exists, skipping") go to the debug log, not to stderr.
void log_notice(void*, const char* message) { spdlog::debug("postgres: {}", trimmed(message)); }

// Whether the URL's `options` parameter sets statement_timeout itself.
bool url_sets_statement_timeout(const std::string& url) {
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(
      PQconninfoParse(url.c_str(), nullptr), &PQconninfoFree);
  for (const PQconninfoOption* o = options.get(); o != nullptr && o->keyword != nullptr; ++o) {
    if (std::string_view(o->keyword) == "options" && o->val != nullptr &&
        std::string_view(o->val).find("statement_timeout") != std::string_view::npos) {
      return true;
    }
  }
  return false;
}

// The three parallel arrays libpq takes for the parameters of one statement.
struct Wire {
  explicit Wire(std::span<const PgParam> params) {
    for (const PgParam& p : params) {
      values.push_back(p.is_null() ? nullptr : p.data());
      lengths.push_back(p.size());
      formats.push_back(p.format());
    }
  }
  int count() const { return static_cast<int>(values.size()); }
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
};

bool succeeded(const PGresult* r) {
  const ExecStatusType s = PQresultStatus(r);
  return s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK;
}

}  // namespace

Result<Postgres> Postgres::connect(std::string_view url, Options options, std::string* message) {
  std::string ignored;
  std::string& why = message != nullptr ? *message : ignored;
  if (auto bad = check_postgres_url(url)) {
    why = "malformed PostgreSQL URL " + redact_postgres_url(url) + ": " + *bad;
    return Unexpected(Error::store_unavailable);
  }
  Postgres db;
  db.url_ = std::string(url);
  db.redacted_url_ = redact_postgres_url(url);
  db.options_ = std::move(options);
  db.url_sets_statement_timeout_ = url_sets_statement_timeout(db.url_);
  if (auto ok = db.ensure_connected(); !ok) {
    why = "cannot connect to " + db.redacted_url_ + ": " + db.error_;
    return Unexpected(ok.error());
  }
  return db;
}

Postgres::~Postgres() { forget_connection(); }

Postgres::Postgres(Postgres&& other) noexcept { *this = std::move(other); }

Postgres& Postgres::operator=(Postgres&& other) noexcept {
  if (this == &other) return *this;
  forget_connection();
  conn_ = std::exchange(other.conn_, nullptr);
  url_ = std::move(other.url_);
  redacted_url_ = std::move(other.redacted_url_);
  options_ = std::move(other.options_);
  url_sets_statement_timeout_ = other.url_sets_statement_timeout_;
  error_ = std::move(other.error_);
  statements_ = std::move(other.statements_);
  next_statement_ = other.next_statement_;
  generation_ = other.generation_;
  in_transaction_ = other.in_transaction_;
  return *this;
}

void Postgres::forget_connection() {
  if (conn_ != nullptr) PQfinish(conn_);
  conn_ = nullptr;
  statements_.clear();
}

// Between statements nothing should arrive. When something did, it is usually the server's
// goodbye (57P01 "terminating connection due to administrator command" at a restart) and the
// end of the stream: read it now, so the next statement goes to a new connection instead of
// failing on the dead one. A notice (or a parameter report) is read and the connection kept.
void Postgres::drop_if_closed_by_server() {
  pollfd p{.fd = PQsocket(conn_), .events = POLLIN, .revents = 0};
  if (::poll(&p, 1, 0) <= 0) return;  // the usual case: nothing arrived while idle
  for (int i = 0; i < 2 && PQstatus(conn_) == CONNECTION_OK; ++i) {
    if (PQconsumeInput(conn_) == 0) break;
    (void)PQisBusy(conn_);  // parses what arrived: an error while idle becomes a notice
  }
  if (PQstatus(conn_) == CONNECTION_OK) return;
  spdlog::info("postgres {}: the server closed the connection; connecting again", redacted_url_);
  forget_connection();
}

Result<void> Postgres::ensure_connected() {
  if (conn_ != nullptr && !in_transaction_) drop_if_closed_by_server();
  if (conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK) return {};
  if (in_transaction_) {
    error_ = "the connection was lost inside a transaction";
    return Unexpected(Error::store_unavailable);
  }
  forget_connection();
  const std::string timeout = std::to_string(options_.connect_timeout.count());
  // Before dbname: defaults the URL may override. After it: what this code relies on.
  const char* keys[] = {"connect_timeout", "application_name", "dbname", "client_encoding",
                        nullptr};
  const char* values[] = {timeout.c_str(), options_.application_name.c_str(), url_.c_str(), "UTF8",
                          nullptr};
  conn_ = PQconnectdbParams(keys, values, 1);
  if (conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK) {
    error_ = conn_ == nullptr ? "out of memory" : trimmed(PQerrorMessage(conn_));
    forget_connection();
    return Unexpected(Error::store_unavailable);
  }
  PQsetNoticeProcessor(conn_, &log_notice, nullptr);
  ++generation_;
  if (generation_ > 1) spdlog::info("postgres {}: connected again", redacted_url_);
  return open_session();
}

Result<void> Postgres::open_session() {
  if (url_sets_statement_timeout_) return {};
  const std::string set =
      "SET statement_timeout = " + std::to_string(options_.statement_timeout.count());
  if (auto ok = exec(set); !ok) {
    forget_connection();
    return ok;
  }
  return {};
}

Result<const std::string*> Postgres::prepared(std::string_view sql) {
  auto it = statements_.find(sql);
  if (it != statements_.end()) return &it->second;
  // Names are never reused on a connection, even after the cache was cleared.
  std::string name = "dynaseal_" + std::to_string(++next_statement_);
  const std::string text(sql);
  auto done = take(PQprepare(conn_, name.c_str(), text.c_str(), 0, nullptr), sql);
  if (!done) return Unexpected(done.error());
  return &statements_.emplace(text, std::move(name)).first->second;
}

Result<PgRows> Postgres::take(PGresult* result, std::string_view sql) {
  if (result != nullptr && succeeded(result)) return PgRows(result, sql);
  std::string state;
  if (result != nullptr) {
    const char* code = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    state = code == nullptr ? "" : code;
    error_ = trimmed(PQresultErrorMessage(result));
    PQclear(result);
  } else {
    error_ = conn_ == nullptr ? "no connection" : trimmed(PQerrorMessage(conn_));
  }
  if (state == kUniqueViolation) return Unexpected(Error::conflict);
  // Prepared statements vanished (DISCARD ALL, a pooler): prepare them again next time.
  if (state == kNoSuchPreparedStatement) statements_.clear();
  const bool lost = conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK ||
                    state.starts_with("08") || state.starts_with("57P");
  if (lost) {
    spdlog::warn("postgres {}: connection lost ({}); connecting again on the next call",
                 redacted_url_, error_);
    forget_connection();
  } else {
    spdlog::warn("postgres {}: {} (SQLSTATE {})", redacted_url_, error_, state);
  }
  return Unexpected(Error::store_unavailable);
}

Result<PgRows> Postgres::query(std::string_view sql, std::span<const PgParam> params) {
  if (auto ok = ensure_connected(); !ok) return Unexpected(ok.error());
  auto name = prepared(sql);
  if (!name) return Unexpected(name.error());
  const Wire wire(params);
  return take(PQexecPrepared(conn_, (*name)->c_str(), wire.count(), wire.values.data(),
                             wire.lengths.data(), wire.formats.data(), 0),
              sql);
}

Result<std::int64_t> Postgres::execute(std::string_view sql,
                                       std::initializer_list<PgParam> params) {
  auto rows = query(sql, params);
  if (!rows) return Unexpected(rows.error());
  return rows->affected();
}

Result<void> Postgres::exec(std::string_view sql) {
  if (auto ok = ensure_connected(); !ok) return Unexpected(ok.error());
  const std::string text(sql);
  auto done = take(PQexec(conn_, text.c_str()), sql);
  if (!done) return Unexpected(done.error());
  return {};
}

Result<std::vector<Result<PgRows>>> Postgres::pipeline(std::span<const PgCall> calls) {
  if (auto ok = ensure_connected(); !ok) return Unexpected(ok.error());
  std::vector<const std::string*> names;
  for (const PgCall& call : calls) {
    auto name = prepared(call.sql);
    if (!name) return Unexpected(name.error());
    names.push_back(*name);
  }
  std::vector<Result<PgRows>> out;
  out.reserve(calls.size());
  if (PQenterPipelineMode(conn_) != 1) {
    error_ = trimmed(PQerrorMessage(conn_));
    return Unexpected(Error::store_unavailable);
  }
  for (std::size_t first = 0; first < calls.size(); first += kPipelineChunk) {
    const std::size_t last = std::min(calls.size(), first + kPipelineChunk);
    if (!send_chunk(calls, names, first, last) || !read_chunk(calls, first, last, out)) {
      // The protocol state is unknown now: drop the connection (and with it any transaction).
      spdlog::warn("postgres {}: pipeline failed ({}); connecting again on the next call",
                   redacted_url_, error_);
      forget_connection();
      return Unexpected(Error::store_unavailable);
    }
  }
  PQexitPipelineMode(conn_);
  return out;
}

bool Postgres::send_chunk(std::span<const PgCall> calls,
                          const std::vector<const std::string*>& names, std::size_t first,
                          std::size_t last) {
  for (std::size_t i = first; i < last; ++i) {
    const Wire wire(calls[i].params);
    if (PQsendQueryPrepared(conn_, names[i]->c_str(), wire.count(), wire.values.data(),
                            wire.lengths.data(), wire.formats.data(), 0) != 1) {
      error_ = trimmed(PQerrorMessage(conn_));
      return false;
    }
  }
  if (PQpipelineSync(conn_) != 1) {
    error_ = trimmed(PQerrorMessage(conn_));
    return false;
  }
  return true;
}

// Each statement's result, then the NULL that ends it; then the sync point.
bool Postgres::read_chunk(std::span<const PgCall> calls, std::size_t first, std::size_t last,
                          std::vector<Result<PgRows>>& out) {
  for (std::size_t i = first; i < last; ++i) {
    PGresult* r = PQgetResult(conn_);
    if (r == nullptr) {
      error_ = trimmed(PQerrorMessage(conn_));
      return false;
    }
    if (PQresultStatus(r) == PGRES_PIPELINE_ABORTED) {
      PQclear(r);
      out.push_back(Unexpected(Error::store_unavailable));
    } else {
      out.push_back(take(r, calls[i].sql));
      if (conn_ == nullptr) return false;  // take() found the connection lost
    }
    while (PGresult* extra = PQgetResult(conn_)) PQclear(extra);
  }
  PGresult* sync = PQgetResult(conn_);
  const bool synced = sync != nullptr && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
  if (!synced) error_ = trimmed(PQerrorMessage(conn_));
  if (sync != nullptr) PQclear(sync);
  return synced;
}

Result<PgTransaction> Postgres::begin() {
  if (in_transaction_) {
    error_ = "a transaction is open already on this connection";
    return Unexpected(Error::internal);
  }
  if (auto ok = exec("BEGIN"); !ok) return Unexpected(ok.error());
  in_transaction_ = true;
  return PgTransaction(*this);
}

Result<void> Postgres::savepoint(std::string_view name) {
  return exec("SAVEPOINT " + std::string(name));
}

Result<void> Postgres::rollback_to(std::string_view name) {
  return exec("ROLLBACK TO SAVEPOINT " + std::string(name));
}

Result<void> Postgres::release(std::string_view name) {
  return exec("RELEASE SAVEPOINT " + std::string(name));
}

PgTransaction::~PgTransaction() {
  if (db_ == nullptr) return;
  // On the connection the transaction began on; a new connection has no transaction to end.
  if (db_->generation_ == generation_ && db_->conn_ != nullptr &&
      PQstatus(db_->conn_) == CONNECTION_OK) {
    PQclear(PQexec(db_->conn_, "ROLLBACK"));
  }
  db_->in_transaction_ = false;
}

Result<void> PgTransaction::commit() {
  if (db_ == nullptr) return Unexpected(Error::internal);
  if (db_->generation_ != generation_ || db_->conn_ == nullptr) {
    return Unexpected(Error::store_unavailable);  // the destructor cleans up
  }
  auto done = db_->take(PQexec(db_->conn_, "COMMIT"), "COMMIT");
  if (!done) return Unexpected(done.error());
  // COMMIT of a transaction that failed earlier answers ROLLBACK, without an error.
  if (done->command() != "COMMIT") {
    db_->error_ = "the transaction was rolled back after an earlier error";
    db_->in_transaction_ = false;
    db_ = nullptr;
    return Unexpected(Error::store_unavailable);
  }
  db_->in_transaction_ = false;
  db_ = nullptr;
  return {};
}

}  // namespace dynaseal::store
