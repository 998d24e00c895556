#include "core/jcs.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <vector>

namespace dynaseal {
namespace {

namespace json = boost::json;

// UTF-16 code units of a valid UTF-8 string (parse_json guarantees validity).
std::u16string utf16_units(std::string_view s) {
  std::u16string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::uint32_t cp;
    std::size_t len;
    if (c < 0x80) {
      cp = c, len = 1;
    } else if (c < 0xe0) {
      cp = c & 0x1f, len = 2;
    } else if (c < 0xf0) {
      cp = c & 0x0f, len = 3;
    } else {
      cp = c & 0x07, len = 4;
    }
    for (std::size_t k = 1; k < len && i + k < s.size(); ++k) {
      cp = cp << 6 | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    }
    i += len;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out.push_back(static_cast<char16_t>(0xd800 + (cp >> 10)));
      out.push_back(static_cast<char16_t>(0xdc00 + (cp & 0x3ff)));
    } else {
      out.push_back(static_cast<char16_t>(cp));
    }
  }
  return out;
}

void append_value(std::string& out, const json::value& v);

void append_object(std::string& out, const json::object& obj) {
  struct Member {
    std::u16string order;
    const json::key_value_pair* kv;
  };
  std::vector<Member> members;
  members.reserve(obj.size());
  for (const auto& kv : obj) members.push_back({utf16_units(kv.key()), &kv});
  std::sort(members.begin(), members.end(),
            [](const Member& a, const Member& b) { return a.order < b.order; });
  out.push_back('{');
  for (std::size_t i = 0; i < members.size(); ++i) {
    if (i) out.push_back(',');
    json_append_string(out, members[i].kv->key());
    out.push_back(':');
    append_value(out, members[i].kv->value());
  }
  out.push_back('}');
}

void append_value(std::string& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: out += "null"; break;
    case json::kind::bool_: out += v.get_bool() ? "true" : "false"; break;
    case json::kind::int64: jcs_append_number(out, static_cast<double>(v.get_int64())); break;
    case json::kind::uint64: jcs_append_number(out, static_cast<double>(v.get_uint64())); break;
    case json::kind::double_: jcs_append_number(out, v.get_double()); break;
    case json::kind::string: json_append_string(out, as_view(v.get_string())); break;
    case json::kind::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out.push_back(',');
        first = false;
        append_value(out, e);
      }
      out.push_back(']');
      break;
    }
    case json::kind::object: append_object(out, v.get_object()); break;
  }
}

}  // namespace

// ECMAScript Number::toString (ECMA-262 §6.1.6.1.20) from the shortest round-trip digits,
// which std::to_chars provides: digits d1..dk and exponent n with value 0.d1..dk × 10^n.
void jcs_append_number(std::string& out, double d) {
  if (d == 0) {
    out.push_back('0');
    return;
  }
  if (d < 0) {
    out.push_back('-');
    d = -d;
  }
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  const std::string_view sci(buf, static_cast<std::size_t>(r.ptr - buf));  // "d.ddde+XX"
  const std::size_t e_pos = sci.find('e');
  std::string digits;
  digits.push_back(sci[0]);
  if (e_pos > 1) digits.append(sci.substr(2, e_pos - 2));
  const int k = static_cast<int>(digits.size());
  int exponent = 0;
  const char* e_begin = sci.data() + e_pos + 1;
  if (*e_begin == '+') ++e_begin;  // from_chars takes no '+'
  std::from_chars(e_begin, sci.data() + sci.size(), exponent);
  const int n = exponent + 1;

  if (k <= n && n <= 21) {  // integer: digits then zeros
    out += digits;
    out.append(static_cast<std::size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {  // decimal point inside the digits
    out.append(digits, 0, static_cast<std::size_t>(n));
    out.push_back('.');
    out.append(digits, static_cast<std::size_t>(n));
  } else if (-6 < n && n <= 0) {  // 0.000ddd
    out += "0.";
    out.append(static_cast<std::size_t>(-n), '0');
    out += digits;
  } else {  // exponent form: d[.ddd]e±X
    out.push_back(digits[0]);
    if (k > 1) {
      out.push_back('.');
      out.append(digits, 1);
    }
    out.push_back('e');
    out.push_back(n - 1 >= 0 ? '+' : '-');
    out += std::to_string(std::abs(n - 1));
  }
}

std::string jcs_serialize(const json::value& value) {
  std::string out;
  append_value(out, value);
  return out;
}

Result<std::string> jcs_canonicalize(std::string_view text, const JsonLimits& limits) {
  auto v = parse_json(text, limits);
  if (!v) return Unexpected(v.error());
  return jcs_serialize(*v);
}

}  // namespace dynaseal
