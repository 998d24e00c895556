// The in-memory use store of a single server node (DESIGN §8 "memory"): state lives as long as
// the process, which is enough because every entry dies with its key (at most max_key_ttl).
//
// Sharding: entries are spread over `shards` shards by a hash of (iss, jti) for keys and of
// (iss, sub) for subject revocations; each shard has its own mutex and hash maps, so there is
// no global lock on the request path. consume locks the key's shard and the subject's shard
// together, always the lower index first (only consume ever holds two locks, so the order
// cannot deadlock), which makes it atomic with respect to revoke_sub: a revocation that
// returned is seen by every later consume, and no consume slips through half-checked.
//
// Time: callers read their clocks at slightly different moments, so `now` can go back by a
// second between threads. A shard therefore never lets its time go backwards: it works with
// the latest `now` it has seen. Otherwise a thread still holding now = expires_at - 1 could
// find the state of a single-use key already dropped by a thread at expires_at, and use the
// key a second time.
//
// Expiry: an entry dies at its deadline (a key's expires_at, extended by a revocation of it; a
// subject revocation's until). Each shard keeps its entries ordered by deadline too, so expired
// entries are found without scanning: every operation drops a few of them in the shards it
// locks, and sweep(now) drops all of them (the server calls it periodically, e.g. every second).
//
// Memory bound: a shard holds at most max_entries / shards entries. When it is full and nothing
// in it has expired, a new key (or a revocation of an unseen key or subject) is refused with
// store_unavailable. Live entries are never evicted: forgetting a single-use key's state would
// let it be used again. Keys already held keep working at the bound.
//
//   MemoryUseStore store({.shards = 64, .max_entries = 1'000'000});
//   auto grant = store.consume(request, now);   // see UseStore
//   store.sweep(now);                           // from a periodic timer
//   store.restore(iss, jti, uses, spent, until, now);   // at start, from the outbox
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "store/use_store.hpp"

namespace dynaseal::store {

struct MemoryUseStoreOptions {
  std::size_t shards = 64;              // at least 1, at most max_entries
  std::size_t max_entries = 1'000'000;  // keys plus revocations, over all shards
};

class MemoryUseStore final : public UseStore {
 public:
  explicit MemoryUseStore(MemoryUseStoreOptions options = {});
  ~MemoryUseStore() override;
  MemoryUseStore(const MemoryUseStore&) = delete;
  MemoryUseStore& operator=(const MemoryUseStore&) = delete;

  Result<UseGrant> consume(const ConsumeRequest& req, std::int64_t now) override;
  Result<void> settle(std::string_view iss, std::string_view jti, std::int64_t granted_tokens,
                      std::int64_t actual_tokens, std::int64_t now) override;
  Result<void> revoke_jti(std::string_view iss, std::string_view jti, std::int64_t until,
                          std::int64_t now) override;
  Result<void> revoke_sub(std::string_view iss, std::string_view sub, std::int64_t revoked_at,
                          std::int64_t until, std::int64_t now) override;
  // At start, from the server's outbox (ServerStore::used_keys), since this store forgets
  // everything with the process: the key (iss, jti) has had `uses` uses and spent
  // `spent_tokens`, and may live until `until` (unix seconds). Never lowers what the store
  // holds. store_unavailable when its shard is full; internal for negative counts.
  Result<void> restore(std::string_view iss, std::string_view jti, std::int64_t uses,
                       std::int64_t spent_tokens, std::int64_t until, std::int64_t now);
  bool healthy() const override { return true; }
  std::size_t size() const override;

  // Drops every entry whose deadline is <= now, one shard at a time; returns how many.
  std::size_t sweep(std::int64_t now);

  // Entries one shard may hold (max_entries / shards, after clamping shards).
  std::size_t shard_capacity() const { return shard_capacity_; }

 private:
  struct Shard;
  std::size_t shard_index(std::string_view iss, std::string_view name) const;
  Result<UseGrant> consume_locked(Shard& keys, Shard& subs, const ConsumeRequest& req,
                                  std::int64_t now);

  std::size_t shard_count_;
  std::size_t shard_capacity_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace dynaseal::store
