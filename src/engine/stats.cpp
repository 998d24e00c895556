#include "engine/stats.hpp"

#include <algorithm>

namespace dynaseal::engine {
namespace {

std::atomic<std::uint64_t> g_generation{0};

std::uint64_t read(const std::atomic<std::uint64_t>& counter) {
  return counter.load(std::memory_order_relaxed);
}

}  // namespace

CounterRegistry::CounterRegistry(std::uint64_t seed) : seed_(seed), generation_(++g_generation) {}

Counters& CounterRegistry::local() {
  struct Cache {
    std::uint64_t generation = 0;
    Counters* slot = nullptr;
  };
  thread_local Cache cache;
  if (cache.generation == generation_) return *cache.slot;
  std::lock_guard lock(mutex_);
  const auto me = std::this_thread::get_id();
  const auto it =
      std::find_if(slots_.begin(), slots_.end(), [&](const Counters& c) { return c.owner == me; });
  Counters* slot = it != slots_.end() ? &*it : nullptr;
  if (slot == nullptr) {
    slot = &slots_.emplace_back();
    slot->owner = me;
    slot->rng = seed_ + slots_.size();
  }
  cache = {generation_, slot};
  return *slot;
}

EngineStats CounterRegistry::total() const {
  EngineStats s;
  std::lock_guard lock(mutex_);
  for (const Counters& c : slots_) {
    s.requests += read(c.requests);
    s.completed += read(c.completed);
    s.cancelled += read(c.cancelled);
    s.failed += read(c.failed);
    s.rejected += read(c.rejected);
    s.streams += read(c.streams);
    s.tokens += read(c.tokens);
  }
  return s;
}

void Tally::fault() {
  faulted_ = true;
  bump(c_.failed);
}

void Tally::completing(std::uint64_t n) {
  last_tokens_ = n;
  tokens(n);
  if (faulted_) return;
  completing_ = true;
  bump(c_.completed);
}

void Tally::last_write_failed() {
  c_.tokens.fetch_sub(last_tokens_, std::memory_order_relaxed);
  if (completing_) c_.completed.fetch_sub(1, std::memory_order_relaxed);
  completing_ = false;
}

void Tally::end() {
  if (!faulted_ && !completing_) bump(c_.cancelled);
}

}  // namespace dynaseal::engine
