#include "store/postgres_rows.hpp"

#include <charconv>

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

namespace dynaseal::store {
namespace {

void clear(pg_result* result) {
  if (result != nullptr) PQclear(result);
}

// At most one line of SQL in the log.
std::string_view excerpt(std::string_view sql) { return sql.substr(0, 80); }

}  // namespace

PgParam::PgParam(std::int64_t value) : kind_(Kind::number) {
  const auto [end, ec] = std::to_chars(number_.data(), number_.data() + number_.size() - 1, value);
  *end = '\0';  // 20 characters at most: always fits
  length_ = static_cast<int>(end - number_.data());
}

PgParam::PgParam(bool value) : kind_(Kind::number) {
  number_[0] = value ? 't' : 'f';
  number_[1] = '\0';
  length_ = 1;
}

PgRows::PgRows(pg_result* result, std::string_view sql)
    : result_(result, &clear),
      sql_(excerpt(sql)),
      rows_(result == nullptr ? 0 : PQntuples(result)),
      columns_(result == nullptr ? 0 : PQnfields(result)) {}

std::int64_t PgRows::affected() const {
  const char* text = result_ ? PQcmdTuples(result_.get()) : "";
  std::int64_t n = 0;
  const std::string_view s(text);
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  return ec == std::errc{} && end == s.data() + s.size() ? n : 0;
}

std::string_view PgRows::command() const { return result_ ? PQcmdStatus(result_.get()) : ""; }

bool PgRows::is_null(int row, int column) const {
  if (row < 0 || row >= rows_ || column < 0 || column >= columns_) return true;
  return PQgetisnull(result_.get(), row, column) == 1;
}

std::int64_t PgRows::int64(int row, int column) const {
  auto value = optional_int64(row, column);
  if (value) return *value;
  if (ok_) bad(row, column, "NULL where a number is required");
  return 0;
}

std::optional<std::int64_t> PgRows::optional_int64(int row, int column) const {
  if (is_null(row, column)) return std::nullopt;
  const std::string_view s = text(row, column);
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end != s.data() + s.size()) {
    bad(row, column, "not a 64-bit integer");
    return std::nullopt;
  }
  return value;
}

bool PgRows::boolean(int row, int column) const {
  const std::string_view s = is_null(row, column) ? "" : text(row, column);
  if (s == "t") return true;
  if (s != "f") bad(row, column, "not a boolean");
  return false;
}

std::string_view PgRows::text(int row, int column) const {
  if (is_null(row, column)) {
    bad(row, column, "NULL where text is required");
    return {};
  }
  return {PQgetvalue(result_.get(), row, column),
          static_cast<std::size_t>(PQgetlength(result_.get(), row, column))};
}

void PgRows::bad(int row, int column, std::string_view what) const {
  if (ok_) {
    spdlog::error("postgres: bad database contents: row {} column {} of \"{}\": {}", row, column,
                  sql_, what);
  }
  ok_ = false;
}

}  // namespace dynaseal::store
