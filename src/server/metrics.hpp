// Prometheus metrics of the LLM server, kept in relaxed atomics (no lock on the request path)
// and rendered in the text exposition format on GET /metrics.
//
// dynaseal_requests_total{endpoint,status,code}   every answered request
// dynaseal_auth_failures_total{code}              401s by code
// dynaseal_request_duration_seconds{endpoint}     histogram, whole request
// dynaseal_upstream_duration_seconds              histogram, upstream part of completions
// dynaseal_tokens_total{model,kind}               prompt / completion tokens
// dynaseal_in_flight_requests, dynaseal_open_connections, dynaseal_store_errors_total,
// dynaseal_usage_records_total{status}
// dynaseal_outbox_events{state}                   open / pending / dead, refreshed every 10 s
// dynaseal_outbox_delivered_total, dynaseal_outbox_retried_total,
// dynaseal_outbox_dead_lettered_total, dynaseal_outbox_delivery_latency_seconds (histogram,
// from the event being queued to the backend's 2xx)
// dynaseal_outbox_recovered_total                 unfinished records reported as interrupted
//                                                 (this replica's after a restart, or a
//                                                 silent replica's)
// dynaseal_outbox_journal_replayed_total          consumed uses without a record, reported from
//                                                 the use store's journal (use_journal.hpp)
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "server/usage.hpp"
#include "store/server_store.hpp"

namespace dynaseal::server {

enum class Route : std::uint8_t { chat_completions, completions, models, other, admin };
inline constexpr std::size_t kRoutes = 5;
std::string_view to_string(Route r);

class Histogram {
 public:
  static constexpr std::array<double, 14> kBounds = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60};
  void observe(double seconds);
  void render(std::string& out, std::string_view name, std::string_view labels) const;

 private:
  std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_micros_{0};
};

class Metrics {
 public:
  explicit Metrics(std::vector<std::string> models);

  // `code` is nullopt for a success; `status` is the HTTP status sent.
  void request(Route route, unsigned status, std::optional<Error> code, double seconds);
  void upstream(double seconds) { upstream_.observe(seconds); }
  void tokens(std::string_view model, const TokenUsage& usage);
  void usage_record(UsageStatus s) { usage_records_[static_cast<std::size_t>(s)]++; }
  void store_error() { store_errors_++; }
  std::atomic<std::int64_t>& in_flight() { return in_flight_; }
  void outbox_delivered(double latency_seconds);
  void outbox_retried() { outbox_retried_++; }
  void outbox_dead_lettered() { outbox_dead_lettered_++; }
  void outbox_recovered(std::uint64_t n = 1) { outbox_recovered_ += n; }
  void outbox_journal_replayed(std::uint64_t n) { outbox_journal_replayed_ += n; }
  void outbox_gauges(const store::OutboxStats& s);

  std::string render(std::size_t open_connections) const;

 private:
  static constexpr std::size_t kCodes = static_cast<std::size_t>(Error::internal) + 2;  // + ok
  // Statuses the server sends; any other (an engine's 4xx passed through) counts as "other".
  static constexpr std::array<unsigned, 15> kStatuses = {200, 400, 401, 402, 403, 404, 405, 409,
                                                         413, 429, 431, 500, 502, 503, 504};
  static constexpr std::size_t kStatusSlots = kStatuses.size() + 1;
  static std::size_t slot(Route r, std::size_t code, std::size_t status) {
    return (static_cast<std::size_t>(r) * kCodes + code) * kStatusSlots + status;
  }

  void render_outbox(std::string& out) const;

  std::vector<std::string> models_;
  std::vector<std::atomic<std::uint64_t>> requests_;  // [route][code][status]
  std::array<Histogram, kRoutes> durations_;
  Histogram upstream_;
  std::vector<std::array<std::atomic<std::uint64_t>, 2>> tokens_;
  std::array<std::atomic<std::uint64_t>, 5> usage_records_{};
  std::atomic<std::uint64_t> store_errors_{0};
  std::atomic<std::int64_t> in_flight_{0};
  std::atomic<std::uint64_t> outbox_delivered_{0};
  std::atomic<std::uint64_t> outbox_retried_{0};
  std::atomic<std::uint64_t> outbox_dead_lettered_{0};
  std::atomic<std::uint64_t> outbox_recovered_{0};
  std::atomic<std::uint64_t> outbox_journal_replayed_{0};
  std::array<std::atomic<std::int64_t>, 3> outbox_gauges_{};  // open, pending, dead
  Histogram outbox_latency_;
};

}  // namespace dynaseal::server
