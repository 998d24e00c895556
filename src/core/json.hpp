// Strict JSON for everything security-sensitive (tokens, keys, request bodies, callbacks).
//
// Boost.JSON's own parser silently keeps the last of duplicate member names, so two readers of
// one document could disagree on its meaning. `parse_json` is the only way Dynaseal reads JSON
// that crosses a trust boundary: it rejects
//   - duplicate member names at any depth       -> Error::json_duplicate_member
//   - nesting deeper than limits.max_depth      -> Error::json_too_deep
//   - input longer than limits.max_bytes        -> Error::json_too_large
//   - invalid UTF-8, lone surrogate escapes, comments, trailing commas, trailing content and
//     anything else that is not RFC 8259 JSON   -> Error::json_syntax
//   - numbers beyond the double range (1e400)   -> Error::json_number_invalid
// Integers that fit int64 become int64 values (uint64 above that); any number with a fraction
// or exponent becomes a correctly rounded double. Readers of integers use `int_member`, which
// accepts only the int64 kind, so `1.0`, `1e3` and `"1"` are never integers.
//
//   auto v = parse_json(text, {.max_bytes = 8192, .max_depth = 8});
//   if (!v) return Unexpected(Error::claims_malformed);
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include <boost/json/value.hpp>

#include "core/error.hpp"

namespace dynaseal {

struct JsonLimits {
  std::size_t max_bytes = 1 << 20;
  std::size_t max_depth = 32;
};

// Parses `text` as exactly one JSON value. Memory comes from `storage` (default: the heap), so
// a caller on a hot path can pass a monotonic resource over a stack buffer.
Result<boost::json::value> parse_json(std::string_view text, const JsonLimits& limits = {},
                                      boost::json::storage_ptr storage = {});

// Member lookup for strict readers. Each returns nothing when the member is absent or has
// another kind; `member` distinguishes the two by returning the value itself.
const boost::json::value* member(const boost::json::object& obj, std::string_view key);
std::optional<std::string_view> string_member(const boost::json::object& obj, std::string_view key);
std::optional<std::int64_t> int_member(const boost::json::object& obj, std::string_view key);

std::string_view as_view(const boost::json::string& s);

// Appends `s` as a JSON string: quoted, with the minimal escapes (", \, and the control
// characters, as \b \f \n \r \t or \u00xx). Other bytes are copied as they are, so the result
// is valid JSON when `s` is valid UTF-8. The same bytes as boost::json::serialize and RFC 8785.
void json_append_string(std::string& out, std::string_view s);

}  // namespace dynaseal
