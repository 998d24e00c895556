// The LLM server's request handler: every endpoint of DESIGN §4.
//
// The completion path, in order: bearer -> verify (core) -> strict body -> scope -> route ->
// consume a use and reserve budget (store) -> forward (max_tokens rewritten, usage requested on
// streams, the engine's own key; the client's Authorization never leaves) -> relay (streams
// event by event) -> settle the budget -> the final usage record to the outbox. Nothing before
// the consume has side effects; after it, the record is made durable in the outbox before the
// engine is called, so exactly one usage event is produced whatever happens, even a crash.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "net/http_client.hpp"
#include "net/http_server.hpp"
#include "server/admin_routes.hpp"
#include "server/backend_registry.hpp"
#include "server/completion_request.hpp"
#include "server/config.hpp"
#include "server/metrics.hpp"
#include "server/outbox.hpp"
#include "server/refusal_log.hpp"
#include "server/router.hpp"
#include "server/usage.hpp"
#include "store/async_use_store.hpp"

namespace dynaseal::server {

std::int64_t unix_ms();

struct GatewayContext {
  const ServerConfig& config;
  BackendRegistry& backends;
  store::AsyncUseStore& uses;  // memory (inline) or Redis
  Router& router;
  Outbox& outbox;
  DbWorker& db;
  Metrics& metrics;
  std::string admin_token;
  std::string well_known;                         // the /.well-known/dynaseal document
  std::function<std::size_t()> open_connections;  // for /metrics
};

class Gateway {
 public:
  explicit Gateway(GatewayContext context);

  // The net::Handler: answers one request.
  net::asio::awaitable<void> handle(net::Exchange& ex);
  // Logs what the refusal log held back in the last second (call about once a second).
  void flush_logs();
  // Whether a refusal made outside the gateway (by the HTTP layer) gets its own log line.
  bool log_refusal(Error code) { return refusals_.admit(code, unix_ms() / 1000); }

 private:
  // What a request ended as, for metrics and the access log.
  struct Outcome {
    Route route = Route::other;
    unsigned status = 200;
    std::optional<Error> code;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    const UsageRecord* record = nullptr;
    // Set once the request's use is consumed: error responses then carry x-should-retry:
    // false, and the record takes the hash of the error body the client received.
    UsageRecord* spent = nullptr;
    bool recorded = false;  // finish() ran
  };

  net::asio::awaitable<void> completions(net::Exchange& ex, Endpoint endpoint, Outcome& outcome);
  net::asio::awaitable<void> forward(net::Exchange& ex, CompletionRequest& body,
                                     const UpstreamConfig& upstream, std::int64_t max_tokens,
                                     UsageRecord& record, Outcome& outcome);
  net::asio::awaitable<void> relay_whole(net::Exchange& ex, net::UpstreamCall& call,
                                         UsageRecord& record, Outcome& outcome);
  net::asio::awaitable<void> relay_stream(net::Exchange& ex, net::UpstreamCall& call,
                                          bool client_wants_usage, std::int64_t cap,
                                          UsageRecord& record, Outcome& outcome);
  net::asio::awaitable<void> models(net::Exchange& ex, Outcome& outcome);
  // The last /readyz probe of one upstream (Gateway::probe).
  struct UpstreamProbe {
    std::atomic<std::int64_t> checked_ms{0};  // unix ms of the last probe's end; 0: never
    std::atomic<bool> up{false};
    std::atomic<bool> probing{false};
  };
  static constexpr std::chrono::milliseconds kProbeTtl{5000};

  net::asio::awaitable<void> ready(net::Exchange& ex, Outcome& outcome);
  net::asio::awaitable<bool> probe(const UpstreamConfig& u, UpstreamProbe& state);
  net::asio::awaitable<void> admin(net::Exchange& ex, Outcome& outcome);
  net::asio::awaitable<void> admin_action(net::Exchange& ex, Outcome& outcome,
                                          const AdminRoute& route, const boost::json::object& body);
  net::asio::awaitable<void> revoke(net::Exchange& ex, Outcome& outcome,
                                    const boost::json::object& body);
  net::asio::awaitable<void> admin_outbox(net::Exchange& ex, Outcome& outcome, AdminAction action,
                                          const boost::json::object& body);
  void log_admin_change(net::Exchange& ex, const AdminRoute& route, const boost::json::object& body,
                        unsigned status);
  net::asio::awaitable<Result<void>> persist(std::string id, const RegistrySnapshot& before,
                                             Result<void> changed);
  net::asio::awaitable<void> admin_done(net::Exchange& ex, Outcome& outcome, Result<void> result,
                                        net::http::status status);

  // Send a response and note its status (and error code) in `outcome`.
  // `param` names the part of the request at fault (error body's "param").
  net::asio::awaitable<void> reject(net::Exchange& ex, Outcome& outcome, Error e,
                                    std::string_view param = {});
  net::asio::awaitable<void> reply(net::Exchange& ex, Outcome& outcome, net::Response res);
  // Metrics and the access log, once per request.
  void finish(Outcome& outcome);

  GatewayContext ctx_;
  std::unique_ptr<UpstreamProbe[]> probes_;  // one per upstream, in the router's order
  RefusalLog refusals_;
};

using net::bearer_token;

}  // namespace dynaseal::server
