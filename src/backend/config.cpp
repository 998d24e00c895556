#include "backend/config.hpp"

#include <algorithm>
#include <charconv>
#include <set>

#include <toml++/toml.h>

#include "core/claims.hpp"
#include "core/toml_reader.hpp"
#include "net/http_client.hpp"
#include "store/key_file.hpp"
#include "store/postgres_url.hpp"
#include "store/sqlite.hpp"

namespace dynaseal::backend {
namespace {

constexpr std::int64_t kMaxTokens = 1'000'000'000;
constexpr std::int64_t kMaxDailyTokens = 1'000'000'000'000'000;
constexpr std::int64_t kMaxPriceMicros = 1'000'000'000'000'000;  // 10^9 units per 1k tokens

// A price: a decimal string ("0.0015") or an integer number of units; floats are refused
// because a binary fraction cannot hold most decimal prices exactly.
std::int64_t read_money(const TomlReader& r, std::string_view key) {
  const toml::node* n = r.get(key);
  if (n == nullptr) return 0;
  std::optional<std::int64_t> micros;
  if (n->is_integer()) {
    micros = parse_money(std::to_string(n->as_integer()->get()));
  } else if (n->is_string()) {
    micros = parse_money(n->as_string()->get());
  } else {
    r.fail(key, "expected a decimal string such as \"0.0015\" (floats are not exact)");
  }
  if (!micros || *micros > kMaxPriceMicros) {
    r.fail(key, "expected a non-negative amount with at most 6 decimals, at most 10^9");
  }
  return *micros;
}

using Reader = TomlReader;

std::filesystem::path resolve(const std::filesystem::path& base, const std::string& p) {
  const std::filesystem::path path(p);
  return path.is_absolute() ? path : base / path;
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
    prices[std::string(model.str())] = {.prompt_per_1k = read_money(r, "prompt_per_1k"),
                                        .completion_per_1k = read_money(r, "completion_per_1k")};
  }
  return prices;
}

Plan read_plan(const toml::table& t, std::size_t index) {
  Reader r(t, "plan[" + std::to_string(index) + "]");
  r.only({"name", "models", "max_tokens", "uses", "key_ttl", "mints_per_minute", "daily_tokens",
          "key_budget", "prompt_tokens", "prepaid", "prices"});
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
  p.prompt_tokens = r.integer("prompt_tokens", p.prompt_tokens, 0, kMaxDailyTokens);
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
  if (c.db.starts_with("postgres")) {
    // The message never contains the password (postgres_url.hpp).
    if (auto bad = store::check_postgres_url(c.db)) r.fail("db", *bad);
    c.db_path.clear();
    return;
  }
  auto path = store::sqlite_path(c.db, base);
  if (!path) r.fail("db", "expected sqlite:PATH or postgresql://...");
  c.db_path = *path;
}

void read_top(const Reader& r, BackendConfig& c, const std::filesystem::path& base) {
  r.only({"id", "listen", "public_url", "signing_key", "db", "threads", "max_body_bytes",
          "callback_tolerance", "settle_grace", "access_log", "server", "plan"});
  c.id = r.required("id");
  if (!valid_backend_id(c.id)) r.fail("id", "expected 1-128 characters of [A-Za-z0-9._-]");
  const std::string listen = r.string("listen", "127.0.0.1:9000");
  std::tie(c.http.host, c.http.port) = parse_listen(listen, "listen");
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
  const toml::table table = parse_toml(text);
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
