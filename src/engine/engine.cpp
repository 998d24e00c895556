#include "engine/engine.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "engine/request.hpp"
#include "engine/response.hpp"
#include "engine/stats.hpp"
#include "engine/text.hpp"

namespace dynaseal::engine {
namespace {

namespace asio = net::asio;
namespace http = net::http;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kFaultTokens = 3;         // tokens sent before a mid-stream fault
constexpr std::size_t kFlushBytes = 16 * 1024;  // unpaced streams write in pieces this large
constexpr std::chrono::milliseconds kSlowFirstByteFloor{5000};
constexpr std::string_view kGarbage = "this is not JSON {{{ <garbage> ]]";

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

net::Response json_response(const net::Request& req, unsigned status, std::string body) {
  return net::make_response(req, static_cast<http::status>(status), std::move(body));
}

asio::awaitable<void> respond_error(net::Exchange& ex, ApiError e) {
  net::Response res = json_response(ex.request(), e.status, error_body(e));
  co_await ex.respond(std::move(res));
}

ApiError not_allowed(std::string_view path) {
  return {405, "invalid_request_error", "method_not_allowed",
          "this method is not allowed on " + std::string(path)};
}

ApiError not_found(std::string_view path) {
  return {404, "invalid_request_error", "not_found", "no such endpoint: " + std::string(path)};
}

ApiError injected(unsigned status) {
  return {status, "server_error", "injected_fault",
          "injected fault: the stand-in engine failed this request on purpose"};
}

// Waits until `at` unless the client leaves first (the watch cancels `timer`). Returns false
// when the client is gone.
asio::awaitable<bool> wait_until(net::Exchange& ex, asio::steady_timer& timer,
                                 Clock::time_point at) {
  if (ex.client_gone()) co_return false;
  timer.expires_at(at);
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return !ex.client_gone();
}

// Writes what `out` holds as one chunk and empties it; counts its tokens once written.
asio::awaitable<bool> flush(net::Exchange& ex, std::string& out, std::size_t& pending,
                            Tally& tally) {
  if (out.empty()) co_return true;
  const bool ok = co_await ex.write(out);
  out.clear();
  if (ok) tally.tokens(pending);
  pending = 0;
  co_return ok;
}

// What produce() decided about one answer.
struct Answer {
  ResponseMeta meta;
  std::size_t words = 0;
  std::string_view finish_reason;
};

// How many of an answer's `words` a stream sends before `fault` cuts it.
std::size_t tokens_to_send(Fault fault, std::size_t words) {
  if (fault == Fault::truncate || fault == Fault::reset_mid_stream) {
    return std::min(words, kFaultTokens);
  }
  if (fault == Fault::garbage) return std::min<std::size_t>(words, 1);
  return words;
}

// Appends what follows the tokens of a stream that was not reset: normally the finish chunk,
// the usage chunk when asked for, and [DONE]; `garbage` puts an event that is not JSON in place
// of the first two, `truncate` sends nothing at all.
void append_ending(std::string& out, const ChunkWriter& events, const CompletionRequest& req,
                   const Answer& answer) {
  if (req.fault == Fault::truncate) return;
  if (req.fault == Fault::garbage) {
    out += "data: ";
    out += kGarbage;
    out += "\n\n";
  } else {
    events.finish(out, answer.finish_reason);
    if (req.include_usage) {
      events.usage(out, {req.prompt_tokens, static_cast<std::int64_t>(answer.words)});
    }
  }
  ChunkWriter::done(out);
}

}  // namespace

struct EngineService::Impl {
  explicit Impl(EngineOptions o);

  asio::awaitable<void> handle(net::Exchange& ex);
  asio::awaitable<void> complete(net::Exchange& ex, Endpoint endpoint);
  asio::awaitable<void> serve(net::Exchange& ex, const CompletionRequest& req, Tally& tally);
  asio::awaitable<void> produce(net::Exchange& ex, const CompletionRequest& req, Tally& tally,
                                asio::steady_timer* timer);
  asio::awaitable<void> reply(net::Exchange& ex, const CompletionRequest& req, const Answer& answer,
                              Tally& tally);
  asio::awaitable<void> stream(net::Exchange& ex, const CompletionRequest& req,
                               const Answer& answer, Tally& tally, asio::steady_timer* timer);
  std::string stats_body() const;

  const EngineOptions options;
  std::vector<std::string> model_json;  // each model name as a JSON string
  std::string models_body;              // GET /v1/models
  CounterRegistry counters;
  alignas(64) std::atomic<std::uint64_t> next_id{1};  // shared, on its own cache line
};

EngineService::Impl::Impl(EngineOptions o) : options(std::move(o)), counters(options.seed) {
  if (options.models.empty()) throw std::invalid_argument("the engine needs at least one model");
  if (!(options.fail_rate >= 0 && options.fail_rate <= 1)) {
    throw std::invalid_argument("fail rate must be within 0..1");
  }
  if (!(options.tokens_per_second >= 0) || !std::isfinite(options.tokens_per_second)) {
    throw std::invalid_argument("tokens per second must be a finite number >= 0");
  }
  if (options.ttft.count() < 0) throw std::invalid_argument("ttft must be >= 0");
  json::array data;
  for (const std::string& m : options.models) {
    if (m.empty()) throw std::invalid_argument("model names must not be empty");
    model_json.push_back(json::serialize(json::value(m)));
    data.push_back(json::object{
        {"id", m}, {"object", "model"}, {"created", unix_now()}, {"owned_by", "dynaseal-engine"}});
  }
  models_body = json::serialize(json::object{{"object", "list"}, {"data", std::move(data)}});
}

EngineService::EngineService(EngineOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

EngineService::~EngineService() = default;

const EngineOptions& EngineService::options() const { return impl_->options; }

net::Handler EngineService::handler() {
  return [this](net::Exchange& ex) { return impl_->handle(ex); };
}

asio::awaitable<void> EngineService::handle(net::Exchange& ex) { return impl_->handle(ex); }

EngineStats EngineService::stats() const { return impl_->counters.total(); }

net::Response EngineService::reject(Error code, http::status status) {
  const ApiError e{static_cast<unsigned>(status), "invalid_request_error", to_string(code),
                   std::string(describe(code))};
  net::Response res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.body() = error_body(e);
  res.prepare_payload();
  return res;
}

std::string EngineService::Impl::stats_body() const {
  const EngineStats s = counters.total();
  return json::serialize(json::object{{"requests", s.requests},
                                      {"completed", s.completed},
                                      {"cancelled", s.cancelled},
                                      {"failed", s.failed},
                                      {"rejected", s.rejected},
                                      {"streams", s.streams},
                                      {"tokens", s.tokens}});
}

asio::awaitable<void> EngineService::Impl::handle(net::Exchange& ex) {
  const net::Request& req = ex.request();
  const std::string_view path = path_of(req.target());
  const bool chat = path == "/v1/chat/completions";
  if (chat || path == "/v1/completions") {
    if (req.method() == http::verb::post) {
      co_await complete(ex, chat ? Endpoint::chat : Endpoint::completions);
    } else {
      co_await respond_error(ex, not_allowed(path));
    }
    co_return;
  }
  std::string body;
  if (path == "/v1/models") {
    body = models_body;
  } else if (path == "/healthz") {
    body = R"({"status":"ok"})";
  } else if (path == "/stats") {
    body = stats_body();
  } else {
    co_await respond_error(ex, not_found(path));
    co_return;
  }
  if (req.method() != http::verb::get) {
    co_await respond_error(ex, not_allowed(path));
    co_return;
  }
  net::Response res = json_response(req, 200, std::move(body));
  co_await ex.respond(std::move(res));
}

asio::awaitable<void> EngineService::Impl::complete(net::Exchange& ex, Endpoint endpoint) {
  Counters& c = counters.local();
  bump(c.requests);
  auto req = read_completion_request(endpoint, ex.request().body(), options.models, options.seed,
                                     options.flavor);
  if (!req) {
    bump(c.rejected);
    co_await respond_error(ex, std::move(req.error()));
    co_return;
  }
  if (req->fault == Fault::none && options.fail_rate > 0) {
    const double u = static_cast<double>(splitmix_next(c.rng) >> 11) * 0x1p-53;
    if (u < options.fail_rate) req->fault = Fault::status500;
  }
  if (req->stream) bump(c.streams);
  Tally tally(c);
  if (req->fault != Fault::none) tally.fault();
  co_await serve(ex, *req, tally);
  tally.end();
}

asio::awaitable<void> EngineService::Impl::serve(net::Exchange& ex, const CompletionRequest& req,
                                                 Tally& tally) {
  if (req.fault == Fault::status500 || req.fault == Fault::status503) {
    co_await respond_error(ex, injected(req.fault == Fault::status500 ? 500 : 503));
    co_return;
  }
  if (req.fault == Fault::reset) {
    ex.abort();
    co_return;
  }
  std::chrono::milliseconds delay = options.ttft;
  if (req.fault == Fault::slow_first_byte) {
    delay = delay.count() > 0 ? 10 * delay : kSlowFirstByteFloor;
  }
  const bool paced = req.stream && options.tokens_per_second > 0;
  if (delay.count() == 0 && !paced && req.fault != Fault::hang) {
    co_await produce(ex, req, tally, nullptr);  // nothing to wait for: no watch needed
    co_return;
  }
  asio::steady_timer timer(co_await asio::this_coro::executor);
  ex.watch_disconnect([&timer] { timer.cancel(); });
  if (req.fault == Fault::hang) {
    co_await wait_until(ex, timer, Clock::time_point::max());
  } else if (co_await wait_until(ex, timer, Clock::now() + delay)) {
    co_await produce(ex, req, tally, &timer);
  }
  co_await ex.stop_watching();
}

asio::awaitable<void> EngineService::Impl::produce(net::Exchange& ex, const CompletionRequest& req,
                                                   Tally& tally, asio::steady_timer* timer) {
  Answer answer;
  std::int64_t natural = static_cast<std::int64_t>(natural_length(req.prompt_hash));
  if (req.ignore_eos) natural = kUncappedLength;
  natural = std::max(natural, req.min_tokens);
  if (options.flavor == Flavor::reckless) {
    natural += 64;  // past any cap that the natural length would have met
    answer.words = static_cast<std::size_t>(natural);
  } else {
    answer.words = static_cast<std::size_t>(std::min(natural, req.max_tokens.value_or(natural)));
  }
  answer.finish_reason = static_cast<std::int64_t>(answer.words) < natural ? "length" : "stop";
  answer.meta = {req.endpoint, next_id.fetch_add(1, std::memory_order_relaxed), unix_now(),
                 model_json[req.model], req.include_usage};
  if (req.stream) {
    co_await stream(ex, req, answer, tally, timer);
  } else {
    co_await reply(ex, req, answer, tally);
  }
}

asio::awaitable<void> EngineService::Impl::reply(net::Exchange& ex, const CompletionRequest& req,
                                                 const Answer& answer, Tally& tally) {
  const std::string text = completion_text(req.prompt_hash, answer.words);
  const Usage usage{req.prompt_tokens, static_cast<std::int64_t>(answer.words)};
  std::string body = completion_body(answer.meta, text, answer.finish_reason, usage);
  if (req.fault == Fault::garbage) {
    net::Response res = json_response(ex.request(), 200, std::string(kGarbage));
    co_await ex.respond(std::move(res));
    co_return;
  }
  if (req.fault == Fault::truncate || req.fault == Fault::reset_mid_stream) {
    // Half of the JSON body in a chunked response, then a clean end or a reset.
    net::ResponseHead head{http::status::ok, 11};
    head.set(http::field::content_type, "application/json");
    const std::string_view half = std::string_view(body).substr(0, body.size() / 2);
    const bool ok = co_await ex.begin_stream(std::move(head)) && co_await ex.write(half);
    if (ok && req.fault == Fault::truncate) co_await ex.end_stream();
    if (req.fault == Fault::reset_mid_stream) ex.abort();
    co_return;
  }
  net::Response res = json_response(ex.request(), 200, std::move(body));
  tally.completing(answer.words);
  if (!co_await ex.respond(std::move(res))) tally.last_write_failed();
}

asio::awaitable<void> EngineService::Impl::stream(net::Exchange& ex, const CompletionRequest& req,
                                                  const Answer& answer, Tally& tally,
                                                  asio::steady_timer* timer) {
  net::ResponseHead head{http::status::ok, 11};
  head.set(http::field::content_type, "text/event-stream");
  head.set(http::field::cache_control, "no-cache");
  if (!co_await ex.begin_stream(std::move(head))) co_return;

  const ChunkWriter events(answer.meta);
  const std::size_t last = tokens_to_send(req.fault, answer.words);
  const bool paced = timer != nullptr && options.tokens_per_second > 0;
  const auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(paced ? 1.0 / options.tokens_per_second : 0.0));
  const Clock::time_point start = Clock::now();

  std::string out;
  out.reserve(std::min(kFlushBytes, (last + 4) * 256));
  std::size_t pending = 0;  // tokens in `out`
  events.role(out);
  WordGenerator words(req.prompt_hash);
  for (std::size_t i = 0; i < last; ++i) {
    if (paced && i > 0) {
      // Token i is due at start + i * interval: no drift however long the writes take.
      if (!co_await flush(ex, out, pending, tally)) co_return;
      if (!co_await wait_until(ex, *timer, start + i * interval)) co_return;
    }
    events.token(out, words.next(), i + 1 < answer.words);
    ++pending;
    if (out.size() >= kFlushBytes && !co_await flush(ex, out, pending, tally)) co_return;
  }
  if (req.fault == Fault::reset_mid_stream) {
    co_await flush(ex, out, pending, tally);
    ex.abort();
    co_return;
  }
  append_ending(out, events, req, answer);
  tally.completing(pending);
  const bool ok = co_await ex.write(out) && co_await ex.end_stream();
  if (!ok) tally.last_write_failed();
}

}  // namespace dynaseal::engine
