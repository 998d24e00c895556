// The outbox part of the admin API (Authorization checked by Gateway::admin):
//
//   GET  /admin/v1/outbox                 {"open","pending","delivered","dead","oldest_pending_at"}
//   GET  /admin/v1/outbox/dead?limit=N    {"dead":[{webhook_id, iss, attempts, last_error,
//                                          queued_at, died_at, event}]}, newest first, N <= 1000
//   POST /admin/v1/outbox/replay          {"webhook_id"?: "...", "iss"?: "..."} -> {"replayed": n}
//                                          (a webhook_id needs its iss; neither: every dead letter)

#include <algorithm>
#include <charconv>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/json.hpp"
#include "net/http_errors.hpp"
#include "server/gateway.hpp"

namespace dynaseal::server {
namespace {

namespace http = net::http;
namespace json = boost::json;

constexpr std::size_t kDefaultDeadLimit = 100;
constexpr std::size_t kMaxDeadLimit = 1000;

// ?limit=N from the target; nothing when malformed.
std::optional<std::size_t> dead_limit(std::string_view target) {
  const std::size_t q = target.find('?');
  if (q == std::string_view::npos) return kDefaultDeadLimit;
  std::string_view query = target.substr(q + 1);
  if (!query.starts_with("limit=")) return std::nullopt;
  query.remove_prefix(6);
  std::size_t n = 0;
  auto [end, ec] = std::from_chars(query.data(), query.data() + query.size(), n);
  if (ec != std::errc() || end != query.data() + query.size() || n == 0 || n > kMaxDeadLimit) {
    return std::nullopt;
  }
  return n;
}

std::string stats_json(const store::OutboxStats& s) {
  json::object o;
  o["open"] = s.open;
  o["pending"] = s.pending;
  o["delivered"] = s.delivered;
  o["dead"] = s.dead;
  if (s.oldest_pending_ms > 0) {
    o["oldest_pending_at"] = rfc3339(s.oldest_pending_ms);
  } else {
    o["oldest_pending_at"] = nullptr;
  }
  return json::serialize(o);
}

std::string dead_json(const std::vector<store::DeadLetter>& dead) {
  json::array list;
  for (const store::DeadLetter& d : dead) {
    json::object o;
    o["webhook_id"] = d.webhook_id;
    o["iss"] = d.iss;
    o["attempts"] = d.attempts;
    o["last_error"] = d.last_error;
    o["queued_at"] = rfc3339(d.queued_ms);
    o["died_at"] = rfc3339(d.died_ms);
    boost::system::error_code ec;
    json::value event = json::parse(d.body, ec);
    o["event"] = ec ? json::value(d.body) : std::move(event);
    list.push_back(std::move(o));
  }
  json::object doc;
  doc["dead"] = std::move(list);
  return json::serialize(doc);
}

std::string replayed_json(std::int64_t n) {
  json::object o;
  o["replayed"] = n;
  return json::serialize(o);
}

}  // namespace

net::asio::awaitable<void> Gateway::admin_outbox(net::Exchange& ex, Outcome& outcome,
                                                 AdminAction action, const json::object& body) {
  const net::Request& req = ex.request();
  if (action == AdminAction::outbox_stats) {
    auto stats = co_await ctx_.outbox.stats();
    if (!stats) co_return co_await reject(ex, outcome, Error::store_unavailable);
    co_return co_await reply(ex, outcome,
                             net::make_response(req, http::status::ok, stats_json(*stats)));
  }
  if (action == AdminAction::outbox_dead) {
    auto limit = dead_limit(req.target());
    if (!limit) co_return co_await reject(ex, outcome, Error::body_malformed);
    auto dead = co_await ctx_.outbox.dead_letters(*limit);
    if (!dead) co_return co_await reject(ex, outcome, Error::store_unavailable);
    co_return co_await reply(ex, outcome,
                             net::make_response(req, http::status::ok, dead_json(*dead)));
  }
  // AdminAction::outbox_replay
  {
    const json::value* id = member(body, "webhook_id");
    const json::value* iss = member(body, "iss");
    const bool bad_id = id != nullptr && (!id->is_string() || id->get_string().empty());
    const bool bad_iss = iss != nullptr && (!iss->is_string() || iss->get_string().empty());
    const bool unknown = std::any_of(body.begin(), body.end(), [](const auto& kv) {
      return kv.key() != "webhook_id" && kv.key() != "iss";
    });
    // An unknown member could be a typo of a filter: replaying everything instead is worse.
    if (bad_id || bad_iss || unknown || (id != nullptr && iss == nullptr)) {
      co_return co_await reject(ex, outcome, Error::body_malformed);
    }
    std::string iss_filter = iss ? std::string(as_view(iss->get_string())) : "";
    std::string id_filter = id ? std::string(as_view(id->get_string())) : "";
    auto n = co_await ctx_.outbox.replay(std::move(iss_filter), std::move(id_filter));
    if (!n) co_return co_await reject(ex, outcome, Error::store_unavailable);
    co_await reply(ex, outcome, net::make_response(req, http::status::ok, replayed_json(*n)));
  }
}

}  // namespace dynaseal::server
