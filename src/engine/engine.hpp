// The stand-in OpenAI-compatible engine behind `dynaseal engine`.
//
// THIS IS A TEST DOUBLE. It lets demos, integration tests and benchmarks run Dynaseal without a
// model: text is deterministic (a function of model, prompt and --seed), usage is exact (one
// token per whitespace-separated word, see text.hpp), latency is configurable, and faults can be
// injected at random (--fail-rate) or per request with a `[[fault:MODE]]` marker in the prompt
// (fault.hpp). Real deployments point their upstreams at real engines. docs/engine.md is the
// user-facing description.
//
// Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /healthz and
// GET /stats (EngineStats of stats.hpp, as JSON).
//
// Threading: EngineService is shared by all worker threads of an HttpServer and takes no lock on
// the request path: each thread counts into its own cache-line-aligned counters, which stats()
// sums. Waits (time to first token, token pacing, hangs) are Asio timers, never sleeping threads,
// and watch the client so that a client going away stops the generation.
//
//   EngineService engine(EngineOptions{.models = {"demo"}, .ttft = 20ms});
//   net::HttpServer server(server_options, engine.handler(), &EngineService::reject);
//   server.start();   // ... engine.stats().completed ...
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/request.hpp"
#include "engine/stats.hpp"
#include "net/http_server.hpp"

namespace dynaseal::engine {

struct EngineOptions {
  std::vector<std::string> models{"demo"};  // served models; others get 404 model_not_found
  std::chrono::milliseconds ttft{0};        // before the first token (and any response head)
  double tokens_per_second = 0;             // streamed tokens' pace; 0: as fast as possible
  double fail_rate = 0;                     // fraction of requests answered 500 at random
  std::uint64_t seed = 0;                   // changes every text and the fail-rate sequence
  Flavor flavor = Flavor::generic;          // whose length knobs it honours (request.hpp)
};

class EngineService {
 public:
  // Throws std::invalid_argument for options that make no sense (no models, a rate outside
  // 0..1, a negative pace).
  explicit EngineService(EngineOptions options);
  ~EngineService();
  EngineService(const EngineService&) = delete;
  EngineService& operator=(const EngineService&) = delete;

  // The HttpServer handler; the service must outlive the server's threads.
  net::Handler handler();
  // The HttpServer rejecter: OpenAI error bodies for 400 / 413 / 431.
  static net::Response reject(Error code, net::http::status status);

  // Serves one request; handler() calls this.
  net::asio::awaitable<void> handle(net::Exchange& ex);
  // A consistent-enough snapshot: each counter is read once, without stopping the workers.
  EngineStats stats() const;
  const EngineOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dynaseal::engine
