// PostgreSQL connection URLs as written in server.toml and backend.toml (`db = "postgresql://..."`,
// DESIGN §8, §11): recognising them, checking them at configuration time, and hiding their
// password whenever one is shown.
//
// A URL is libpq's URI form, `postgresql://[user[:password]@][host][:port][,...][/dbname]
// [?param=value&...]` (`postgres://` too), with its parameters percent-encoded:
//   postgresql://dynaseal:s3cret@db.internal:5432/dynaseal?sslmode=verify-full
//   postgresql://postgres@127.0.0.1:5432/postgres?options=-csearch_path%3Dtenant_a
//
// The password never appears in anything these functions return: messages quote the URL with
// its password replaced by "***" (redact_postgres_url).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace dynaseal::store {

// True when `url` starts with "postgresql://" or "postgres://" (the scheme is case-sensitive, as
// in libpq).
bool is_postgres_url(std::string_view url);

// Nothing when `url` is a usable PostgreSQL URL; otherwise why not, for a configuration error.
// Checked: the scheme, no spaces or control characters, what libpq's own parser refuses
// (unknown parameters, unbalanced IPv6 brackets...), every port a number in 1-65535, and
// connect_timeout a whole number of seconds. Settings only the server can judge (a wrong
// password, an unknown sslmode value) show when connecting, at start.
std::optional<std::string> check_postgres_url(std::string_view url);

// The URL with the password (in the user info and in a `password=` parameter) replaced by
// "***"; any other text is returned unchanged.
std::string redact_postgres_url(std::string_view url);

}  // namespace dynaseal::store
