// RFC 8785 JSON Canonicalization Scheme: one byte string per JSON value, for signing.
//
// Members are sorted by the UTF-16 code units of their names, strings use the minimal escapes
// of ECMAScript's JSON.stringify, numbers are IEEE doubles printed as ECMAScript prints them
// (shortest round trip, exponent form outside [1e-7, 1e21)), and there is no whitespace.
#pragma once

#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "core/error.hpp"
#include "core/json.hpp"

namespace dynaseal {

// Canonical form of a value produced by parse_json. Integers are taken as doubles, as
// JSON numbers are in ECMAScript; precision beyond 2^53 is lost exactly as in JavaScript.
std::string jcs_serialize(const boost::json::value& value);

// Strictly parses `text` (see parse_json) and returns its canonical form.
Result<std::string> jcs_canonicalize(std::string_view text, const JsonLimits& limits = {});

// Appends the ECMAScript Number::toString form of a finite double (-0 prints as "0").
void jcs_append_number(std::string& out, double d);

}  // namespace dynaseal
