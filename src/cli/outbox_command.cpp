// dynaseal outbox stats|dead|replay --config server.toml: the running server's usage-callback
// outbox, through its admin API (docs/server.md). The server's address and admin token come
// from its configuration, so an operator needs nothing else.

#include <fstream>
#include <iostream>
#include <memory>
#include <variant>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "cli/app.hpp"
#include "net/http_call.hpp"
#include "server/config.hpp"
#include "store/key_file.hpp"

namespace dynaseal::cli {
namespace {

namespace json = boost::json;
namespace http = net::http;

struct OutboxArgs {
  std::string config;
  std::string server;  // overrides the address from the config (a server on port 0)
  std::size_t limit = 100;
  std::string iss;
  std::string webhook_id;
  bool json = false;
};

struct Admin {
  std::string url;
  std::string token;
};

// The admin endpoint of the server a config describes: its listen address (0.0.0.0 and :: are
// reached on loopback) and its admin token file.
Result<Admin> admin_of(const std::string& config_file, const std::string& server,
                       std::string* why) {
  try {
    const server::ServerConfig c = server::load_server_config(config_file);
    std::string host = c.http.host;
    if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
    if (host == "::") host = "::1";
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    auto token = store::read_secret_file(c.admin_token_file, 4096);
    if (!token) {
      *why = token.error() == Error::key_file_unsafe
                 ? "the admin token file " + c.admin_token_file.string() +
                       " can be read or written by group or others: chmod 600 it"
                 : "cannot read the admin token file " + c.admin_token_file.string();
      return Unexpected(token.error());
    }
    while (!token->empty() && std::isspace(static_cast<unsigned char>(token->back()))) {
      token->pop_back();
    }
    const std::string scheme = c.http.tls ? "https://" : "http://";
    if (!server.empty()) return Admin{server, *token};
    if (c.http.port == 0) {
      *why = "the config listens on port 0: name the server with --server URL";
      return Unexpected(Error::body_malformed);
    }
    return Admin{scheme + host + ":" + std::to_string(c.http.port), *token};
  } catch (const server::ConfigError& e) {
    *why = std::string("configuration: ") + e.what();
    return Unexpected(Error::io_error);
  }
}

// One admin call; the reply's JSON, or the exit code of a failure (already reported).
std::variant<json::value, int> call(const OutboxArgs& args, http::verb method,
                                    const std::string& target, std::string body = {}) {
  std::string why;
  auto admin = admin_of(args.config, args.server, &why);
  if (!admin) return fail(admin.error(), why);
  auto reply = net::http_call(admin->url, method, target, std::move(body), admin->token);
  if (!reply) return fail(reply.error(), "cannot reach the server at " + admin->url);
  if (!reply->ok()) {
    const std::string code = reply->error_code();
    return fail(reply->error(), "the server answered " + reply->describe() +
                                    (code == "admin_unauthorized" ? " (wrong admin token?)" : ""));
  }
  boost::system::error_code ec;
  json::value doc = json::parse(reply->body, ec);
  if (ec) return fail(Error::upstream_error, "the server's answer is not JSON");
  return doc;
}

int stats(const OutboxArgs& args) {
  auto r = call(args, http::verb::get, "/admin/v1/outbox");
  if (auto* code = std::get_if<int>(&r)) return *code;
  const json::value& doc = std::get<json::value>(r);
  if (args.json) {
    std::cout << json::serialize(doc) << '\n';
    return kExitOk;
  }
  const json::object& o = doc.as_object();
  for (const char* k : {"open", "pending", "delivered", "dead", "oldest_pending_at"}) {
    const json::value* v = o.if_contains(k);
    std::cout << k << ": " << (v == nullptr || v->is_null() ? "-" : json::serialize(*v)) << '\n';
  }
  return kExitOk;
}

int dead(const OutboxArgs& args) {
  auto r = call(args, http::verb::get, "/admin/v1/outbox/dead?limit=" + std::to_string(args.limit));
  if (auto* code = std::get_if<int>(&r)) return *code;
  const json::array& list = std::get<json::value>(r).at("dead").as_array();
  for (const json::value& d : list) {
    if (args.json) {
      std::cout << json::serialize(d) << '\n';
      continue;
    }
    const json::object& o = d.as_object();
    std::cout << o.at("died_at").as_string() << "  " << o.at("iss").as_string() << "  "
              << o.at("webhook_id").as_string() << "  attempts " << o.at("attempts").as_int64()
              << "  " << o.at("last_error").as_string() << '\n';
  }
  if (!args.json) std::cout << list.size() << " dead letter(s)\n";
  return kExitOk;
}

int replay(const OutboxArgs& args) {
  if (!args.webhook_id.empty() && args.iss.empty()) {
    return fail(Error::body_malformed, "--webhook-id needs --iss (webhook ids are per backend)");
  }
  json::object body;
  if (!args.iss.empty()) body["iss"] = args.iss;
  if (!args.webhook_id.empty()) body["webhook_id"] = args.webhook_id;
  auto r = call(args, http::verb::post, "/admin/v1/outbox/replay", json::serialize(body));
  if (auto* code = std::get_if<int>(&r)) return *code;
  std::cout << "replayed " << std::get<json::value>(r).at("replayed").as_int64() << '\n';
  return kExitOk;
}

}  // namespace

void add_outbox_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<OutboxArgs>();
  auto* cmd = app.add_subcommand(
      "outbox", "Inspect and replay a running server's usage-callback outbox (admin API)");
  cmd->add_option("--config", args->config, "the server's configuration file")->required();
  cmd->add_option("--server", args->server,
                  "the server's URL, when not the config's listen address");
  cmd->require_subcommand(1);
  cmd->footer(
      "Talks to the server named by --config (its listen address and admin token file).\n"
      "Exit 1 with error: <code>: <message> when the server cannot be reached or refuses.");
  auto* s = cmd->add_subcommand("stats", "Counts: open, pending, delivered, dead")->fallthrough();
  s->add_flag("--json", args->json, "the admin API's JSON as is");
  s->callback([args, &exit_code] { exit_code = stats(*args); });
  auto* d = cmd->add_subcommand("dead", "Dead letters, newest first")->fallthrough();
  d->add_option("--limit", args->limit, "at most this many (1-1000)")->check(CLI::Range(1, 1000));
  d->add_flag("--json", args->json, "one JSON object per line, with the event");
  d->callback([args, &exit_code] { exit_code = dead(*args); });
  auto* r = cmd->add_subcommand("replay", "Dead letters back to pending, due now")->fallthrough();
  r->add_option("--iss", args->iss, "only this backend's");
  r->add_option("--webhook-id", args->webhook_id, "only this event (needs --iss)");
  r->callback([args, &exit_code] { exit_code = replay(*args); });
}

}  // namespace dynaseal::cli
