// Request counters of the stand-in engine, kept without a lock on the request path.
//
// Each worker thread counts into its own cache-line-aligned Counters (relaxed atomics), found
// through a thread-local cache; only a thread's first request takes the registry's mutex.
// total() sums every thread's counters, each read once, while the workers keep going.
//
//   Counters& mine = registry.local();    // on a worker thread
//   Tally tally(mine);                     // one per completion request
//   tally.completing(words); ...; tally.end();
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>

namespace dynaseal::engine {

// Completion requests only (POST /v1/chat/completions and /v1/completions). Once every request
// has ended, requests == completed + cancelled + failed + rejected.
struct EngineStats {
  std::uint64_t requests = 0;   // received
  std::uint64_t completed = 0;  // answered in full, without a fault
  std::uint64_t cancelled = 0;  // the client went away before the answer was complete
  std::uint64_t failed = 0;     // given a fault (--fail-rate or a marker), whatever followed
  std::uint64_t rejected = 0;   // refused as invalid (4xx)
  std::uint64_t streams = 0;    // stream: true requests among the valid ones
  std::uint64_t tokens = 0;     // completion tokens delivered to clients
};

// One thread's counters; aligned so that two threads never share a cache line.
struct alignas(64) Counters {
  std::thread::id owner;
  std::uint64_t rng = 0;  // the --fail-rate sequence; read and advanced by the owner only
  std::atomic<std::uint64_t> requests{0}, completed{0}, cancelled{0}, failed{0}, rejected{0},
      streams{0}, tokens{0};
};

inline void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) {
  counter.fetch_add(n, std::memory_order_relaxed);
}

class CounterRegistry {
 public:
  // `seed` seeds each thread's fail-rate sequence (seed + 1 for the first thread, ...).
  explicit CounterRegistry(std::uint64_t seed);
  CounterRegistry(const CounterRegistry&) = delete;
  CounterRegistry& operator=(const CounterRegistry&) = delete;

  // The calling thread's counters, created on its first call; valid as long as the registry.
  Counters& local();
  EngineStats total() const;

 private:
  const std::uint64_t seed_;
  const std::uint64_t generation_;  // tells this registry's thread-local entries from others'
  mutable std::mutex mutex_;        // registration and total() only
  std::deque<Counters> slots_;      // a deque: slots never move
};

// The accounting of one completion request. Each outcome is counted as soon as it is known: a
// fault when it is decided, a completion just before the last write (so that a client holding
// the whole answer finds it counted; a last write that fails takes it back), and a cancellation
// when the request ends neither faulted nor completed.
class Tally {
 public:
  explicit Tally(Counters& counters) : c_(counters) {}

  void fault();
  void tokens(std::uint64_t n) { bump(c_.tokens, n); }
  // Before the last write of an answer, with the `n` tokens it carries that are not yet counted.
  void completing(std::uint64_t n);
  void last_write_failed();
  void end();

 private:
  Counters& c_;  // atomics: still correct if the coroutine resumed on another thread
  std::uint64_t last_tokens_ = 0;
  bool faulted_ = false;
  bool completing_ = false;
};

}  // namespace dynaseal::engine
