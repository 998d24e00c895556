#include "backend/config.hpp"

#include <algorithm>
#include <charconv>
#include <set>

#include <toml++/toml.h>

#include "core/claims.hpp"
#include "net/http_client.hpp"
#include "store/key_file.hpp"
#include "store/sqlite.hpp"

namespace dynaseal::backend {
namespace {

constexpr std::int64_t kMaxTokens = 1'000'000'000;
constexpr std::int64_t kMaxDailyTokens = 1'000'000'000'000'000;
constexpr std::int64_t kMaxPriceMicros = 1'000'000'000'000'000;  // 10^9 units per 1k tokens

// Typed access to one TOML table, naming `where` in every error (as the server's reader does).
class Reader {
 public:
  Reader(const toml::table& table, std::string where) : table_(table), where_(std::move(where)) {}

  void only(std::initializer_list<std::string_view> known) const {
    for (const auto& [key, node] : table_) {
      if (std::find(known.begin(), known.end(), key.str()) == known.end()) {
        fail(key.str(), "unknown key");
      }
    }
  }

  std::string string(std::string_view key, std::string fallback) const {
    const toml::node* n = table_.get(key);
    if (n == nullptr) return fallback;
    if (!n->is_string()) fail(key, "expected a string");
    return n->as_string()->get();
  }

  std::string required(std::string_view key) const {
    if (table_.get(key) == nullptr) fail(key, "is required");
    std::string s = string(key, "");
    if (s.empty()) fail(key, "must not be empty");
    return s;
  }

  std::int64_t integer(std::string_view key, std::int64_t fallback, std::int64_t min,
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

  bool boolean(std::string_view key, bool fallback) const {
    const toml::node* n = table_.get(key);
    if (n == nullptr) return fallback;
    if (!n->is_boolean()) fail(key, "expected true or false");
    return n->as_boolean()->get();
  }

  // A price: a decimal string ("0.0015") or an integer number of units; floats are refused
  // because a binary fraction cannot hold most decimal prices exactly.
  std::int64_t money(std::string_view key) const {
    const toml::node* n = table_.get(key);
    if (n == nullptr) return 0;
    std::optional<std::int64_t> micros;
    if (n->is_integer()) {
      micros = parse_money(std::to_string(n->as_integer()->get()));
    } else if (n->is_string()) {
      micros = parse_money(n->as_string()->get());
    } else {
      fail(key, "expected a decimal string such as \"0.0015\" (floats are not exact)");
    }
    if (!micros || *micros > kMaxPriceMicros) {
      fail(key, "expected a non-negative amount with at most 6 decimals, at most 10^9");
    }
    return *micros;
  }

  std::vector<std::string> strings(std::string_view key) const {
    const toml::node* n = table_.get(key);
    if (n == nullptr || !n->is_array()) fail(key, "expected an array of strings");
    std::vector<std::string> out;
    for (const toml::node& e : *n->as_array()) {
      if (!e.is_string() || e.as_string()->get().empty()) fail(key, "expected non-empty strings");
      out.push_back(e.as_string()->get());
    }
    return out;
  }

  const toml::table* table(std::string_view key) const {
    const toml::node* n = table_.get(key);
    if (n == nullptr) return nullptr;
    if (!n->is_table()) fail(key, "expected a table");
    return n->as_table();
  }

  const toml::array* tables(std::string_view key) const {
    const toml::node* n = table_.get(key);
    if (n == nullptr) return nullptr;
    if (!n->is_array_of_tables()) fail(key, "expected [[" + std::string(key) + "]] tables");
    return n->as_array();
  }

  [[noreturn]] void fail(std::string_view key, std::string_view problem) const {
    throw ConfigError((where_.empty() ? "" : where_ + ".") + std::string(key) + ": " +
                      std::string(problem));
  }

 private:
  const toml::table& table_;
  std::string where_;
};

std::filesystem::path resolve(const std::filesystem::path& base, const std::string& p) {
  const std::filesystem::path path(p);
  return path.is_absolute() ? path : base / path;
}

// "host:port" or "[v6]:port".
std::pair<std::string, std::uint16_t> parse_listen(const Reader& r, std::string_view text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) r.fail("listen", "expected host:port");
  std::string host(text.substr(0, colon));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
    r.fail("listen", "invalid port in " + std::string(text));
  }
  return {host, static_cast<std::uint16_t>(port)};
}

std::map<std::string, ModelPrice, std::less<>> read_prices(const Reader& plan,
                                                           const std::string& where) {
  std::map<std::string, ModelPrice, std::less<>> prices;
  const toml::table* table = plan.table("prices");
  if (table == nullptr) return prices;
  for (const auto& [model, node] : *table) {
    if (!node.is_table()) plan.fail("prices." + std::string(model.str()), "expected a table");
    Reader r(*node.as_table(), where + ".prices." + std::string(model.str()));
    r.only({"prompt_per_1k", "completion_per_1k"});
    prices[std::string(model.str())] = {.prompt_per_1k = r.money("prompt_per_1k"),
                                        .completion_per_1k = r.money("completion_per_1k")};
  }
  return prices;
}

Plan read_plan(const toml::table& t, std::size_t index) {
  Reader r(t, "plan[" + std::to_string(index) + "]");
  r.only({"name", "models", "max_tokens", "uses", "key_ttl", "mints_per_minute", "daily_tokens",
          "key_budget", "prepaid", "prices"});
  Plan p;
  p.name = r.required("name");
  p.models = r.strings("models");
  if (p.models.empty()) r.fail("models", "must name at least one model");
  for (const std::string& m : p.models) {
    if (m.size() > kMaxModelBytes) r.fail("models", "a model name is longer than 256 bytes");
  }
  p.max_tokens = r.integer("max_tokens", p.max_tokens, 1, kMaxTokens);
  p.uses = r.integer("uses", p.uses, 1, 1'000'000);
  p.key_ttl = r.integer("key_ttl", p.key_ttl, 1, 7 * 86400);
  p.mints_per_minute = r.integer("mints_per_minute", p.mints_per_minute, 1, 1'000'000);
  p.daily_tokens = r.integer("daily_tokens", p.daily_tokens, 0, kMaxDailyTokens);
  p.key_budget = r.integer("key_budget", p.key_budget, 0, kMaxDailyTokens);
  p.prepaid = r.boolean("prepaid", false);
  p.prices = read_prices(r, "plan[" + std::to_string(index) + "]");
  for (const auto& [model, price] : p.prices) {
    if (!p.allows_model(model)) r.fail("prices." + model, "the plan does not allow this model");
  }
  for (const std::string& m : p.models) {
    if (p.prepaid && !p.prices.contains(m)) r.fail("prices", "prepaid: model " + m + " unpriced");
  }
  return p;
}

void read_server(const Reader& top, BackendConfig& c) {
  const toml::table* t = top.table("server");
  if (t == nullptr) return;
  Reader r(*t, "server");
  r.only({"id", "url"});
  c.server.id = r.string("id", c.server.id);
  if (c.server.id.empty() || c.server.id.size() > kMaxIssBytes) r.fail("id", "must be 1-256 bytes");
  c.server.url = r.string("url", c.server.url);
  if (!net::parse_upstream_url(c.server.url)) r.fail("url", "expected an http(s):// URL");
}

void read_db(const Reader& r, BackendConfig& c, const std::filesystem::path& base) {
  c.db = r.string("db", c.db);
  if (c.db.starts_with("postgresql://") || c.db.starts_with("postgres://")) {
    r.fail("db", "PostgreSQL is not supported yet by this build; use sqlite:PATH");
  }
  auto path = store::sqlite_path(c.db, base);
  if (!path) r.fail("db", "expected sqlite:PATH");
  c.db_path = *path;
}

void read_top(const Reader& r, BackendConfig& c, const std::filesystem::path& base) {
  r.only({"id", "listen", "public_url", "signing_key", "db", "threads", "max_body_bytes",
          "callback_tolerance", "settle_grace", "access_log", "server", "plan"});
  c.id = r.required("id");
  if (c.id.size() > kMaxIssBytes) r.fail("id", "longer than 256 bytes");
  const std::string listen = r.string("listen", "127.0.0.1:9000");
  std::tie(c.http.host, c.http.port) = parse_listen(r, listen);
  c.public_url = r.string("public_url", c.http.port == 0 ? "" : "http://" + listen);
  while (c.public_url.ends_with('/')) c.public_url.pop_back();
  if (!c.public_url.empty() && !net::parse_upstream_url(c.public_url)) {
    r.fail("public_url", "expected an http(s):// URL");
  }
  c.signing_key = resolve(base, r.string("signing_key", c.id + ".jwk"));
  read_db(r, c, base);
  c.http.threads = static_cast<unsigned>(r.integer("threads", 0, 0, 1024));
  c.http.max_body_bytes =
      static_cast<std::size_t>(r.integer("max_body_bytes", 1 << 20, 1024, 64 << 20));
  c.callback_tolerance = r.integer("callback_tolerance", c.callback_tolerance, 1, 3600);
  c.settle_grace = r.integer("settle_grace", c.settle_grace, 0, 7 * 86400);
  c.access_log = r.boolean("access_log", true);
  read_server(r, c);
}

}  // namespace

bool Plan::allows_model(std::string_view model) const {
  return std::find(models.begin(), models.end(), model) != models.end();
}

ModelPrice Plan::price(std::string_view model) const {
  auto it = prices.find(model);
  return it == prices.end() ? ModelPrice{} : it->second;
}

const Plan* BackendConfig::plan(std::string_view name) const {
  for (const Plan& p : plans) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

BackendConfig parse_backend_config(std::string_view text, const std::filesystem::path& base_dir) {
  toml::table table;
  try {
    table = toml::parse(text);
  } catch (const toml::parse_error& e) {
    throw ConfigError("line " + std::to_string(e.source().begin.line) + ": " +
                      std::string(e.description()));
  }
  BackendConfig c;
  const Reader top(table, "");
  read_top(top, c, base_dir);
  const toml::array* plans = top.tables("plan");
  if (plans == nullptr || plans->empty()) top.fail("plan", "at least one [[plan]] is required");
  std::set<std::string> names;
  for (std::size_t i = 0; i < plans->size(); ++i) {
    Plan p = read_plan(*plans->get(i)->as_table(), i);
    if (!names.insert(p.name).second) top.fail("plan", "two plans named " + p.name);
    c.plans.push_back(std::move(p));
  }
  return c;
}

BackendConfig load_backend_config(const std::filesystem::path& file) {
  auto text = store::read_small_file(file, 1 << 20);
  if (!text) throw ConfigError("cannot read " + file.string());
  return parse_backend_config(*text, std::filesystem::absolute(file).parent_path());
}

}  // namespace dynaseal::backend
