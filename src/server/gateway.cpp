#include "server/gateway.hpp"

#include <boost/asio/this_coro.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include "core/crypto.hpp"
#include "core/dynamic_key.hpp"
#include "net/http_errors.hpp"

namespace dynaseal::server {

namespace http = net::http;
namespace json = boost::json;

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// GCC 12 miscompiles braced JSON initializers inside coroutines; documents are built here.
namespace {

std::string models_json(const std::vector<std::string>& models, const Router& router) {
  json::array data;
  for (const std::string& model : models) {
    const UpstreamConfig* up = router.route(model);
    if (up == nullptr) continue;
    data.push_back(
        json::object{{"id", model}, {"object", "model"}, {"created", 0}, {"owned_by", up->name}});
  }
  return json::serialize(json::object{{"object", "list"}, {"data", std::move(data)}});
}

std::string ready_json(bool all, bool store_ok, json::object upstreams) {
  return json::serialize(json::object{{"status", all ? "ready" : "not_ready"},
                                      {"store", store_ok},
                                      {"upstreams", std::move(upstreams)}});
}

}  // namespace

Gateway::Gateway(GatewayContext context)
    : ctx_(std::move(context)),
      probes_(std::make_unique<UpstreamProbe[]>(ctx_.router.upstreams().size())),
      refusals_(ctx_.config.refusal_log_per_second) {}

void Gateway::flush_logs() { refusals_.flush(); }

net::asio::awaitable<void> Gateway::handle(net::Exchange& ex) {
  const net::Request& req = ex.request();
  const std::string_view target = req.target();
  const std::string_view path = target.substr(0, target.find('?'));
  const bool get = req.method() == http::verb::get, post = req.method() == http::verb::post;
  Outcome outcome;
  ++ctx_.metrics.in_flight();
  if (path == "/v1/chat/completions" || path == "/v1/completions") {
    const Endpoint endpoint =
        path == "/v1/completions" ? Endpoint::completions : Endpoint::chat_completions;
    outcome.route =
        endpoint == Endpoint::completions ? Route::completions : Route::chat_completions;
    if (post) {
      co_await completions(ex, endpoint, outcome);
    } else {
      co_await reject(ex, outcome, Error::method_not_allowed);
    }
  } else if (path == "/v1/models" && get) {
    outcome.route = Route::models;
    co_await models(ex, outcome);
  } else if (path.starts_with("/admin/")) {
    outcome.route = Route::admin;
    co_await admin(ex, outcome);
  } else if (path == "/.well-known/dynaseal" && get) {
    co_await reply(ex, outcome, net::make_response(req, http::status::ok, ctx_.well_known));
  } else if (path == "/healthz" && get) {
    co_await reply(ex, outcome, net::make_response(req, http::status::ok, R"({"status":"ok"})"));
  } else if (path == "/readyz" && get) {
    co_await ready(ex, outcome);
  } else if (path == "/metrics" && get) {
    co_await reply(
        ex, outcome,
        net::make_response(req, http::status::ok, ctx_.metrics.render(ctx_.open_connections()),
                           "text/plain; version=0.0.4"));
  } else {
    co_await reject(ex, outcome, Error::not_found);
  }
  finish(outcome);
  --ctx_.metrics.in_flight();
}

net::asio::awaitable<void> Gateway::models(net::Exchange& ex, Outcome& outcome) {
  auto token = bearer_token(ex.request());
  if (!token) co_return co_await reject(ex, outcome, Error::token_missing);
  auto snapshot = ctx_.backends.snapshot();
  auto key =
      verify_key(*token, snapshot->issuers, ctx_.config.id, unix_ms() / 1000, ctx_.config.policy);
  if (!key) co_return co_await reject(ex, outcome, key.error());
  const std::string body = models_json(key->claims.dks.models, ctx_.router);
  co_await reply(ex, outcome, net::make_response(ex.request(), http::status::ok, body));
}

// Ready when the store can count uses (Redis: it answers this thread's connection) and every
// upstream answered HTTP at its last probe. Probes are cached for kProbeTtl and one runs at a
// time per upstream, whatever the rate of /readyz: a flood of them opens no connections to the
// engines and never spends an engine's key beyond one probe per upstream per kProbeTtl.
net::asio::awaitable<void> Gateway::ready(net::Exchange& ex, Outcome& outcome) {
  const bool store_ok = co_await ctx_.uses.check();
  bool all = store_ok;
  json::object upstreams;
  const auto& list = ctx_.router.upstreams();
  for (std::size_t i = 0; i < list.size(); ++i) {
    const bool up = co_await probe(list[i], probes_[i]);
    upstreams[list[i].name] = up;
    all = all && up;
  }
  co_await reply(
      ex, outcome,
      net::make_response(ex.request(), all ? http::status::ok : http::status::service_unavailable,
                         ready_json(all, store_ok, std::move(upstreams))));
}

net::asio::awaitable<bool> Gateway::probe(const UpstreamConfig& u, UpstreamProbe& state) {
  const std::int64_t now = unix_ms();
  const std::int64_t checked = state.checked_ms.load(std::memory_order_acquire);
  if (checked != 0 && now - checked < kProbeTtl.count()) co_return state.up.load();
  bool expected = false;
  if (!state.probing.compare_exchange_strong(expected, true)) {
    co_return state.up.load();  // another request probes right now: its last answer stands
  }
  net::ClientOptions quick = u.client;
  quick.connect_timeout = quick.first_byte_timeout = quick.idle_timeout =
      std::chrono::milliseconds(2000);
  quick.total_timeout = std::chrono::milliseconds(3000);
  auto executor = co_await net::asio::this_coro::executor;
  net::UpstreamPool pool(executor, u.target, quick);
  net::UpstreamCall call(pool);
  http::request<http::string_body> request{http::verb::get, "/v1/models", 11};
  if (!u.api_key.empty()) request.set(http::field::authorization, "Bearer " + u.api_key);
  const bool up = !(co_await call.send(request));
  state.up.store(up);
  state.checked_ms.store(unix_ms(), std::memory_order_release);
  state.probing.store(false);
  co_return up;
}

net::asio::awaitable<void> Gateway::reject(net::Exchange& ex, Outcome& outcome, Error e,
                                           std::string_view param) {
  outcome.code = e;
  co_await reply(ex, outcome, net::error_response(ex.request(), e, param));
}

net::asio::awaitable<void> Gateway::reply(net::Exchange& ex, Outcome& outcome, net::Response res) {
  outcome.status = res.result_int();
  if (outcome.spent != nullptr && outcome.status >= 400) {
    // The use is gone: a retry could only meet uses_exhausted, which would hide this failure.
    // The official OpenAI SDKs obey this header (their default is two retries on 5xx, 408,
    // 409 and 429).
    res.set("x-should-retry", "false");
    outcome.spent->response_sha256 = to_hex(sha256(as_bytes(std::string_view(res.body()))));
  }
  co_await ex.respond(std::move(res));
}

// Metrics for every request; one access-log line for each completion and each refusal.
// Tokens and secrets are never logged.
void Gateway::finish(Outcome& o) {
  if (o.recorded) return;
  o.recorded = true;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - o.started).count();
  ctx_.metrics.request(o.route, o.status, o.code, seconds);
  if (!ctx_.config.access_log) return;
  if (o.route != Route::chat_completions && o.route != Route::completions && !o.code) return;
  // Refusals without a consumed use are bounded per second (refusal_log.hpp); uses always log.
  if (o.code && o.record == nullptr && !refusals_.admit(*o.code, unix_ms() / 1000)) return;
  json::object line{{"endpoint", to_string(o.route)},
                    {"status", o.status},
                    {"code", o.code ? to_string(*o.code) : "ok"},
                    {"us", static_cast<std::int64_t>(seconds * 1e6)}};
  if (const UsageRecord* r = o.record) {
    line["event_id"] = r->event_id;
    line["use"] = r->use;
    line["iss"] = r->iss;
    line["sub"] = r->sub;
    line["model"] = r->model;
    line["stream"] = r->stream;
    line["usage_status"] = to_string(r->status);
    line["prompt_tokens"] = r->usage.prompt;
    line["completion_tokens"] = r->usage.completion;
  }
  spdlog::info("access {}", json::serialize(line));
}

}  // namespace dynaseal::server
