// The values that cross the libpq boundary (store/postgres.hpp): statement parameters going in,
// result rows coming out.
//
// PgParam: a number is sent as text, a string as its bytes (the binary form of text, so bodies
// are neither copied nor escaped), nullptr or an empty optional as NULL. A string parameter
// views the caller's memory: keep it alive until the call returns.
//
// PgRows: reading is strict and never crashes on bad database contents. The typed readers
// return a neutral value (0, "") when the cell is NULL, not a number, or out of range, log the
// statement, row and column once, and make ok() false; a caller reads what it needs and then
// checks ok() once (or uses check() to turn that into store_unavailable).
//
//   auto rows = db.query("SELECT id, body FROM outbox WHERE iss = $1", {iss});
//   for (int i = 0; i < rows->size(); ++i) out.push_back({rows->int64(i, 0), rows->string(i, 1)});
//   if (auto ok = rows->check(); !ok) return Unexpected(ok.error());
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"

struct pg_result;

namespace dynaseal::store {

class PgParam {
 public:
  PgParam(std::nullptr_t) : kind_(Kind::null) {}
  PgParam(std::int64_t value);
  PgParam(int value) : PgParam(static_cast<std::int64_t>(value)) {}
  PgParam(bool value);
  PgParam(std::string_view value) : kind_(Kind::bytes), view_(value) {}
  PgParam(const std::string& value) : PgParam(std::string_view(value)) {}
  PgParam(const char* value) : PgParam(std::string_view(value)) {}
  template <class T>
  PgParam(const std::optional<T>& value) : PgParam(nullptr) {
    if (value) *this = PgParam(*value);
  }

  bool is_null() const { return kind_ == Kind::null; }
  // What libpq sends: NUL-terminated text for numbers, raw bytes (format 1) for strings.
  const char* data() const { return kind_ == Kind::bytes ? view_.data() : number_.data(); }
  int size() const { return kind_ == Kind::bytes ? static_cast<int>(view_.size()) : length_; }
  int format() const { return kind_ == Kind::bytes ? 1 : 0; }

 private:
  enum class Kind { null, bytes, number };
  Kind kind_;
  std::string_view view_{};
  std::array<char, 24> number_{};
  int length_ = 0;
};

class PgRows {
 public:
  PgRows(pg_result* result, std::string_view sql);
  PgRows(PgRows&&) noexcept = default;
  PgRows& operator=(PgRows&&) noexcept = default;

  int size() const { return rows_; }
  // Rows changed by an INSERT, UPDATE or DELETE (with or without RETURNING).
  std::int64_t affected() const;
  // The command tag, e.g. "COMMIT" (or "ROLLBACK" for a COMMIT of a failed transaction).
  std::string_view command() const;

  bool is_null(int row, int column) const;
  // The typed readers; see the contract above for a NULL or malformed cell.
  std::int64_t int64(int row, int column) const;
  std::optional<std::int64_t> optional_int64(int row, int column) const;  // NULL allowed
  bool boolean(int row, int column) const;
  std::string_view text(int row, int column) const;  // valid while this object lives
  std::string string(int row, int column) const { return std::string(text(row, column)); }

  bool ok() const { return ok_; }
  Result<void> check() const {
    if (!ok_) return Unexpected(Error::store_unavailable);
    return {};
  }

 private:
  void bad(int row, int column, std::string_view what) const;

  std::unique_ptr<pg_result, void (*)(pg_result*)> result_;
  std::string sql_;  // for the log
  int rows_ = 0;
  int columns_ = 0;
  mutable bool ok_ = true;
};

}  // namespace dynaseal::store
