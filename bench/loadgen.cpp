// loadgen: the HTTP/1.1 load generator of `make bench` (scripts/bench-server, docs/performance.md).
//
// One thread, one io_context, many keep-alive connections, at most one request in flight per
// connection (no pipelining). Every connection is opened before the clock starts. Modes:
//
//   closed  each connection sends its next request as soon as the last answer is in, for
//           --duration seconds (maximum throughput); --requests caps the total.
//   open    requests are scheduled at a fixed --rate (req/s) and handed to free connections.
//           Latency counts from the scheduled send time, so a request that waits for a free
//           connection (because earlier ones are slow) is charged its wait: queueing in the
//           system under test is not hidden by the generator slowing down (coordinated
//           omission).
//   hold    sends one request (e.g. GET /healthz) on each connection, then holds them all open
//           and idle until SIGINT / SIGTERM or --duration; prints `holding N connections`.
//
// --keys FILE: one token per line; each request takes the next one as `Authorization: Bearer`
// and no token is sent twice. Running out ends the run early; it is then reported as failed.
// --stream: responses are SSE streams; time to first token (the first non-empty body chunk) is
// measured too and a stream without `[DONE]` counts as an error.
//
// Percentiles come from a log-linear histogram (exact below 1024 µs, < 0.1 % relative error
// above). Output: a human summary on stderr and one machine-readable line on stdout:
//   RESULT name=server mode=closed conns=64 requests=... rps=... p50_us=... p99_us=... ...
// Exit 0 when every request got a 2xx; 1 when any did not, failed, or keys ran out; 2 on usage.

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

// ---- Histogram ------------------------------------------------------------------------------

// Log-linear buckets over microseconds, as HdrHistogram: values below 1024 have their own
// bucket; above, each power of two is split into 512 equal buckets.
class Histogram {
 public:
  Histogram() : counts_(kBuckets, 0) {}

  void record(std::uint64_t us) {
    us = std::min<std::uint64_t>(us, (std::uint64_t{1} << 40) - 1);
    ++counts_[index(us)];
    ++total_;
    sum_ += us;
    max_ = std::max(max_, us);
  }
  std::uint64_t count() const { return total_; }
  std::uint64_t max() const { return max_; }
  double mean() const { return total_ ? static_cast<double>(sum_) / total_ : 0; }

  // The highest value equivalent to the q-quantile's bucket (as HdrHistogram reports it).
  std::uint64_t percentile(double q) const {
    if (total_ == 0) return 0;
    const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * total_)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(highest_equivalent(i), max_);
    }
    return max_;
  }

 private:
  static constexpr int kSubBits = 10;
  static constexpr std::size_t kHalf = std::size_t{1} << (kSubBits - 1);
  static constexpr std::size_t kBuckets = 32 * kHalf + 2 * kHalf;

  static std::size_t index(std::uint64_t v) {
    if (v < 2 * kHalf) return v;
    const int shift = (63 - __builtin_clzll(v)) - (kSubBits - 1);
    return static_cast<std::size_t>(shift) * kHalf + (v >> shift);
  }
  static std::uint64_t highest_equivalent(std::size_t i) {
    if (i < 2 * kHalf) return i;
    const std::size_t shift = i / kHalf - 1;
    const std::uint64_t sub = i - shift * kHalf;
    return ((sub + 1) << shift) - 1;
  }

  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0, sum_ = 0, max_ = 0;
};

// ---- Options and shared state -----------------------------------------------------------------

struct Options {
  std::string name = "run", mode = "closed", target = "127.0.0.1:8000", path = "/";
  std::string method, body, body_file, keys_file;
  std::vector<std::string> headers;
  unsigned connections = 64;
  double duration_s = 10, rate = 0, ramp_s = 0, grace_s = 30;
  std::uint64_t requests = 0;  // 0: no cap
  bool stream = false;
};

// Single-threaded countdown: wait() returns once count_down() was called `n` times.
class Latch {
 public:
  Latch(asio::io_context& io, std::size_t n) : timer_(io, Clock::time_point::max()), n_(n) {}
  void count_down() {
    if (n_ > 0 && --n_ == 0) timer_.cancel();
  }
  awaitable<void> wait() {
    while (n_ > 0) co_await timer_.async_wait(kNoThrow);
  }

 private:
  asio::steady_timer timer_;
  std::size_t n_;
};

struct Connection {
  explicit Connection(asio::io_context& io) : socket(io), buf(4096) {}
  tcp::socket socket;
  std::vector<char> buf;
  std::size_t begin = 0, end = 0;  // unread bytes are buf[begin, end)
  std::string_view unread() const { return {buf.data() + begin, end - begin}; }
};

struct Reply {
  int status = 0;
  bool close = false;
  bool saw_done = false;
  std::optional<Clock::time_point> first_chunk;
};

struct Run {
  explicit Run(Options o) : opt(std::move(o)) {}
  Options opt;
  asio::io_context io{1};
  tcp::endpoint endpoint;
  std::string head, tail;  // request bytes before / after the Authorization header
  std::vector<std::string> keys;
  std::size_t next_key = 0;
  bool keys_exhausted = false;

  std::vector<std::unique_ptr<Connection>> conns;
  Clock::time_point start, deadline, finished;
  bool stopping = false;
  bool cut_off = false;  // the watchdog closed the connections
  std::uint64_t issued = 0, in_flight = 0, max_in_flight = 0;

  // open loop: scheduled send times waiting for a free connection, and idle workers' timers
  std::deque<Clock::time_point> queue;
  std::vector<asio::steady_timer*> idle;
  bool schedule_done = false;

  Histogram latency, ttft;
  std::map<int, std::uint64_t> statuses;
  std::map<std::string, std::uint64_t> errors;
};

std::uint64_t micros(Clock::duration d) {
  return static_cast<std::uint64_t>(
      std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(d).count()));
}

// ---- HTTP client side -------------------------------------------------------------------------

// Reads more bytes into the connection's buffer (compacting or growing it as needed, up to
// 1 MiB); false on EOF or error.
awaitable<bool> fill(Connection& c) {
  if (c.begin == c.end) c.begin = c.end = 0;
  if (c.end == c.buf.size()) {
    if (c.begin > 0) {
      std::copy(c.buf.begin() + c.begin, c.buf.begin() + c.end, c.buf.begin());
      c.end -= c.begin;
      c.begin = 0;
    } else if (c.buf.size() < (1u << 20)) {
      c.buf.resize(c.buf.size() * 2);
    } else {
      co_return false;
    }
  }
  auto [ec, n] = co_await c.socket.async_read_some(
      asio::buffer(c.buf.data() + c.end, c.buf.size() - c.end), kNoThrow);
  if (ec) co_return false;
  c.end += n;
  co_return true;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool icontains(std::string_view hay, std::string_view needle) {
  for (std::size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    if (iequals(hay.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

// Consumes `n` body bytes as they arrive (nothing is kept), noting `[DONE]` for streams.
awaitable<bool> skip_body(Connection& c, std::uint64_t n, Reply& r, std::string& carry) {
  while (n > 0) {
    if (c.begin == c.end && !co_await fill(c)) co_return false;
    const std::size_t take = std::min<std::uint64_t>(n, c.end - c.begin);
    const std::string_view piece(c.buf.data() + c.begin, take);
    if (!r.saw_done) {
      // an event split across reads: look at the seam too
      const std::string seam = carry + std::string(piece.substr(0, 8));
      r.saw_done = piece.find("[DONE]") != std::string_view::npos ||
                   seam.find("[DONE]") != std::string::npos;
      carry = std::string(piece.substr(piece.size() - std::min<std::size_t>(piece.size(), 8)));
    }
    c.begin += take;
    n -= take;
  }
  co_return true;
}

// Reads one line ending in CRLF; the view points into the buffer until the next read.
awaitable<std::optional<std::string_view>> read_line(Connection& c) {
  for (;;) {
    const std::size_t eol = c.unread().find("\r\n");
    if (eol != std::string_view::npos) {
      const std::string_view line = c.unread().substr(0, eol);
      c.begin += eol + 2;
      co_return line;
    }
    if (!co_await fill(c)) co_return std::nullopt;
  }
}

// Reads one response: head, then a Content-Length, chunked or read-until-close body.
awaitable<bool> read_response(Connection& c, Reply& r) {
  std::size_t head_end;
  while ((head_end = c.unread().find("\r\n\r\n")) == std::string_view::npos) {
    if (!co_await fill(c)) co_return false;
  }
  const std::string_view head = c.unread().substr(0, head_end + 2);
  c.begin += head_end + 4;
  if (head.size() < 12 || head.substr(0, 5) != "HTTP/") co_return false;
  r.status = std::atoi(std::string(head.substr(9, 3)).c_str());
  std::optional<std::uint64_t> length;
  bool chunked = false;
  for (std::size_t pos = head.find("\r\n") + 2; pos < head.size();) {
    const std::size_t eol = head.find("\r\n", pos);
    const std::string_view line = head.substr(pos, eol - pos);
    pos = eol + 2;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (iequals(name, "content-length")) {
      std::uint64_t n = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || end == value.data()) co_return false;
      length = n;
    }
    if (iequals(name, "transfer-encoding")) chunked = icontains(value, "chunked");
    if (iequals(name, "connection")) r.close = icontains(value, "close");
  }
  std::string carry;
  if (chunked) {
    for (;;) {
      auto size_line = co_await read_line(c);
      if (!size_line) co_return false;
      const std::uint64_t size = std::strtoull(std::string(*size_line).c_str(), nullptr, 16);
      if (size == 0) break;
      if (!r.first_chunk) r.first_chunk = Clock::now();
      if (!co_await skip_body(c, size + 2, r, carry)) co_return false;
    }
    for (;;) {  // trailers, then the empty line
      auto line = co_await read_line(c);
      if (!line) co_return false;
      if (line->empty()) break;
    }
    co_return true;
  }
  if (length) {
    if (*length > 0) r.first_chunk = Clock::now();
    co_return co_await skip_body(c, *length, r, carry);
  }
  if (r.status == 204 || r.status == 304 || r.status / 100 == 1) co_return true;
  r.close = true;  // the body ends with the connection
  r.first_chunk = Clock::now();
  while (co_await fill(c)) c.begin = c.end;
  co_return true;
}

awaitable<bool> connect(Run& run, Connection& c) {
  boost::system::error_code ignored;
  c.socket.close(ignored);
  c.begin = c.end = 0;
  auto [ec] = co_await c.socket.async_connect(run.endpoint, kNoThrow);
  if (ec) {
    ++run.errors["connect:" + ec.message()];
    co_return false;
  }
  c.socket.set_option(tcp::no_delay(true), ignored);
  co_return true;
}

// Sends one request and reads its answer; records status, latency from `start` and TTFT.
// Returns false when the connection failed (it is then closed).
awaitable<bool> exchange(Run& run, Connection& c, Clock::time_point start) {
  const std::string* key = nullptr;
  if (!run.keys.empty() || !run.opt.keys_file.empty()) {
    if (run.next_key == run.keys.size()) {
      run.keys_exhausted = run.stopping = true;
      co_return true;
    }
    key = &run.keys[run.next_key++];
  }
  constexpr std::string_view kAuth = "Authorization: Bearer ", kEol = "\r\n";
  std::array<asio::const_buffer, 5> out{asio::buffer(run.head), asio::const_buffer(),
                                        asio::const_buffer(), asio::const_buffer(),
                                        asio::buffer(run.tail)};
  if (key) {
    out[1] = asio::buffer(kAuth);
    out[2] = asio::buffer(*key);
    out[3] = asio::buffer(kEol);
  }
  run.max_in_flight = std::max(run.max_in_flight, ++run.in_flight);
  auto [ec, n] = co_await asio::async_write(c.socket, out, kNoThrow);
  Reply r;
  const bool ok = !ec && co_await read_response(c, r);
  --run.in_flight;
  if (!ok) {
    ++run.errors[run.cut_off ? std::string("cut off after the grace period")
                 : ec        ? "write: " + ec.message()
                             : std::string("read: connection lost")];
    boost::system::error_code ignored;
    c.socket.close(ignored);
    co_return false;
  }
  const auto now = Clock::now();
  ++run.statuses[r.status];
  run.latency.record(micros(now - start));
  if (run.opt.stream && r.first_chunk) run.ttft.record(micros(*r.first_chunk - start));
  if (run.opt.stream && r.status / 100 == 2 && !r.saw_done) ++run.errors["stream without [DONE]"];
  run.finished = now;
  if (r.close) {
    boost::system::error_code ignored;
    c.socket.close(ignored);
  }
  co_return true;
}

// ---- Workers ----------------------------------------------------------------------------------

// The next request's start time, or nothing when the run is over for this worker.
awaitable<std::optional<Clock::time_point>> next_job(Run& run, asio::steady_timer& wake) {
  if (run.opt.mode == "closed") {
    const auto now = Clock::now();
    if (run.stopping || now >= run.deadline) co_return std::nullopt;
    if (run.opt.requests > 0 && run.issued >= run.opt.requests) co_return std::nullopt;
    ++run.issued;
    co_return now;
  }
  while (run.queue.empty()) {  // open loop: wait for the scheduler
    if (run.schedule_done || run.stopping) co_return std::nullopt;
    run.idle.push_back(&wake);
    wake.expires_at(Clock::time_point::max());
    co_await wake.async_wait(kNoThrow);
  }
  const auto t = run.queue.front();
  run.queue.pop_front();
  co_return t;
}

awaitable<void> worker(Run& run, Connection& c, std::size_t id, Latch& done) {
  asio::steady_timer wake(run.io);
  if (run.opt.ramp_s > 0) {
    wake.expires_at(run.start +
                    std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(run.opt.ramp_s) * id / run.opt.connections));
    co_await wake.async_wait(kNoThrow);
  }
  while (auto start = co_await next_job(run, wake)) {
    if (!c.socket.is_open() && !co_await connect(run, c)) {
      wake.expires_after(std::chrono::milliseconds(50));  // a refused connect: do not spin
      co_await wake.async_wait(kNoThrow);
      continue;
    }
    co_await exchange(run, c, *start);
  }
  done.count_down();
}

// Open loop: puts each scheduled send time on the queue when it is due and wakes idle workers.
awaitable<void> scheduler(Run& run) {
  asio::steady_timer timer(run.io);
  const auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(1.0 / run.opt.rate));
  std::uint64_t i = 0;
  for (;;) {
    auto due = run.start + interval * i;
    const auto now = Clock::now();
    while (due <= now && due < run.deadline && (run.opt.requests == 0 || i < run.opt.requests)) {
      run.queue.push_back(due);
      due = run.start + interval * ++i;
    }
    while (!run.idle.empty() && !run.queue.empty()) {
      run.idle.back()->cancel();
      run.idle.pop_back();
    }
    if (run.stopping || due >= run.deadline || (run.opt.requests > 0 && i >= run.opt.requests)) {
      break;
    }
    timer.expires_at(due);
    co_await timer.async_wait(kNoThrow);
  }
  run.schedule_done = true;
  for (auto* t : run.idle) t->cancel();
  run.idle.clear();
}

// Opens connections[first], connections[first + stride], ... one after the other; in hold
// mode sends the request on each and reads its answer.
awaitable<void> opener(Run& run, std::size_t first, std::size_t stride, Latch& done) {
  for (std::size_t i = first; i < run.conns.size(); i += stride) {
    Connection& c = *run.conns[i];
    if (!co_await connect(run, c)) continue;
    if (run.opt.mode == "hold") co_await exchange(run, c, Clock::now());
  }
  done.count_down();
}

awaitable<void> run_all(Run& run) {
  for (unsigned i = 0; i < run.opt.connections; ++i) {
    run.conns.push_back(std::make_unique<Connection>(run.io));
  }
  // At most 128 connects at a time, so the listener's accept queue never overflows.
  const std::size_t openers = std::min<std::size_t>(128, run.conns.size());
  run.start = Clock::now();
  Latch opened(run.io, openers);
  for (std::size_t k = 0; k < openers; ++k) {
    asio::co_spawn(run.io, opener(run, k, openers, opened), asio::detached);
  }
  co_await opened.wait();
  if (run.opt.mode == "hold") {
    std::size_t open = 0;
    for (auto& c : run.conns) open += c->socket.is_open();
    std::printf("holding %zu connections\n", open);
    std::fflush(stdout);
    asio::signal_set signals(run.io, SIGINT, SIGTERM);
    asio::steady_timer timer(run.io, std::chrono::duration_cast<Clock::duration>(
                                         std::chrono::duration<double>(run.opt.duration_s)));
    signals.async_wait([&](auto, int) { timer.cancel(); });
    co_await timer.async_wait(kNoThrow);
    signals.cancel();
    run.finished = Clock::now();
    boost::system::error_code ignored;
    for (auto& c : run.conns) c->socket.close(ignored);
    co_return;
  }
  run.start = Clock::now();
  run.finished = run.start;
  run.deadline = run.start + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(run.opt.duration_s));
  // Requests still unanswered this long after the deadline are cut off (counted as errors).
  asio::steady_timer watchdog(run.io,
                              run.deadline + std::chrono::duration_cast<Clock::duration>(
                                                 std::chrono::duration<double>(run.opt.grace_s)));
  watchdog.async_wait([&run](boost::system::error_code ec) {
    if (ec) return;
    run.stopping = run.cut_off = true;
    for (auto& c : run.conns) c->socket.close(ec);
  });
  asio::signal_set signals(run.io, SIGINT, SIGTERM);
  signals.async_wait([&run](auto ec, int) {
    if (!ec) run.stopping = true;
  });
  Latch workers(run.io, run.conns.size());
  if (run.opt.mode == "open") asio::co_spawn(run.io, scheduler(run), asio::detached);
  for (std::size_t i = 0; i < run.conns.size(); ++i) {
    asio::co_spawn(run.io, worker(run, *run.conns[i], i, workers), asio::detached);
  }
  co_await workers.wait();
  watchdog.cancel();
  signals.cancel();
  boost::system::error_code ignored;
  for (auto& c : run.conns) c->socket.close(ignored);
}

// ---- Set-up and report ------------------------------------------------------------------------

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void prepare(Run& run) {
  const Options& o = run.opt;
  const std::size_t colon = o.target.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("--target must be HOST:PORT");
  run.endpoint = tcp::endpoint(asio::ip::make_address(o.target.substr(0, colon)),
                               static_cast<std::uint16_t>(std::stoi(o.target.substr(colon + 1))));
  const std::string body = o.body_file.empty() ? o.body : read_file(o.body_file);
  const std::string method = !o.method.empty() ? o.method : body.empty() ? "GET" : "POST";
  run.head = method + " " + o.path + " HTTP/1.1\r\nHost: " + o.target + "\r\n";
  if (!body.empty() || method == "POST") {
    run.head +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  for (const std::string& h : o.headers) run.head += h + "\r\n";
  run.tail = "\r\n" + body;
  if (!o.keys_file.empty()) {
    std::istringstream lines(read_file(o.keys_file));
    for (std::string line; std::getline(lines, line);) {
      while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back())))
        line.pop_back();
      if (!line.empty()) run.keys.push_back(std::move(line));
    }
    if (run.keys.empty()) throw std::runtime_error("no keys in " + o.keys_file);
  }
}

int report(const Run& run) {
  const Options& o = run.opt;
  const double seconds = std::chrono::duration<double>(run.finished - run.start).count();
  std::uint64_t ok = 0, non2xx = 0, failed = 0;
  for (const auto& [status, n] : run.statuses) (status / 100 == 2 ? ok : non2xx) += n;
  for (const auto& [what, n] : run.errors) failed += n;
  const std::uint64_t done = run.latency.count();
  const double rps = seconds > 0 ? done / seconds : 0;
  // The generator's own CPU time, to show it is not the bottleneck.
  rusage self{};
  getrusage(RUSAGE_SELF, &self);
  const double cpu_s = self.ru_utime.tv_sec + self.ru_stime.tv_sec +
                       (self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1e6;
  std::fprintf(stderr, "[%s] %s, %u connections: %llu responses in %.2f s = %.0f req/s\n",
               o.name.c_str(), o.mode.c_str(), o.connections, static_cast<unsigned long long>(done),
               seconds, rps);
  if (o.mode != "hold") {
    std::fprintf(stderr, "[%s] latency us: p50 %llu  p99 %llu  p99.9 %llu  max %llu\n",
                 o.name.c_str(), static_cast<unsigned long long>(run.latency.percentile(0.5)),
                 static_cast<unsigned long long>(run.latency.percentile(0.99)),
                 static_cast<unsigned long long>(run.latency.percentile(0.999)),
                 static_cast<unsigned long long>(run.latency.max()));
  }
  if (non2xx > 0 || failed > 0) {
    for (const auto& [status, n] : run.statuses) {
      std::fprintf(stderr, "[%s]   status %d: %llu\n", o.name.c_str(), status,
                   static_cast<unsigned long long>(n));
    }
    for (const auto& [what, n] : run.errors) {
      std::fprintf(stderr, "[%s]   error %s: %llu\n", o.name.c_str(), what.c_str(),
                   static_cast<unsigned long long>(n));
    }
  }
  if (run.keys_exhausted) {
    std::fprintf(stderr, "[%s] keys ran out after %zu requests: mint more\n", o.name.c_str(),
                 run.keys.size());
  }
  std::printf(
      "RESULT name=%s mode=%s conns=%u duration_s=%.3f requests=%llu ok=%llu non2xx=%llu "
      "errors=%llu keys_exhausted=%d target_rps=%.0f rps=%.1f max_in_flight=%llu mean_us=%.0f "
      "p50_us=%llu p90_us=%llu p99_us=%llu p999_us=%llu max_us=%llu loadgen_cpu_s=%.2f",
      o.name.c_str(), o.mode.c_str(), o.connections, seconds, static_cast<unsigned long long>(done),
      static_cast<unsigned long long>(ok), static_cast<unsigned long long>(non2xx),
      static_cast<unsigned long long>(failed), run.keys_exhausted ? 1 : 0, o.rate, rps,
      static_cast<unsigned long long>(run.max_in_flight), run.latency.mean(),
      static_cast<unsigned long long>(run.latency.percentile(0.5)),
      static_cast<unsigned long long>(run.latency.percentile(0.9)),
      static_cast<unsigned long long>(run.latency.percentile(0.99)),
      static_cast<unsigned long long>(run.latency.percentile(0.999)),
      static_cast<unsigned long long>(run.latency.max()), cpu_s);
  if (o.stream) {
    std::printf(" ttft_p50_us=%llu ttft_p99_us=%llu ttft_p999_us=%llu ttft_max_us=%llu",
                static_cast<unsigned long long>(run.ttft.percentile(0.5)),
                static_cast<unsigned long long>(run.ttft.percentile(0.99)),
                static_cast<unsigned long long>(run.ttft.percentile(0.999)),
                static_cast<unsigned long long>(run.ttft.max()));
  }
  std::printf("\n");
  return non2xx > 0 || failed > 0 || run.keys_exhausted ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app("loadgen: HTTP/1.1 load generator (closed loop, open loop, idle connections)");
  app.add_option("--name", o.name, "label of the RESULT line");
  app.add_option("--mode", o.mode, "closed | open | hold")
      ->check(CLI::IsMember({"closed", "open", "hold"}));
  app.add_option("--target", o.target, "HOST:PORT (IP address)")->required();
  app.add_option("--path", o.path, "request target");
  app.add_option("--method", o.method, "default: POST with a body, GET without");
  app.add_option("--body", o.body, "request body");
  app.add_option("--body-file", o.body_file, "request body from a file");
  app.add_option("--header", o.headers, "extra header line 'Name: value' (repeatable)");
  app.add_option("--keys", o.keys_file, "tokens, one per line: each sent once as Bearer");
  app.add_option("-c,--connections", o.connections, "keep-alive connections")
      ->check(CLI::Range(1u, 1'000'000u));
  app.add_option("-d,--duration", o.duration_s, "seconds (hold: longest hold)");
  app.add_option("-r,--rate", o.rate, "open loop: requests per second")->check(CLI::PositiveNumber);
  app.add_option("-n,--requests", o.requests, "stop after this many requests (0: no cap)");
  app.add_option("--ramp", o.ramp_s,
                 "closed loop: spread the connections' first requests "
                 "over this many seconds");
  app.add_option("--grace", o.grace_s, "seconds after the deadline before cutting off");
  app.add_flag("--stream", o.stream, "SSE responses: measure time to first token, want [DONE]");
  CLI11_PARSE(app, argc, argv);
  if (o.mode == "open" && o.rate <= 0) {
    std::fprintf(stderr, "loadgen: --mode open needs --rate\n");
    return 2;
  }
  Run run(o);
  try {
    prepare(run);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loadgen: %s\n", e.what());
    return 2;
  }
  asio::co_spawn(run.io, run_all(run), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  run.io.run();
  return report(run);
}
