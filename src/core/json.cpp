#include "core/json.hpp"

#include <cmath>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include <boost/container/small_vector.hpp>
#include <boost/json/basic_parser_impl.hpp>

namespace dynaseal {
namespace {

namespace json = boost::json;

// Builds a json::value from basic_parser events, like json::value_stack, but refuses a second
// member with a name already present in the same object. The first error it finds itself is
// kept in `error_`; parser errors are mapped afterwards.
class StrictHandler {
 public:
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  // root_ shares the storage so that the final move into it is a move, not a deep copy.
  explicit StrictHandler(json::storage_ptr storage)
      : storage_(std::move(storage)), root_(storage_) {}

  json::value take_root() { return std::move(root_); }
  std::optional<Error> error() const { return error_; }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }

  bool on_array_begin(json::error_code&) {
    open_.emplace_back(json::array(storage_));
    keys_.emplace_back();
    return true;
  }
  bool on_array_end(std::size_t, json::error_code& ec) { return close(ec); }

  bool on_object_begin(json::error_code&) {
    open_.emplace_back(json::object(storage_));
    keys_.emplace_back();
    return true;
  }
  bool on_object_end(std::size_t, json::error_code& ec) { return close(ec); }

  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    text_.append(s.data(), s.size());
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code& ec) {
    if (text_.empty()) return emit(json::string(s, storage_), ec);
    text_.append(s.data(), s.size());
    bool ok = emit(json::string(text_, storage_), ec);
    text_.clear();
    return ok;
  }

  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    text_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    std::string& key = keys_.back();
    key.assign(text_);
    key.append(s.data(), s.size());
    text_.clear();
    return true;
  }

  bool on_number_part(json::string_view s, json::error_code&) {
    text_.append(s.data(), s.size());
    return true;
  }
  bool on_int64(std::int64_t i, json::string_view, json::error_code& ec) {
    text_.clear();
    return emit(json::value(i, storage_), ec);
  }
  bool on_uint64(std::uint64_t u, json::string_view, json::error_code& ec) {
    text_.clear();
    return emit(json::value(u, storage_), ec);
  }
  // Boost.JSON 1.81 does not round every decimal correctly; strtod (C locale) does.
  bool on_double(double, json::string_view s, json::error_code& ec) {
    text_.append(s.data(), s.size());
    const double d = std::strtod(text_.c_str(), nullptr);
    text_.clear();
    if (std::isinf(d)) return fail(Error::json_number_invalid, ec);
    return emit(json::value(d, storage_), ec);
  }

  bool on_bool(bool b, json::error_code& ec) { return emit(json::value(b, storage_), ec); }
  bool on_null(json::error_code& ec) { return emit(json::value(nullptr, storage_), ec); }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  bool fail(Error e, json::error_code& ec) {
    error_ = e;
    ec = json::error::syntax;
    return false;
  }

  bool close(json::error_code& ec) {
    json::value done = std::move(open_.back());
    open_.pop_back();
    keys_.pop_back();
    return emit(std::move(done), ec);
  }

  bool emit(json::value v, json::error_code& ec) {
    if (open_.empty()) {
      root_ = std::move(v);
      return true;
    }
    json::value& parent = open_.back();
    if (parent.is_array()) {
      parent.get_array().push_back(std::move(v));
      return true;
    }
    // The whole point of this class: a repeated name is an error, not an overwrite.
    if (!parent.get_object().emplace(keys_.back(), std::move(v)).second) {
      return fail(Error::json_duplicate_member, ec);
    }
    return true;
  }

  json::storage_ptr storage_;
  json::value root_;
  boost::container::small_vector<json::value, 8> open_;
  boost::container::small_vector<std::string, 8> keys_;
  std::string text_;
  std::optional<Error> error_;
};

}  // namespace

Result<json::value> parse_json(std::string_view text, const JsonLimits& limits,
                               json::storage_ptr storage) {
  if (text.size() > limits.max_bytes) return Unexpected(Error::json_too_large);
  json::parse_options options;
  options.max_depth = limits.max_depth;
  json::basic_parser<StrictHandler> parser(options, std::move(storage));
  json::error_code ec;
  std::size_t used = 0;
  try {
    used = parser.write_some(false, text.data(), text.size(), ec);
  } catch (const std::length_error&) {
    return Unexpected(Error::json_too_large);
  } catch (const std::bad_alloc&) {
    return Unexpected(Error::internal);
  }
  if (auto own = parser.handler().error()) return Unexpected(*own);
  if (ec == json::error::too_deep) return Unexpected(Error::json_too_deep);
  if (ec || used != text.size()) return Unexpected(Error::json_syntax);
  return parser.handler().take_root();
}

const json::value* member(const json::object& obj, std::string_view key) {
  return obj.if_contains(json::string_view(key.data(), key.size()));
}

std::optional<std::string_view> string_member(const json::object& obj, std::string_view key) {
  const json::value* v = member(obj, key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return as_view(v->get_string());
}

std::optional<std::int64_t> int_member(const json::object& obj, std::string_view key) {
  const json::value* v = member(obj, key);
  if (v == nullptr || !v->is_int64()) return std::nullopt;
  return v->get_int64();
}

std::string_view as_view(const json::string& s) { return {s.data(), s.size()}; }

void json_append_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run = 0;  // start of the bytes not yet copied, which need no escape
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

}  // namespace dynaseal
