#include "server/metrics.hpp"

#include <algorithm>
#include <cstdio>

namespace dynaseal::server {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

void line(std::string& out, std::string_view name, std::string_view labels, double value) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, " %.17g\n", value);
  out += buf;
}

void help(std::string& out, std::string_view name, std::string_view type, std::string_view text) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += text;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

}  // namespace

std::string_view to_string(Route r) {
  switch (r) {
    case Route::chat_completions: return "chat.completions";
    case Route::completions: return "completions";
    case Route::models: return "models";
    case Route::other: return "other";
    case Route::admin: return "admin";
  }
  return "other";
}

void Histogram::observe(double seconds) {
  const auto it = std::lower_bound(kBounds.begin(), kBounds.end(), seconds);
  buckets_[static_cast<std::size_t>(it - kBounds.begin())].fetch_add(1, kRelaxed);
  count_.fetch_add(1, kRelaxed);
  sum_micros_.fetch_add(static_cast<std::uint64_t>(seconds * 1e6), kRelaxed);
}

void Histogram::render(std::string& out, std::string_view name, std::string_view labels) const {
  std::uint64_t cumulative = 0;
  const std::string sep = labels.empty() ? "" : std::string(labels) + ",";
  for (std::size_t i = 0; i <= kBounds.size(); ++i) {
    cumulative += buckets_[i].load(kRelaxed);
    char le[32];
    if (i < kBounds.size()) {
      std::snprintf(le, sizeof le, "le=\"%g\"", kBounds[i]);
    } else {
      std::snprintf(le, sizeof le, "le=\"+Inf\"");
    }
    line(out, std::string(name) + "_bucket", sep + le, static_cast<double>(cumulative));
  }
  line(out, std::string(name) + "_sum", labels,
       static_cast<double>(sum_micros_.load(kRelaxed)) / 1e6);
  line(out, std::string(name) + "_count", labels, static_cast<double>(count_.load(kRelaxed)));
}

Metrics::Metrics(std::vector<std::string> models)
    : models_(std::move(models)),
      requests_(kRoutes * kCodes * kStatusSlots),
      tokens_(models_.size()) {}

void Metrics::request(Route route, unsigned status, std::optional<Error> code, double seconds) {
  const std::size_t c = code ? static_cast<std::size_t>(*code) + 1 : 0;
  const auto it = std::find(kStatuses.begin(), kStatuses.end(), status);
  const auto s = static_cast<std::size_t>(it - kStatuses.begin());
  requests_[slot(route, c, s)].fetch_add(1, kRelaxed);
  durations_[static_cast<std::size_t>(route)].observe(seconds);
}

void Metrics::tokens(std::string_view model, const TokenUsage& usage) {
  const auto it = std::find(models_.begin(), models_.end(), model);
  if (it == models_.end()) return;
  auto& t = tokens_[static_cast<std::size_t>(it - models_.begin())];
  t[0].fetch_add(static_cast<std::uint64_t>(usage.prompt), kRelaxed);
  t[1].fetch_add(static_cast<std::uint64_t>(usage.completion), kRelaxed);
}

std::string Metrics::render(std::size_t open_connections) const {
  std::string out;
  out.reserve(16 * 1024);
  help(out, "dynaseal_requests_total", "counter",
       "Requests answered, by endpoint, status and code.");
  std::array<std::uint64_t, kCodes> auth{};
  for (std::size_t r = 0; r < kRoutes; ++r) {
    for (std::size_t c = 0; c < kCodes; ++c) {
      for (std::size_t s = 0; s < kStatusSlots; ++s) {
        const std::uint64_t v = requests_[slot(static_cast<Route>(r), c, s)].load(kRelaxed);
        if (v == 0) continue;
        const std::string code = c == 0 ? "ok" : std::string(to_string(static_cast<Error>(c - 1)));
        const std::string status = s < kStatuses.size() ? std::to_string(kStatuses[s]) : "other";
        if (status == "401") auth[c] += v;
        line(out, "dynaseal_requests_total",
             "endpoint=\"" + std::string(to_string(static_cast<Route>(r))) + "\",status=\"" +
                 status + "\",code=\"" + code + "\"",
             static_cast<double>(v));
      }
    }
  }
  help(out, "dynaseal_auth_failures_total", "counter", "Requests refused with 401, by code.");
  for (std::size_t c = 1; c < kCodes; ++c) {
    if (auth[c] == 0) continue;
    line(out, "dynaseal_auth_failures_total",
         "code=\"" + std::string(to_string(static_cast<Error>(c - 1))) + "\"",
         static_cast<double>(auth[c]));
  }
  help(out, "dynaseal_request_duration_seconds", "histogram", "Time to answer a request.");
  for (std::size_t r = 0; r < kRoutes; ++r) {
    durations_[r].render(out, "dynaseal_request_duration_seconds",
                         "endpoint=\"" + std::string(to_string(static_cast<Route>(r))) + "\"");
  }
  help(out, "dynaseal_upstream_duration_seconds", "histogram",
       "Time spent on the upstream engine.");
  upstream_.render(out, "dynaseal_upstream_duration_seconds", "");
  help(out, "dynaseal_tokens_total", "counter", "Tokens used, by model and kind.");
  for (std::size_t m = 0; m < models_.size(); ++m) {
    line(out, "dynaseal_tokens_total", "model=\"" + models_[m] + "\",kind=\"prompt\"",
         static_cast<double>(tokens_[m][0].load(kRelaxed)));
    line(out, "dynaseal_tokens_total", "model=\"" + models_[m] + "\",kind=\"completion\"",
         static_cast<double>(tokens_[m][1].load(kRelaxed)));
  }
  help(out, "dynaseal_usage_records_total", "counter", "Usage records handed to the sink.");
  for (UsageStatus s : {UsageStatus::ok, UsageStatus::over_cap, UsageStatus::upstream_error,
                        UsageStatus::client_disconnected, UsageStatus::interrupted}) {
    line(out, "dynaseal_usage_records_total", "status=\"" + std::string(to_string(s)) + "\"",
         static_cast<double>(usage_records_[static_cast<std::size_t>(s)].load(kRelaxed)));
  }
  help(out, "dynaseal_in_flight_requests", "gauge", "Requests being served.");
  line(out, "dynaseal_in_flight_requests", "", static_cast<double>(in_flight_.load(kRelaxed)));
  help(out, "dynaseal_open_connections", "gauge", "Client connections open.");
  line(out, "dynaseal_open_connections", "", static_cast<double>(open_connections));
  help(out, "dynaseal_store_errors_total", "counter", "Use store failures (fail closed).");
  line(out, "dynaseal_store_errors_total", "", static_cast<double>(store_errors_.load(kRelaxed)));
  render_outbox(out);
  return out;
}

void Metrics::outbox_delivered(double latency_seconds) {
  outbox_delivered_.fetch_add(1, kRelaxed);
  outbox_latency_.observe(latency_seconds);
}

void Metrics::outbox_gauges(const store::OutboxStats& s) {
  outbox_gauges_[0].store(s.open, kRelaxed);
  outbox_gauges_[1].store(s.pending, kRelaxed);
  outbox_gauges_[2].store(s.dead, kRelaxed);
}

void Metrics::render_outbox(std::string& out) const {
  help(out, "dynaseal_outbox_events", "gauge", "Usage events in the outbox, by state.");
  const char* states[] = {"open", "pending", "dead"};
  for (std::size_t i = 0; i < outbox_gauges_.size(); ++i) {
    line(out, "dynaseal_outbox_events", std::string("state=\"") + states[i] + "\"",
         static_cast<double>(outbox_gauges_[i].load(kRelaxed)));
  }
  help(out, "dynaseal_outbox_delivered_total", "counter", "Usage events acknowledged (2xx).");
  line(out, "dynaseal_outbox_delivered_total", "",
       static_cast<double>(outbox_delivered_.load(kRelaxed)));
  help(out, "dynaseal_outbox_retried_total", "counter", "Failed deliveries scheduled again.");
  line(out, "dynaseal_outbox_retried_total", "",
       static_cast<double>(outbox_retried_.load(kRelaxed)));
  help(out, "dynaseal_outbox_dead_lettered_total", "counter", "Usage events given up on.");
  line(out, "dynaseal_outbox_dead_lettered_total", "",
       static_cast<double>(outbox_dead_lettered_.load(kRelaxed)));
  help(out, "dynaseal_outbox_recovered_total", "counter",
       "Unfinished records reported as interrupted (after a restart or a replica's death).");
  line(out, "dynaseal_outbox_recovered_total", "",
       static_cast<double>(outbox_recovered_.load(kRelaxed)));
  help(out, "dynaseal_outbox_journal_replayed_total", "counter",
       "Consumed uses without a record, reported as interrupted from the use store's journal.");
  line(out, "dynaseal_outbox_journal_replayed_total", "",
       static_cast<double>(outbox_journal_replayed_.load(kRelaxed)));
  help(out, "dynaseal_outbox_delivery_latency_seconds", "histogram",
       "From an event being queued to its acknowledgement.");
  outbox_latency_.render(out, "dynaseal_outbox_delivery_latency_seconds", "");
}

}  // namespace dynaseal::server
