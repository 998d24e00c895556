#include "core/toml_reader.hpp"

#include <algorithm>
#include <charconv>

namespace dynaseal {

void TomlReader::only(std::initializer_list<std::string_view> known) const {
  for (const auto& [key, node] : table_) {
    if (std::find(known.begin(), known.end(), key.str()) == known.end()) {
      fail(key.str(), "unknown key");
    }
  }
}

std::string TomlReader::string(std::string_view key, std::string fallback) const {
  const toml::node* n = table_.get(key);
  if (n == nullptr) return fallback;
  if (!n->is_string()) fail(key, "expected a string");
  return n->as_string()->get();
}

std::string TomlReader::required(std::string_view key) const {
  if (table_.get(key) == nullptr) fail(key, "is required");
  std::string s = string(key, "");
  if (s.empty()) fail(key, "must not be empty");
  return s;
}

std::int64_t TomlReader::integer(std::string_view key, std::int64_t fallback, std::int64_t min,
                                 std::int64_t max) const {
  const toml::node* n = table_.get(key);
  if (n == nullptr) return fallback;
  if (!n->is_integer()) fail(key, "expected an integer");
  const std::int64_t v = n->as_integer()->get();
  if (v < min || v > max) {
    fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
  return v;
}

std::chrono::milliseconds TomlReader::seconds(std::string_view key,
                                              std::chrono::milliseconds fallback) const {
  return std::chrono::milliseconds(integer(key, fallback.count() / 1000, 1, 86400) * 1000);
}

bool TomlReader::boolean(std::string_view key, bool fallback) const {
  const toml::node* n = table_.get(key);
  if (n == nullptr) return fallback;
  if (!n->is_boolean()) fail(key, "expected true or false");
  return n->as_boolean()->get();
}

std::vector<std::string> TomlReader::strings(std::string_view key) const {
  const toml::node* n = table_.get(key);
  if (n == nullptr || !n->is_array()) fail(key, "expected an array of strings");
  std::vector<std::string> out;
  for (const toml::node& e : *n->as_array()) {
    if (!e.is_string() || e.as_string()->get().empty()) fail(key, "expected non-empty strings");
    out.push_back(e.as_string()->get());
  }
  return out;
}

const toml::table* TomlReader::table(std::string_view key) const {
  const toml::node* n = table_.get(key);
  if (n == nullptr) return nullptr;
  if (!n->is_table()) fail(key, "expected a table");
  return n->as_table();
}

const toml::array* TomlReader::tables(std::string_view key) const {
  const toml::node* n = table_.get(key);
  if (n == nullptr) return nullptr;
  if (!n->is_array_of_tables()) fail(key, "expected [[" + std::string(key) + "]] tables");
  return n->as_array();
}

void TomlReader::fail(std::string_view key, std::string_view problem) const {
  throw ConfigError((where_.empty() ? "" : where_ + ".") + std::string(key) + ": " +
                    std::string(problem));
}

std::pair<std::string, std::uint16_t> parse_listen(std::string_view text, std::string_view key) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    throw ConfigError(std::string(key) + ": expected host:port");
  }
  std::string host(text.substr(0, colon));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
    throw ConfigError(std::string(key) + ": invalid port in " + std::string(text));
  }
  return {host, static_cast<std::uint16_t>(port)};
}

toml::table parse_toml(std::string_view text) {
  try {
    return toml::parse(text);
  } catch (const toml::parse_error& e) {
    throw ConfigError("line " + std::to_string(e.source().begin.line) + ": " +
                      std::string(e.description()));
  }
}

}  // namespace dynaseal
