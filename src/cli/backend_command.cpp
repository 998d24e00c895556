// dynaseal backend --config FILE [user add|user list|user credit|plan|usage|register|rotate-key]
// (DESIGN §6, §11; docs/backend.md). Without a subcommand it runs the backend until SIGTERM or
// SIGINT; the subcommands work on the same configuration and database, also while it runs.

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <iostream>
#include <memory>

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "backend/backend_app.hpp"
#include "backend/registration.hpp"
#include "backend/service.hpp"
#include "backend/store.hpp"
#include "backend/user_token.hpp"
#include "cli/app.hpp"
#include "core/claims.hpp"
#include "store/key_file.hpp"

namespace dynaseal::cli {
namespace {

using backend::BackendConfig;
using backend::BackendStore;

struct BackendArgs {
  std::string config;
  unsigned grace_seconds = 10;
  std::string name, plan, credit, user, since, server_url, admin_token_file, out;
  bool json = false, finish = false;
};

std::int64_t now_s() { return backend::system_unix_ms() / 1000; }

// The configuration, or an exit code after printing why it is unusable.
std::optional<BackendConfig> load_config(const std::string& file, int& exit_code) {
  try {
    return backend::load_backend_config(file);
  } catch (const backend::ConfigError& e) {
    exit_code = fail(Error::io_error, std::string("configuration: ") + e.what());
    return std::nullopt;
  }
}

std::unique_ptr<BackendStore> open_store(const BackendConfig& c, int& exit_code) {
  std::string why;
  auto store = backend::open_backend_store(c.db, c.db_path, &why);
  if (!store) {
    exit_code = fail(store.error(), why.empty() ? "cannot open " + c.db_path.string() : why);
    return nullptr;
  }
  return std::move(*store);
}

std::optional<std::string> read_admin_token(const std::string& file, int& exit_code) {
  auto text = store::read_secret_file(file, 4096);
  if (!text) {
    exit_code = text.error() == Error::key_file_unsafe
                    ? fail(text.error(), "the admin token file " + file +
                                             " can be read or written by group or others: "
                                             "chmod 600 it")
                    : fail(Error::io_error, "cannot read the admin token file " + file);
    return std::nullopt;
  }
  std::string token = *text;
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  return token;
}

// Prints rows as left-aligned columns separated by two spaces.
void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << '\n';
  }
}

std::string join(const std::vector<std::string>& items, std::string_view sep = ",") {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : std::string(sep)) + item;
  return out;
}

// A user name is the `sub` of the user's keys: printable ASCII without spaces, 1-256 bytes.
bool valid_user_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxSubBytes) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// ---- The service ----------------------------------------------------------------------------

int serve(const BackendArgs& args) {
  // First of all, so that every thread started later inherits the blocked signals.
  StopSignals signals;
  spdlog::init_thread_pool(16384, 1);
  spdlog::set_default_logger(std::make_shared<spdlog::async_logger>(
      "dynaseal", std::make_shared<spdlog::sinks::stderr_sink_mt>(), spdlog::thread_pool(),
      spdlog::async_overflow_policy::block));
  int exit_code = kExitOk;
  auto config = load_config(args.config, exit_code);
  if (!config) return exit_code;
  std::unique_ptr<backend::BackendApp> app;
  try {
    app = std::make_unique<backend::BackendApp>(std::move(*config));
  } catch (const backend::ConfigError& e) {
    return fail(Error::io_error, std::string("configuration: ") + e.what());
  } catch (const std::exception& e) {
    return fail(Error::io_error, std::string("cannot start: ") + e.what());
  }
  app->start();
  std::cout << "backend listening on port " << app->port() << std::endl;
  const int received = signals.wait();
  spdlog::info("signal {}: stopping (grace {} s)", received, args.grace_seconds);
  app->stop(std::chrono::seconds(args.grace_seconds));
  app->wait();
  spdlog::shutdown();
  return kExitOk;
}

// ---- Users and plans ------------------------------------------------------------------------

int user_add(const BackendArgs& args) {
  int exit_code = kExitOk;
  auto config = load_config(args.config, exit_code);
  if (!config) return exit_code;
  if (!valid_user_name(args.name)) {
    return fail(Error::body_malformed, "a user name is 1-256 printable characters, no spaces");
  }
  if (config->plan(args.plan) == nullptr) {
    return fail(Error::not_found, "no plan '" + args.plan + "' in " + args.config);
  }
  auto store = open_store(*config, exit_code);
  if (!store) return exit_code;
  const std::string token = backend::new_user_token();
  // --out: the secret goes into a new 0600 file before the user exists, so a file that cannot be
  // written never leaves a user whose token nobody has.
  if (!args.out.empty() && !store::write_new_secret_file(args.out, token + "\n")) {
    return fail(Error::io_error, "cannot create " + args.out + " (it must not exist yet)");
  }
  auto added = store->add_user({.name = args.name,
                                .plan = args.plan,
                                .token_sha256 = backend::token_sha256(token),
                                .credit_micros = backend::parse_money(args.credit).value_or(0),
                                .now = now_s()});
  if (!added) {
    if (!args.out.empty()) std::filesystem::remove(args.out);
    if (added.error() == Error::conflict) return fail(Error::conflict, "user exists: " + args.name);
    return fail(added.error());
  }
  if (!args.out.empty()) {
    std::cerr << "user " << args.name << " added (plan " << args.plan << "); its token is in "
              << args.out << " (mode 0600)\n";
    return kExitOk;
  }
  std::cout << token << std::endl;
  std::cerr << "user " << args.name << " added (plan " << args.plan
            << "); the token above is shown only once\n";
  return kExitOk;
}

int user_list(const BackendArgs& args) {
  int exit_code = kExitOk;
  auto config = load_config(args.config, exit_code);
  if (!config) return exit_code;
  auto store = open_store(*config, exit_code);
  if (!store) return exit_code;
  auto users = store->list_users(backend::utc_day(now_s()));
  if (!users) return fail(users.error());
  std::vector<std::vector<std::string>> rows{{"NAME", "PLAN", "CREDIT", "TOKENS_TODAY", "CREATED"}};
  for (const backend::UserSummary& u : *users) {
    rows.push_back({u.user.name, u.user.plan, backend::format_money(u.user.credit_micros),
                    std::to_string(u.tokens_today), backend::format_rfc3339(u.user.created_at)});
  }
  print_table(rows);
  return kExitOk;
}

int user_credit(const BackendArgs& args) {
  int exit_code = kExitOk;
  auto config = load_config(args.config, exit_code);
  if (!config) return exit_code;
  auto store = open_store(*config, exit_code);
  if (!store) return exit_code;
  const auto delta = backend::parse_money(args.credit, true);
  auto balance = store->add_credit(args.name, delta.value_or(0), now_s());
  if (!balance) {
    if (balance.error() == Error::not_found) return fail(Error::not_found, "no user " + args.name);
    return fail(balance.error());
  }
  std::cout << args.name << " credit " << backend::format_money(*balance) << '\n';
  return kExitOk;
}

int plans(const BackendArgs& args) {
  int exit_code = kExitOk;
  auto config = load_config(args.config, exit_code);
  if (!config) return exit_code;
  std::vector<std::vector<std::string>> rows{{"NAME", "MODELS", "MAX_TOKENS", "USES", "KEY_TTL",
                                              "MINTS/MIN", "DAILY_TOKENS", "KEY_BUDGET",
                                              "PREPAID"}};
  std::vector<std::string> prices;
  for (const backend::Plan& p : config->plans) {
    rows.push_back({p.name, join(p.models), std::to_string(p.max_tokens), std::to_string(p.uses),
                    std::to_string(p.key_ttl), std::to_string(p.mints_per_minute),
                    p.daily_tokens == 0 ? "unlimited" : std::to_string(p.daily_tokens),
                    p.key_budget == 0 ? "max_tokens*uses" : std::to_string(p.key_budget),
                    p.prepaid ? "yes" : "no"});
    for (const auto& [model, price] : p.prices) {
      prices.push_back(p.name + " " + model + ": prompt " +
                       backend::format_money(price.prompt_per_1k) + " / 1k tokens, completion " +
                       backend::format_money(price.completion_per_1k) + " / 1k tokens");
    }
  }
  print_table(rows);
  for (const std::string& line : prices) std::cout << "price " << line << '\n';
  return kExitOk;
}

// ---- Usage ----------------------------------------------------------------------------------

// RFC 3339, YYYY-MM-DD (UTC midnight) or unix seconds.
std::optional<std::int64_t> parse_since(const std::string& text) {
  if (auto t = backend::parse_rfc3339(text)) return t;
  if (auto t = backend::parse_rfc3339(text + "T00:00:00Z"); t && text.size() == 10) return t;
  std::int64_t seconds = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec == std::errc() && end == text.data() + text.size() && seconds >= 0) return seconds;
  return std::nullopt;
}

void print_events(const std::vector<backend::StoredEvent>& events, bool json) {
  if (json) {
    for (const auto& e : events) std::cout << e.body << '\n';
    return;
  }
  std::vector<std::vector<std::string>> rows{{"FINISHED", "USER", "MODEL", "STATUS", "PROMPT",
                                              "COMPLETION", "TOTAL", "COST", "WEBHOOK_ID"}};
  for (const auto& e : events) {
    rows.push_back({e.finished_at, e.user.empty() ? "-" : e.user, e.model, e.status,
                    std::to_string(e.prompt_tokens), std::to_string(e.completion_tokens),
                    std::to_string(e.total_tokens), backend::format_money(e.cost_micros),
                    e.webhook_id});
  }
  print_table(rows);
}

int usage(const BackendArgs& args) {
  int exit_code = kExitOk;
  auto config = load_config(args.config, exit_code);
  if (!config) return exit_code;
  backend::EventQuery query;
  if (!args.user.empty()) query.user = args.user;
  if (!args.since.empty()) query.since = parse_since(args.since);
  auto store = open_store(*config, exit_code);
  if (!store) return exit_code;
  auto events = store->events(query);
  if (!events) return fail(events.error());
  print_events(*events, args.json);
  std::cout << std::flush;
  return kExitOk;
}

// ---- Registration and rotation --------------------------------------------------------------

int register_backend(const BackendArgs& args) {
  int exit_code = kExitOk;
  auto config = load_config(args.config, exit_code);
  if (!config) return exit_code;
  auto token = read_admin_token(args.admin_token_file, exit_code);
  if (!token) return exit_code;
  auto store = open_store(*config, exit_code);
  if (!store) return exit_code;
  const std::string url = args.server_url.empty() ? config->server.url : args.server_url;
  std::string why;
  auto done = backend::register_with_server(*config, *store, url, *token, now_s(), why);
  if (!done) return fail(done.error(), why);
  std::cout << (done->updated ? "updated " : "registered ") << config->id << " at "
            << done->server_id << " (" << url << "): signing keys " << join(done->backend_kids)
            << "; pinned server keys " << join(done->server_kids) << '\n';
  return kExitOk;
}

void print_retired(const backend::RetireReport& r) {
  for (const std::string& kid : r.retired) std::cout << "retired key " << kid << '\n';
  for (const auto& [kid, due] : r.pending) {
    std::cout << "key " << kid << " retiring: may be retired after " << backend::format_rfc3339(due)
              << " (rotate-key --finish)\n";
  }
}

int rotate_key(const BackendArgs& args) {
  int exit_code = kExitOk;
  auto config = load_config(args.config, exit_code);
  if (!config) return exit_code;
  auto token = read_admin_token(args.admin_token_file, exit_code);
  if (!token) return exit_code;
  auto store = open_store(*config, exit_code);
  if (!store) return exit_code;
  std::string why;
  if (args.finish) {
    auto done = backend::finish_rotation(*config, *store, *token, now_s(), why);
    if (!done) return fail(done.error(), why);
    print_retired(*done);
    return kExitOk;
  }
  auto done = backend::rotate_signing_key(*config, *store, *token, now_s(), why);
  if (!done) return fail(done.error(), why);
  print_retired(done->retire);
  std::cout << "new signing key " << done->new_kid << " registered and active\n"
            << "key " << done->old_kid << " retiring: may be retired after "
            << backend::format_rfc3339(done->old_due_at) << " (rotate-key --finish)\n";
  return kExitOk;
}

// ---- Command line ---------------------------------------------------------------------------

CLI::Validator money_check(bool allow_negative) {
  return CLI::Validator(
      [allow_negative](std::string& s) -> std::string {
        return backend::parse_money(s, allow_negative)
                   ? ""
                   : "expected an amount such as 12.50 (at most 6 decimals)";
      },
      "AMOUNT");
}

void add_user_commands(CLI::App& backend_cmd, std::shared_ptr<BackendArgs> a, int& exit_code) {
  auto* user = backend_cmd.add_subcommand("user", "Add, list and credit users")->fallthrough();
  user->require_subcommand(1);
  auto* add = user->add_subcommand(
      "add", "Add a user; prints its token once, alone on stdout (or writes it to --out)");
  add->fallthrough();
  add->add_option("NAME", a->name, "user name: the sub of the user's keys")->required();
  add->add_option("--plan", a->plan, "plan name from the configuration")->required();
  add->add_option("--credit", a->credit, "initial prepaid credit, e.g. 12.50")
      ->check(money_check(false));
  add->add_option("--out", a->out,
                  "write the token to this new file (mode 0600) instead of stdout");
  add->callback([&exit_code, a] { exit_code = user_add(*a); });
  auto* list = user->add_subcommand("list", "List users (never their tokens)")->fallthrough();
  list->callback([&exit_code, a] { exit_code = user_list(*a); });
  auto* credit = user->add_subcommand("credit", "Add to (or, negative, take from) a balance");
  credit->fallthrough();
  credit->add_option("NAME", a->name, "user name")->required();
  credit->add_option("AMOUNT", a->credit, "amount, e.g. 10 or -2.50")
      ->required()
      ->check(money_check(true));
  credit->callback([&exit_code, a] { exit_code = user_credit(*a); });
}

void add_admin_commands(CLI::App& backend_cmd, std::shared_ptr<BackendArgs> a, int& exit_code) {
  auto* reg = backend_cmd.add_subcommand("register", "Pin a server's identity and register there");
  reg->fallthrough();
  reg->add_option("--server", a->server_url, "server URL (default: [server] url)");
  reg->add_option("--admin-token-file", a->admin_token_file, "the server's admin token file")
      ->required();
  reg->callback([&exit_code, a] { exit_code = register_backend(*a); });
  reg->footer(
      "Checks that the server's id is [server] id, pins its identity keys (they verify usage\n"
      "callbacks), then registers this backend's keys and callback URL (public_url +\n"
      "/v1/callbacks/usage). Running it again updates the registration.");
  auto* rot = backend_cmd.add_subcommand("rotate-key", "Rotate the signing key");
  rot->fallthrough();
  rot->add_option("--admin-token-file", a->admin_token_file, "the server's admin token file")
      ->required();
  rot->add_flag("--finish", a->finish, "only retire old keys whose last keys have expired");
  rot->callback([&exit_code, a] { exit_code = rotate_key(*a); });
  rot->footer(
      "Registers a new key at the server before it signs anything, then swaps the signing_key\n"
      "file (a running backend signs with the new key within a second). The old key stays\n"
      "registered until every key it signed has expired; --finish (or the next rotation)\n"
      "retires it then. See docs/backend.md.");
}

// Every subcommand says where its configuration comes from, in its own --help.
void note_config(CLI::App& cmd) {
  for (CLI::App* sub : cmd.get_subcommands([](CLI::App*) { return true; })) {
    const std::string footer = sub->get_footer();
    sub->footer((footer.empty() ? "" : footer + "\n") +
                "Reads the configuration given with --config FILE, before or after the "
                "subcommand.");
    note_config(*sub);
  }
}

}  // namespace

void add_backend_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<BackendArgs>();
  auto* cmd = app.add_subcommand("backend", "Run the business backend, or manage its users");
  cmd->add_option("--config", a->config, "configuration file (docs/backend.md)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--grace", a->grace_seconds, "seconds in-flight requests get on shutdown")
      ->capture_default_str()
      ->check(CLI::Range(0u, 3600u));
  cmd->require_subcommand(0, 1);
  add_user_commands(*cmd, a, exit_code);
  cmd->add_subcommand("plan", "List the plans of the configuration")
      ->fallthrough()
      ->callback([&exit_code, a] { exit_code = plans(*a); });
  auto* use = cmd->add_subcommand("usage", "Usage events as recorded")->fallthrough();
  use->add_option("--user", a->user, "only this user's events");
  use->add_option("--since", a->since, "finished at or after: RFC 3339, YYYY-MM-DD or unix s")
      ->check([](const std::string& s) { return parse_since(s) ? "" : "expected a time"; });
  use->add_flag("--json", a->json, "one event per line: the callback body as received");
  use->callback([&exit_code, a] { exit_code = usage(*a); });
  add_admin_commands(*cmd, a, exit_code);
  note_config(*cmd);
  cmd->callback([&exit_code, a, cmd] {
    if (cmd->get_subcommands().empty()) exit_code = serve(*a);
  });
  cmd->footer(
      "Without a subcommand: runs the backend until SIGTERM or SIGINT and prints\n"
      "'backend listening on port N' once it accepts connections. --config may stand before\n"
      "or after the subcommand.");
}

}  // namespace dynaseal::cli
