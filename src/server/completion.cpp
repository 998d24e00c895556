// The completion path of the Gateway: verify, scope, consume, forward, relay, report.

#include <limits>

#include <boost/asio/this_coro.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <spdlog/spdlog.h>

#include "core/crypto.hpp"
#include "core/dynamic_key.hpp"
#include "core/json.hpp"
#include "net/http_errors.hpp"
#include "server/gateway.hpp"
#include "server/stream_relay.hpp"

namespace dynaseal::server {
namespace {

namespace http = net::http;
namespace asio = net::asio;
using Clock = std::chrono::steady_clock;

// A non-streamed engine answer larger than this is not relayed (it would be buffered whole).
constexpr std::size_t kMaxUpstreamBody = 16 << 20;

bool is_success(unsigned status) { return status >= 200 && status < 300; }

std::string hex_sha256(std::string_view bytes) { return to_hex(sha256(as_bytes(bytes))); }

// An engine's own refusal of the request (4xx) is passed on as it is: the client can act on it
// (context too long, bad parameter). Anything else that is not a success is our 502.
bool pass_through(unsigned status) { return status >= 400 && status < 500; }

std::int64_t saturating_add(std::int64_t a, std::int64_t b) {
  return a > std::numeric_limits<std::int64_t>::max() - b ? std::numeric_limits<std::int64_t>::max()
                                                          : a + b;
}

// An upper bound of the prompt tokens any documented engine counts for this request: one per
// byte of the body (every token of a byte-level BPE or byte-fallback SentencePiece vocabulary
// covers at least one byte of text, and the body's JSON spends more bytes on each message's
// syntax than a chat template spends tokens on its role markers), plus what the upstream's chat
// template adds on its own, plus each media part's bound (docs/server.md, "Budget").
std::int64_t prompt_bound(std::size_t body_bytes, const RequestShape& shape,
                          const UpstreamConfig& upstream) {
  const std::int64_t media = shape.media_items * upstream.members.media_item_tokens;
  return saturating_add(saturating_add(static_cast<std::int64_t>(body_bytes), media),
                        upstream.prompt_overhead_tokens);
}

// After the engine is done: counts it did not report become estimates (the prompt bound and the
// content chunks relayed), and an answer beyond the cap is marked as such.
void settle_counts(UsageRecord& r, std::int64_t cap) {
  if (!r.usage_reported) {
    r.usage = {r.prompt_bound, r.usage.completion};
    r.estimate = UsageEstimate::prompt_bound;
  }
  if (r.usage.completion > cap && r.status == UsageStatus::ok) r.status = UsageStatus::over_cap;
}

}  // namespace

asio::awaitable<void> Gateway::completions(net::Exchange& ex, Endpoint endpoint, Outcome& outcome) {
  const net::Request& req = ex.request();
  auto token = bearer_token(req);
  if (!token) co_return co_await reject(ex, outcome, Error::token_missing);
  const std::int64_t now = unix_ms() / 1000;
  auto snapshot = ctx_.backends.snapshot();
  auto key = verify_key(*token, snapshot->issuers, ctx_.config.id, now, ctx_.config.policy);
  if (!key) co_return co_await reject(ex, outcome, key.error());
  const Claims& claims = key->claims;
  auto body = parse_completion_request(req.body(), endpoint, ctx_.config.http.max_body_bytes);
  if (!body) co_return co_await reject(ex, outcome, body.error());
  auto cap = check_scope(claims.dks, body->facts());
  if (!cap) co_return co_await reject(ex, outcome, cap.error());
  const UpstreamConfig* upstream = ctx_.router.route(body->model);
  if (upstream == nullptr) co_return co_await reject(ex, outcome, Error::model_not_found);
  auto shape = check_members(body->body, endpoint, upstream->members);
  if (!shape) {
    co_return co_await reject(ex, outcome, shape.error().code, shape.error().member);
  }

  // The outbox database refuses writes: refuse before the use is spent (outbox.hpp, admit).
  if (!ctx_.outbox.admit()) {
    ctx_.metrics.store_error();
    co_return co_await reject(ex, outcome, Error::store_unavailable);
  }
  // Everything that could refuse without side effects has passed: take the use. The store
  // journals the event that reports it as interrupted along with it, so the use is reported
  // even if this server dies before the outbox has its record (async_use_store.hpp).
  const std::int64_t bound = prompt_bound(req.body().size(), *shape, *upstream);
  UsageRecord record{.event_id = claims.jti,
                     .use = 0,  // numbered by the store
                     .server = ctx_.config.id,
                     .iss = claims.iss,
                     .sub = claims.sub,
                     .model = body->model,
                     .endpoint = endpoint,
                     .stream = body->stream,
                     .prompt_bound = bound,
                     .started_at_ms = unix_ms(),
                     .request_sha256 = hex_sha256(req.body()),
                     .ctx = claims.ctx};
  const UsageEventJson interrupted = interrupted_event_around_use(record);
  // The reservation is an upper bound of the whole use, prompt included, taken before the
  // engine sees anything: with a budget, a use that cannot fit whole is refused (402), so the
  // reported tokens of all uses together stay within the budget (docs/server.md, "Budget").
  const store::ConsumeRequest consume{.iss = claims.iss,
                                      .jti = claims.jti,
                                      .sub = claims.sub,
                                      .iat = claims.iat,
                                      .expires_at = claims.exp + ctx_.config.policy.leeway,
                                      .uses = claims.dks.uses,
                                      .budget = claims.dks.budget,
                                      .want_tokens = saturating_add(bound, *cap),
                                      .min_tokens = saturating_add(bound, 1),
                                      .event_head = interrupted.head,
                                      .event_tail = interrupted.tail};
  auto grant = co_await ctx_.uses.consume(consume, now);
  if (!grant) {
    if (grant.error() == Error::store_unavailable) ctx_.metrics.store_error();
    co_return co_await reject(ex, outcome, grant.error());
  }
  record.use = grant->use;
  // Durable before the engine sees the request: a crash from here on still yields an event.
  if (auto opened = co_await ctx_.outbox.open(record, interrupted.with_use(record.use)); !opened) {
    // conflict: this use of the key was recorded before (before a restart of the server,
    // which the in-memory use store does not remember, or before Redis lost its state, or
    // from the journal by a replica that took this one for dead): refused, as the use is gone.
    // store_unavailable: the journal entry stays, and the use is reported as interrupted.
    if (opened.error() == Error::store_unavailable) ctx_.metrics.store_error();
    co_return co_await reject(
        ex, outcome,
        opened.error() == Error::conflict ? Error::uses_exhausted : Error::store_unavailable);
  }
  // From here on the use is spent: an error must not make an SDK retry into uses_exhausted.
  outcome.spent = &record;
  const std::int64_t forwarded_cap = std::min(*cap, grant->granted_tokens - bound);
  co_await forward(ex, *body, *upstream, forwarded_cap, record, outcome);
  record.finished_at_ms = unix_ms();
  settle_counts(record, forwarded_cap);

  // Reported counts settle the reservation; estimates charge all of it, since the engine may
  // have spent up to the reservation on a use it did not report (the budget's accounting never
  // counts a use below that).
  const std::int64_t charged = record.usage_reported ? record.usage.total() : grant->granted_tokens;
  auto settled = co_await ctx_.uses.settle(claims.iss, claims.jti, grant->use,
                                           grant->granted_tokens, charged, unix_ms() / 1000);
  if (!settled) {
    // The reservation stays: the key's budget is under-used, never over-used.
    ctx_.metrics.store_error();
    spdlog::warn("settle failed for event {}: {}", claims.jti, to_string(settled.error()));
  }
  ctx_.metrics.tokens(record.model, record.usage);
  ctx_.metrics.usage_record(record.status);
  outcome.record = &record;
  finish(outcome);
  outcome.record = nullptr;
  ctx_.outbox.finish(record);
}

asio::awaitable<void> Gateway::forward(net::Exchange& ex, CompletionRequest& body,
                                       const UpstreamConfig& upstream, std::int64_t max_tokens,
                                       UsageRecord& record, Outcome& outcome) {
  http::request<http::string_body> request{http::verb::post, endpoint_path(body.endpoint), 11};
  request.set(http::field::content_type, "application/json");
  request.set(http::field::accept, body.stream ? "text/event-stream" : "application/json");
  if (!upstream.api_key.empty()) {
    request.set(http::field::authorization, "Bearer " + upstream.api_key);
  }
  request.body() = body.upstream_body(max_tokens, upstream.cap_fields(body.endpoint));

  auto executor = co_await asio::this_coro::executor;
  net::UpstreamCall call(ctx_.router.pool(upstream, executor));
  const auto started = Clock::now();
  // A client that goes away cancels the engine's work: its connection is closed.
  ex.watch_disconnect([&call] { call.cancel(); });
  if (auto failed = co_await call.send(request)) {
    record.status =
        ex.client_gone() ? UsageStatus::client_disconnected : UsageStatus::upstream_error;
    if (!ex.client_gone()) co_await reject(ex, outcome, *failed);
  } else if (body.stream && is_success(call.head().result_int())) {
    co_await relay_stream(ex, call, body.client_wants_usage, max_tokens, record, outcome);
  } else {
    co_await relay_whole(ex, call, record, outcome);
  }
  co_await ex.stop_watching();
  ctx_.metrics.upstream(std::chrono::duration<double>(Clock::now() - started).count());
}

asio::awaitable<void> Gateway::relay_whole(net::Exchange& ex, net::UpstreamCall& call,
                                           UsageRecord& record, Outcome& outcome) {
  auto bytes = co_await call.read_all(kMaxUpstreamBody);
  if (!bytes) {
    record.status =
        ex.client_gone() ? UsageStatus::client_disconnected : UsageStatus::upstream_error;
    if (!ex.client_gone()) co_await reject(ex, outcome, bytes.error());
    co_return;
  }
  const unsigned status = call.head().result_int();
  if (!is_success(status)) {
    record.status = UsageStatus::upstream_error;
    if (!pass_through(status)) co_return co_await reject(ex, outcome, Error::upstream_error);
    outcome.code = Error::upstream_error;
    net::Response res = net::make_response(ex.request(), call.head().result(), std::move(*bytes));
    co_return co_await reply(ex, outcome, std::move(res));
  }
  unsigned char arena[4096];
  boost::json::monotonic_resource memory(arena, sizeof arena);
  auto doc = parse_json(*bytes, {.max_bytes = kMaxUpstreamBody, .max_depth = 64}, &memory);
  if (!doc || !doc->is_object()) {
    record.status = UsageStatus::upstream_error;
    co_return co_await reject(ex, outcome, Error::upstream_error);
  }
  if (auto usage = read_usage(doc->get_object())) {
    record.usage = *usage;
    record.usage_reported = true;
  }
  record.response_sha256 = hex_sha256(*bytes);
  net::Response res = net::make_response(ex.request(), http::status::ok, std::move(*bytes));
  res.set("x-dynaseal-event-id", record.event_id);
  co_await reply(ex, outcome, std::move(res));
  record.status = ex.client_gone() ? UsageStatus::client_disconnected : UsageStatus::ok;
}

asio::awaitable<void> Gateway::relay_stream(net::Exchange& ex, net::UpstreamCall& call,
                                            bool client_wants_usage, std::int64_t cap,
                                            UsageRecord& record, Outcome& outcome) {
  net::ResponseHead head{http::status::ok, 11};
  head.set(http::field::content_type, "text/event-stream");
  head.set(http::field::cache_control, "no-cache");
  head.set("x-dynaseal-event-id", record.event_id);
  outcome.status = 200;
  StreamRelay relay(client_wants_usage, cap);
  Sha256Hasher hash;
  std::string out;
  bool sent = co_await ex.begin_stream(std::move(head));
  std::optional<Error> broken;  // set when the engine's stream failed
  while (sent) {
    auto piece = co_await call.read_some();
    if (!piece && call.cancelled()) break;  // the client left; nothing more to send
    const bool more = piece && !piece->empty();
    if (!piece) {
      broken = piece.error();  // reset, timeout: the engine's stream died mid-way
    } else if (more && !relay.feed(*piece, out)) {
      broken = Error::upstream_error;
    } else if (!more && !relay.complete()) {
      broken = Error::upstream_error;  // ended cleanly, but without [DONE]: truncated
    }
    if (broken) StreamRelay::append_error(out, *broken);
    if (!out.empty()) {
      hash.update(out);
      sent = co_await ex.write(out);
      out.clear();
    }
    if (!more || broken || relay.cut()) break;
  }
  // Every event up to [DONE] was handed over: the answer is complete even if the client hangs up
  // before the chunked body's last bytes (clients often close right after [DONE]).
  const bool answered = sent && !broken && relay.complete();
  if (sent && !ex.client_gone()) sent = co_await ex.end_stream();
  // Broken: the connection is in an unknown state, never reuse it. Cut: the engine is still
  // generating past the cap; closing the connection stops it.
  if (broken || relay.cut()) call.cancel();

  record.response_sha256 = to_hex(hash.finish());
  if (relay.usage()) {
    record.usage = *relay.usage();
    record.usage_reported = true;
  } else {
    // Cut off before the engine reported usage: one token per content chunk relayed (the
    // prompt's count is estimated by the caller).
    record.usage = {0, relay.content_chunks()};
  }
  if (relay.cut()) {
    record.status = UsageStatus::over_cap;  // ended cleanly for the client, at the cap
  } else if (answered) {
    record.status = UsageStatus::ok;
  } else if (!sent || ex.client_gone()) {
    record.status = UsageStatus::client_disconnected;
  } else if (broken) {
    record.status = UsageStatus::upstream_error;
    outcome.code = *broken;
  } else {
    record.status = UsageStatus::ok;
  }
}

}  // namespace dynaseal::server
