// The durable outbox's floor: what one finished usage record costs SQLite alone, as the server's
// database thread writes it (DESIGN §5): Opens held for their Finalizes, so a batch of N
// requests is N inserts of finished records in one transaction; the background checkpointer
// runs as in the server. Process CPU time per record, all threads.
//
// scripts/bench-server adds this to the Ed25519 verify and to nginx's cost of proxying one
// request: the least any proxy that keeps the durable outbox can spend per request here.

#include <sodium.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "core/base64url.hpp"
#include "server/usage.hpp"
#include "store/sqlite_server_store.hpp"

namespace dynaseal {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kNowMs = 1'790'000'000'000;

// A body as the server writes it for a short chat answer (about 480 bytes).
server::UsageRecord record(std::string event_id) {
  return server::UsageRecord{
      .event_id = std::move(event_id),
      .use = 1,
      .server = "llm-1",
      .iss = "acme",
      .sub = "bench",
      .model = "demo",
      .usage = {.prompt = 12, .completion = 16},
      .usage_reported = true,
      .started_at_ms = kNowMs,
      .finished_at_ms = kNowMs + 1,
      .request_sha256 = std::string(64, 'a'),
      .response_sha256 = std::string(64, 'b'),
  };
}

// A random jti, as keys minted by the backend carry: 16 bytes, base64url.
std::string random_event_id() {
  std::string bytes(16, '\0');
  randombytes_buf(bytes.data(), bytes.size());
  return base64url_encode(bytes);
}

// batch: the records per transaction (the server gathers 2 ms of requests: about 14 at 7k/s).
void BM_OutboxFinishedRecord(benchmark::State& state) {
  if (sodium_init() < 0) {
    state.SkipWithError("libsodium cannot start");
    return;
  }
  const auto batch = static_cast<std::size_t>(state.range(0));
  const fs::path dir =
      fs::temp_directory_path() / ("dynaseal-outbox-bench-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    std::string message;
    auto store = store::SqliteServerStore::open(dir / "server.db", &message);
    if (!store) {
      state.SkipWithError(message.c_str());
      fs::remove_all(dir);
      return;
    }
    std::vector<store::OutboxWrite> writes;
    writes.reserve(2 * batch);
    for (auto _ : state) {
      state.PauseTiming();
      writes.clear();
      for (std::size_t i = 0; i < batch; ++i) {
        const server::UsageRecord r = record(random_event_id());
        store::OutboxKey key{.iss = r.iss, .event_id = r.event_id, .use = r.use};
        std::string body = server::usage_event_json(r);  // its interrupted body is as long
        writes.emplace_back(store::outbox::Open{
            .key = key, .owner = "llm-1", .interrupted_body = body, .now_ms = kNowMs});
        writes.emplace_back(store::outbox::Finalize{
            .key = std::move(key), .body = std::move(body), .now_ms = kNowMs + 1});
      }
      state.ResumeTiming();
      auto applied = store->apply(writes);
      if (!applied) {
        state.SkipWithError("the transaction failed");
        break;
      }
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
  }
  fs::remove_all(dir);
}
BENCHMARK(BM_OutboxFinishedRecord)->Arg(1)->Arg(14)->Arg(64)->MeasureProcessCPUTime();

}  // namespace
}  // namespace dynaseal

BENCHMARK_MAIN();
