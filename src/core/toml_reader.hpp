// Strict, typed reading of TOML configuration (the server's and the backend's, DESIGN §11):
// unknown keys, wrong types and values out of range are errors that name the key, so a typo
// never falls back to a default silently.
//
//   const TomlReader r(table, "upstream[0]");
//   r.only({"name", "url"});                      // anything else: ConfigError
//   std::string url = r.required("url");          // "upstream[0].url: is required"
//   std::int64_t n = r.integer("threads", 0, 0, 1024);
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <toml++/toml.h>

namespace dynaseal {

// A configuration that cannot be used; what() names the key and the problem.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Typed access to one TOML table; `where` ("", "outbox", "plan[2]") prefixes every error.
class TomlReader {
 public:
  TomlReader(const toml::table& table, std::string where)
      : table_(table), where_(std::move(where)) {}

  void only(std::initializer_list<std::string_view> known) const;
  const toml::node* get(std::string_view key) const { return table_.get(key); }

  std::string string(std::string_view key, std::string fallback) const;
  std::string required(std::string_view key) const;  // present and not empty
  std::int64_t integer(std::string_view key, std::int64_t fallback, std::int64_t min,
                       std::int64_t max) const;
  // Whole seconds in [1, 86400], as milliseconds.
  std::chrono::milliseconds seconds(std::string_view key, std::chrono::milliseconds fallback) const;
  bool boolean(std::string_view key, bool fallback) const;
  std::vector<std::string> strings(std::string_view key) const;  // required, non-empty items
  const toml::table* table(std::string_view key) const;          // nullptr when absent
  const toml::array* tables(std::string_view key) const;         // [[key]]; nullptr when absent

  [[noreturn]] void fail(std::string_view key, std::string_view problem) const;

 private:
  const toml::table& table_;
  std::string where_;
};

// "host:port" or "[v6]:port" -> host and port; ConfigError naming `key` otherwise.
std::pair<std::string, std::uint16_t> parse_listen(std::string_view text, std::string_view key);

// Parses TOML text; ConfigError with the line of a syntax error.
toml::table parse_toml(std::string_view text);

}  // namespace dynaseal
