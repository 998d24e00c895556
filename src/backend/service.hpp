// The backend's HTTP surface (DESIGN §6, docs/backend.md):
//
//   POST /v1/keys               Authorization: Bearer <user token>; {"model","max_tokens"?,"uses"?}
//                               -> 200 {"key","event_id","expires_at","server":{"id","url"}}
//   POST /v1/callbacks/usage    a signed usage event from the pinned server -> 200 {"ok":true,..}
//   GET  /.well-known/jwks.json the backend's public signing keys (not retired)
//   GET  /healthz
//
// Minting, in order: bearer token (token_missing) -> user by token hash (user_unknown) -> body
// (body_malformed, model_missing) -> plan (model_not_allowed, max_tokens_exceeded,
// uses_not_allowed) -> mint rate (rate_limited) -> budget and reservation in one transaction
// (quota_exhausted, credit_exhausted) -> sign with the current key. Callbacks: pinned keys
// (server_unknown) -> check_callback (signature, timestamp, body), on the worker thread -> the
// UsageWriter, which group-commits the events of many callbacks in one transaction; the reply
// waits for that commit. A store that fails answers 503 store_unavailable (a server retries its
// callbacks). Refusals use the OpenAI error body (net/http_errors.hpp).
//
// A request is answered by answer(); everything but a callback's storage runs straight on the
// worker thread, the store calls being blocking SQLite calls on that thread's own connection.
//
//   UsageWriter writer(std::move(*open_sqlite_store(path)));
//   BackendService service(config, stores, writer, keys);
//   HttpServer http(options, [&](Exchange& ex) { return service.handle(ex); }, reject);
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <variant>
#include <vector>

#include "backend/config.hpp"
#include "backend/rate_limiter.hpp"
#include "backend/signing_key.hpp"
#include "backend/store_pool.hpp"
#include "backend/usage_writer.hpp"
#include "core/crypto.hpp"
#include "net/http_server.hpp"

namespace dynaseal::backend {

enum class Route { keys, callbacks, jwks, healthz, none };

// Unix time in milliseconds; injectable for tests.
using Clock = std::function<std::int64_t()>;
std::int64_t system_unix_ms();

class BackendService {
 public:
  static constexpr std::int64_t kPinnedKeysTtlMs = 1000;

  BackendService(const BackendConfig& config, StorePool& stores, UsageWriter& writer,
                 SigningKeySource& keys, Clock clock = system_unix_ms);

  net::asio::awaitable<void> handle(net::Exchange& ex);
  // The response to `req`; a callback's completes once its event's transaction is over.
  net::asio::awaitable<net::Response> answer(const net::Request& req);

 private:
  // A callback either refused at once or checked and ready to be stored.
  using Checked = std::variant<net::Response, NewEvent>;

  net::Response respond(const net::Request& req, Route route);
  net::Response dispatch(const net::Request& req, Route route);
  net::Response mint(const net::Request& req, BackendStore& store, std::int64_t now_ms);
  Checked check(const net::Request& req);
  net::Response recorded(const net::Request& req, const Result<Recorded>& result);
  void log_access(const net::Request& req, Route route, const net::Response& res,
                  std::chrono::steady_clock::time_point started) const;
  net::Response jwks(const net::Request& req, BackendStore& store);
  net::Response refuse(const net::Request& req, Error e, std::string_view detail = {});
  // The pinned server's keys, read from the store at most once per kPinnedKeysTtlMs while
  // some are pinned (a re-pin by `register` takes effect within that time; until one exists,
  // every callback looks again).
  Result<std::shared_ptr<const std::vector<PublicKey>>> pinned_keys(BackendStore& store,
                                                                    std::int64_t now_ms);

  struct PinnedKeys {
    std::vector<PublicKey> keys;
    std::int64_t fresh_until_ms = 0;
  };

  const BackendConfig& config_;
  StorePool& stores_;
  UsageWriter& writer_;
  SigningKeySource& keys_;
  Clock clock_;
  MintRateLimiter limiter_;
  std::atomic<std::shared_ptr<const PinnedKeys>> pinned_{};
};

}  // namespace dynaseal::backend
